"""One rule for progress bars on long work (occlusion, pixel flipping, ``evaluate``).

``progress=True`` always shows a tqdm bar, ``False`` never; ``None`` (the default) shows one
when the work is long (at least ``min_work`` units) *and* stderr is a terminal, so a script or
a console shows progress while executed notebooks, nbval runs and logs stay free of bars
(pass ``progress=True`` in a notebook to see one).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ._checks import check_bool

if TYPE_CHECKING:
    from tqdm.auto import tqdm

__all__ = ["progress_bar", "show_progress"]


def show_progress(progress: bool | None, work: int = 0, min_work: int = 0) -> bool:
    """Whether to show a bar for ``work`` units (see the module docstring)."""
    if progress is not None:
        return check_bool("progress", progress)
    return work >= min_work and sys.stderr.isatty()


def progress_bar(total: int, progress: bool | None, desc: str, min_work: int = 0) -> tqdm:
    """A ``tqdm.auto`` bar over ``total`` steps, disabled unless :func:`show_progress`."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show_progress(progress, total, min_work), desc=desc)

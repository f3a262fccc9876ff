"""One rule for progress bars on long work (occlusion, pixel flipping, ``evaluate``).

``progress=True`` always shows a tqdm bar, ``False`` never; ``None`` (the default) shows one
when the work is long (at least ``min_work`` units) *and* stderr is a terminal, so a script or
a console shows progress while executed notebooks, nbval runs and logs stay free of bars
(pass ``progress=True`` in a notebook to see one).
"""
from __future__ import annotations

import sys

from ._checks import check_bool

__all__ = ["show_progress"]


def show_progress(progress: bool | None, work: int = 0, min_work: int = 0) -> bool:
    """Whether to show a bar for ``work`` units (see the module docstring)."""
    if progress is not None:
        return check_bool("progress", progress)
    return work >= min_work and sys.stderr.isatty()


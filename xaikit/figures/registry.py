"""The figure registry and reproducible saving (PNG and PDF with fixed metadata).

Introduced in notebook ``00_setup_and_tour``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FigureInfo", "figure_info", "list_figures", "register_figure", "save_figure",
           "REPRODUCIBLE_RC", "PNG_METADATA", "PDF_METADATA"]

REPRODUCIBLE_RC = {"svg.hashsalt": "xaikit", "pdf.compression": 6, "pdf.fonttype": 3,
                   "path.simplify": True}
"""matplotlib settings under which saved files do not depend on the run."""

PNG_METADATA = {"Software": None}
"""PNG text chunks: matplotlib's version string is dropped."""

PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}
"""PDF info dictionary: no creation time, no tool versions."""


@dataclass(frozen=True)
class FigureInfo:
    """A registered figure: ``fn(model, **options) -> (fig, data)`` and where it belongs."""

    name: str
    fn: Callable
    notebook: str
    section: str
    title: str


_FIGURES: dict[str, FigureInfo] = {}

_F = TypeVar("_F", bound=Callable[..., Any])
"""A figure function; :func:`register_figure` returns it unchanged."""


def register_figure(name: str, *, notebook: str, section: str,
                    title: str) -> Callable[[_F], _F]:
    """Register ``fn(model, **options) -> (fig, data)`` as figure ``name``.

    Parameters
    ----------
    name : str
        File stem of the exported figure (unique).
    notebook : str
        File stem of the notebook that shows it, e.g. ``"05_smoothgrad"``.
    section : str
        The section heading of that notebook.
    title : str
        One line saying what the figure shows (goes into the manifest).
    """
    if not name.isidentifier():
        raise ValueError(f"figure name must be an identifier, got {name!r}")

    def decorate(fn: _F) -> _F:
        if name in _FIGURES and _FIGURES[name].fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"figure {name!r} is already registered")
        _FIGURES[name] = FigureInfo(name, fn, notebook, section, title)
        return fn

    return decorate


def list_figures() -> list[FigureInfo]:
    """Every registered figure, ordered by notebook (registration order within one)."""
    order = {name: i for i, name in enumerate(_FIGURES)}
    return sorted(_FIGURES.values(), key=lambda f: (f.notebook, order[f.name]))


def figure_info(name: str) -> FigureInfo:
    """The :class:`FigureInfo` of ``name`` (ValueError naming the known figures otherwise)."""
    if name not in _FIGURES:
        raise ValueError(f"unknown figure {name!r}; known: {', '.join(sorted(_FIGURES))}")
    return _FIGURES[name]


def save_figure(fig: Figure, stem: str | Path, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.pdf`` so that a rerun writes identical bytes.

    Fixed metadata (no software version, no creation date) and :data:`REPRODUCIBLE_RC`; the
    dpi comes from the workbook style. Returns the written paths.
    """
    import matplotlib

    stem = Path(stem)
    paths = []
    with matplotlib.rc_context(REPRODUCIBLE_RC):
        for fmt in formats:
            if fmt not in ("png", "pdf"):
                raise ValueError(f"format must be 'png' or 'pdf', got {fmt!r}")
            path = stem.with_suffix(f".{fmt}")
            metadata = PNG_METADATA if fmt == "png" else PDF_METADATA
            fig.savefig(path, format=fmt, metadata=metadata)
            paths.append(path)
    return paths

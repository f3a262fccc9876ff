"""The workbook's figures: each drawn by one registered function the notebooks call.

A figure function computes what its figure needs and draws it::

    @register_figure("smoothgrad_grid", notebook="05_smoothgrad", section="1. The estimator",
                     title="SmoothGrad of the gradient: noise level x samples T")
    def smoothgrad_grid(model, **options) -> tuple[Figure, dict]:
        ...
        return fig, data            # data: what the notebook cell prints and asserts on

The notebook cell calls it (``fig, data = xkfig.smoothgrad_grid(model)``) and asserts on
``data``; ``python -m xaikit figures`` calls every registered function with only the model
and saves PNG and PDF with fixed metadata (:func:`export_figures`), so the exported figures
are the notebooks' figures, drawn by the same code. Figures of toy models take ``model`` and
ignore it.

Adding a figure (notebooks 11, 14, ...): write ``fn(model, **options) -> (fig, data)`` in a
module of this package (one module per topic, e.g. ``evaluation.py``), decorate it with
:func:`register_figure` (``notebook`` = the notebook's file stem, ``section`` = its section
heading), import the module below and add its name to :data:`FIGURE_MODULES`, and call it
from the notebook.
Every option needs a default: the exporter passes only the model.

Introduced in notebook ``00_setup_and_tour``; the export command is in ``README.md``.
"""
from __future__ import annotations

from . import cleverhans, evaluation, gradcam, gradients, lrp, perturbation, shattered, smoothgrad, tour  # noqa: F401
from .export import export_figures
from .registry import FigureInfo, figure_info, list_figures, register_figure, save_figure

__all__ = ["FIGURE_MODULES", "FigureInfo", "export_figures", "figure_info", "list_figures",
           "register_figure", "save_figure"]

FIGURE_MODULES: list[str] = ["tour", "perturbation", "gradients", "shattered", "smoothgrad",
                             "lrp", "gradcam", "evaluation", "cleverhans"]
"""Modules of this package whose import registers figures, in workbook order (all imported
above, so the registry is complete once ``xaikit.figures`` is imported)."""


def __getattr__(name: str):
    # ``xkfig.smoothgrad_grid`` etc.: look the figure function up in the registry.
    try:
        return figure_info(name).fn
    except ValueError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None

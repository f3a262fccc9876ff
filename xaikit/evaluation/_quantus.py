"""The one place that imports Quantus 0.6.0, with its numpy-2 shim.

Quantus 0.6.0 still calls ``np.trapz`` and ``np.NaN``, both removed in numpy 2 (AUC, IROF and
``Continuity(return_nan_when_prediction_changes=True)`` fail without them). :func:`import_quantus`
restores the two names (aliases of ``np.trapezoid`` and ``np.nan``) before importing it. Quantus
is used only to cross-check the metrics of :mod:`xaikit.evaluation` (tests, benchmarks,
notebook ``13_evaluation_sanity_localisation``); nothing in the package computes a score through it.
"""
from __future__ import annotations

import types

import numpy as np

__all__ = ["import_quantus", "numpy_shim"]


def numpy_shim() -> None:
    """Give numpy 2 back ``np.trapz`` and ``np.NaN`` (no-op on numpy 1 or when present)."""
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid  # type: ignore[attr-defined]
    if not hasattr(np, "NaN"):
        np.NaN = np.nan  # type: ignore[attr-defined]


def import_quantus() -> types.ModuleType:
    """``quantus``, imported after :func:`numpy_shim`.

    Returns
    -------
    module
        The ``quantus`` package (0.6.0 is pinned in ``pyproject.toml``).
    """
    numpy_shim()
    import quantus

    return quantus

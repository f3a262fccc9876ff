"""Explanation selection: pick a method's settings by maximising a score over a grid.

Most methods have hyperparameters (LRP's gamma and epsilon, SmoothGrad's noise) and there is no
ground-truth explanation to fit them to; part 3 of the tutorial selects them by a
faithfulness score instead, e.g. the AOPC of pixel flipping (Pahde et al.). :func:`select`
tries every combination of a grid and returns the table and the best setting.

References
----------
Samek, Montavon, Müller, "Interpretable deep learning, part 3: validating explanations"
(tutorial); Pahde et al. (2023), "Optimizing explanations by network canonization and
hyperparameter search", CVPR workshops.

Introduced in notebook ``12_evaluation_selectivity``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .._checks import check_seed, prepare
from ..explain import explain
from .metrics import METRICS, Settings, with_seed

__all__ = ["Selection", "select"]


@dataclass
class Selection:
    """The result of :func:`select`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per setting: a column per grid parameter, ``mean``, ``std`` (over images).
    best : dict
        The setting with the best mean score (first in grid order on a tie).
    score : str
        The metric name.
    higher_is_better : bool
        Its direction.
    """

    table: Any
    best: dict
    score: str
    higher_is_better: bool

    @property
    def worst(self) -> dict:
        """The setting with the worst mean score (first in grid order on a tie)."""
        means = self.table["mean"]
        pick = means.idxmin() if self.higher_is_better else means.idxmax()
        return {k: v.item() if hasattr(v, "item") else v
                for k, v in self.table.loc[pick].drop(["mean", "std"]).items()}


def select(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor,
           method: str, grid: Mapping[str, Sequence], *, score: str = "aopc_most_relevant",
           masks: torch.Tensor | None = None, options: Mapping | None = None,
           flip_steps: int = 16, patch: int | None = None, fill: float | str = 0.0,
           seed: int = 0) -> Selection:
    """Grid search of ``method``'s options maximising (or minimising) a score.

    Parameters
    ----------
    model, x, target, method
        As for :func:`xaikit.explain`.
    grid : mapping of str to sequence
        Option name -> values, e.g. ``{"gamma": [0, 0.1, 0.25, 1]}``; every combination is
        tried (cartesian product, in the given order).
    score : str
        A name from :data:`~xaikit.evaluation.table.METRICS` (default: AOPC of pixel flipping,
        most relevant first, higher is better); its direction decides "best".
    masks : torch.Tensor, optional
        ``(N, H, W)`` object masks, for the localisation scores.
    options : mapping, optional
        Fixed options passed with every setting (e.g. ``{"rule": "gamma"}``).
    flip_steps, patch, fill, seed
        Settings of the score (see :func:`~xaikit.evaluation.evaluate`).

    Returns
    -------
    Selection
        The table of mean and spread per setting and the best setting.

    References
    ----------
    Tutorial part 3 (explanation selection); Pahde et al. (2023). Introduced in notebook
    ``12_evaluation_selectivity``.
    """
    import pandas as pd

    if not isinstance(grid, Mapping) or not grid or any(
            isinstance(v, str) or not isinstance(v, Sequence) or not v for v in grid.values()):
        raise ValueError("grid must map option names to non-empty sequences of values")
    if score not in METRICS:
        raise ValueError(f"unknown score {score!r}; choose from {', '.join(METRICS)}")
    metric = METRICS[score]
    if metric.needs_masks and masks is None:
        raise ValueError(f"score {score!r} needs masks=(N, H, W) object masks")
    t = prepare(model, x, target)
    check_seed(seed)
    fixed, settings = dict(options or {}), Settings(flip_steps, patch, fill, (-1, 1), seed)
    clash = sorted(set(fixed) & set(grid))
    if clash:
        raise ValueError(f"option(s) {clash} are both fixed and in the grid")
    rows = []
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values))
        opts = {**fixed, **setting}
        opts = with_seed(method, opts, seed)
        attr = explain(model, x, t, method, **opts)
        s = metric.fn(model, x, t, attr, masks, method, opts, settings).double()
        rows.append({**setting, "mean": float(s.nanmean()),
                     "std": float(s[~s.isnan()].std()) if (~s.isnan()).sum() > 1 else 0.0})
    table = pd.DataFrame(rows)
    if table["mean"].isna().all():
        raise ValueError(f"every setting of the grid scores NaN on {score!r} (e.g. all-zero "
                         "maps, or masks that are empty), so none can be selected")
    pick = table["mean"].idxmax() if metric.higher_is_better else table["mean"].idxmin()
    best = {k: table.loc[pick, k] for k in grid}
    best = {k: v.item() if hasattr(v, "item") else v for k, v in best.items()}
    return Selection(table, best, score, metric.higher_is_better)

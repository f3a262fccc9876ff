"""Many methods x many metrics over many images, in one tidy table.

:data:`METRICS` names every score of :mod:`xaikit.evaluation` with its direction; :func:`evaluate`
explains each image once per method (batched), computes every metric and returns a pandas
DataFrame with one row per (method, metric): mean, standard deviation, standard error and the
number of images where the metric is defined. The control methods (claim G3) are evaluated
like any other: ``"random"`` (a Gaussian noise map from ``seed``), ``"uniform"`` (the logit spread
evenly: conservative, continuous, implementation invariant - and uninformative) and
``"center"`` (a Gaussian blob at the centre, the pointing-game baseline).

References
----------
Montavon, Samek, Müller (2018), Digital Signal Processing 73 (properties); Samek et al. (2017),
IEEE TNNLS (AOPC); Arras, Osman, Samek (2022), Information Fusion 81 (localisation);
Adebayo et al. (2018), NeurIPS (randomisation); Hedström et al. (2023), "Quantus", JMLR 24
(no single best criterion).

Introduced in notebook ``13_evaluation_sanity_localisation``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import torch
from torch import nn

from .._checks import check_int, prepare
from .._progress import show_progress
from ..explain import explain
from .metrics import METRICS, Settings, with_seed

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["evaluate"]

def _methods(methods) -> dict[str, tuple[str, dict]]:
    if isinstance(methods, str):
        methods = [methods]
    items = methods.items() if isinstance(methods, Mapping) else ((m, m) for m in methods)
    out = {}
    for label, spec in items:
        name, options = (spec, {}) if isinstance(spec, str) else spec
        if not isinstance(name, str) or not isinstance(options, Mapping):
            raise TypeError(f"method {label!r}: give a name or (name, options), got {spec!r}")
        out[str(label)] = (name, dict(options))
    if not out:
        raise ValueError("no methods given")
    return out


def evaluate(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor,
             methods: Sequence[str] | Mapping[str, str | tuple[str, Mapping]],
             metrics: Sequence[str] | None = None, masks: torch.Tensor | None = None, *,
             flip_steps: int = 16, patch: int | None = None, fill: float | str = 0.0,
             shifts: Sequence[int] = (-1, 1), seed: int = 0,
             bounds: tuple[float, float] | None = None, perturbations: int = 10,
             per_image: bool = False,
             progress: bool | None = None) -> pd.DataFrame:
    """Evaluate many methods with many metrics on many images.

    Parameters
    ----------
    model, x, target
        Classifier, ``(N, C, H, W)`` input and explained class(es).
    methods : sequence of str or mapping
        Method names of :func:`xaikit.explain` (controls included), or a mapping from a row
        label to a name or ``(name, options)``, e.g. ``{"LRP": ("lrp", {"composite": "vgg16"})}``.
    metrics : sequence of str, optional
        Names from :data:`METRICS`; default every metric with ``default=True`` (not the costly
        robustness ones), without the localisation ones when ``masks`` is None.
    masks : torch.Tensor, optional
        ``(N, H, W)`` bool object masks for the localisation metrics.
    flip_steps, patch, fill
        Pixel-flipping settings (:func:`~xaikit.evaluation.pixel_flipping`).
    shifts : sequence of int
        Continuity shifts in pixels (:func:`~xaikit.evaluation.continuity`).
    seed : int
        Ties, random order, control maps, randomisation, the random class and the robustness
        noise.
    bounds : (low, high), optional
        Clamp the noisy copies of the robustness metrics to ``[low, high]``
        (``bounds`` of :func:`~xaikit.evaluation.max_sensitivity`, which checks them); default
        no clamping, as Quantus. Pass the
        model's pixel box, ``(spec.low, spec.high)``, to score the LRP composite, whose
        z^B rule needs its inputs inside the box.
    perturbations : int
        Noisy copies per image of the robustness metrics (``perturbations`` of
        :func:`~xaikit.evaluation.max_sensitivity`); each costs one explanation per image.
    per_image : bool
        Return the long table (``method, metric, image, value``) instead of the summary.
    progress : bool, optional
        tqdm bar over (method, metric); default only when stderr is a terminal
        (:mod:`xaikit._progress`).

    Returns
    -------
    pandas.DataFrame
        One row per (method, metric): ``mean``, ``std``, ``sem`` (over the images where the
        metric is defined), ``n`` (how many) and ``higher_is_better``.

    Notes
    -----
    Cost per method with every metric: the explanation of ``x``, three more explanation calls
    (the ``len(shifts)`` shifted copies in one batch, the randomised model, the other class)
    and ``2 (flip_steps + 1)`` forward passes of the batch for the two AOPCs; the rest is cheap.
    benchmarks/bench_evaluation.py times 15 methods x 10 metrics on 100 shapes images.

    References
    ----------
    See the module docstring. Introduced in notebook ``13_evaluation_sanity_localisation``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    t = prepare(model, x, target)
    chosen = list(metrics) if metrics is not None else [
        m for m, spec in METRICS.items()
        if spec.default and (masks is not None or not spec.needs_masks)]
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    if masks is None and any(METRICS[m].needs_masks for m in chosen):
        raise ValueError("the localisation metrics need masks=(N, H, W) object masks")
    settings = Settings(flip_steps, patch, fill, tuple(int(s) for s in shifts), seed, bounds,
                        check_int("perturbations", perturbations))
    specs = _methods(methods)
    show = show_progress(progress)
    rows = []
    with tqdm(total=len(specs) * len(chosen), disable=not show, desc="evaluate") as bar:
        for label, (name, options) in specs.items():
            options = with_seed(name, options, seed)
            attr = explain(model, x, t, name, **options)
            for metric in chosen:
                values = METRICS[metric].fn(model, x, t, attr, masks, name, options, settings)
                rows += [{"method": label, "metric": metric, "image": i, "value": float(v)}
                         for i, v in enumerate(values.tolist())]
                bar.update()
    long = pd.DataFrame(rows)
    if per_image:
        return long
    grouped = long.groupby(["method", "metric"], sort=False)["value"]
    table = grouped.agg(mean="mean", std="std", sem="sem", n="count").reset_index()
    table["higher_is_better"] = table["metric"].map(lambda m: METRICS[m].higher_is_better)
    return table

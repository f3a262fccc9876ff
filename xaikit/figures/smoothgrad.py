"""Figures of notebook ``05_smoothgrad``: the noise x samples grid, Gradient x Input with
growing T, and the 1/sqrt(T) convergence of the Monte-Carlo estimate.

The sample counts T and the reference T of the convergence curve come from the model's budget
(:func:`xaikit.budget`: T = 1, 4, 16, 64 and a T = 256 reference on the offline model). The
grid's noise levels are in units of the input's standard deviation, as on the tutorial slides
("noise = 0.5 std", ``noise_unit="std"`` of :func:`xaikit.methods.gradients.smoothgrad`);
:func:`noise_as_range_fraction` converts them to the paper's fraction of the value range.

References
----------
Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise" (arXiv:1706.03825).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import nn

from .._checks import Target
from ..budgets import budget
from ..examples import example_batch
from ..explain import explain
from ..plotting import CLIP_PERCENTILE, heatmap, plot_heatmap
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["NOISES", "NOISE_UNIT", "BASES", "noise_as_range_fraction", "smoothgrad_maps",
           "smoothgrad_grid", "smoothgrad_gxi_row", "smoothgrad_convergence"]

NB = "05_smoothgrad"
NOISES = (0.5, 1.0)
"""Noise levels of the grid: sigma in units of the input's standard deviation (the slides' rows
"noise = 0.5 std" and "noise = 1.0 std"; on the example images 9-28 % of the value range)."""
NOISE_UNIT = "std"
"""The unit of :data:`NOISES` (``noise_unit`` of SmoothGrad)."""
BASES = ("gradient", "gradient_x_input")
"""Base methods of the grid: the gradient and Gradient x Input (the slides' example)."""
_LABELS = {"gradient": "gradient", "gradient_x_input": "G x I"}


def noise_as_range_fraction(x: torch.Tensor, noise: float, noise_unit: str = NOISE_UNIT) -> float:
    """``sigma / (max(x) - min(x))`` for one input ``x`` (``(1, C, H, W)``) at ``noise`` in
    ``noise_unit`` (``"std"`` or ``"range"``): the paper's noise level of a setting."""
    if x.dim() != 4 or len(x) != 1:
        raise ValueError(f"x must be one input (1, C, H, W), got shape {tuple(x.shape)}")
    if noise_unit not in ("std", "range"):
        raise ValueError(f"noise_unit must be 'std' or 'range', got {noise_unit!r}")
    spread = (x.max() - x.min()).item()
    scale = x.std(correction=0).item() if noise_unit == "std" else spread
    return noise * scale / spread


def smoothgrad_maps(model: nn.Module, x: torch.Tensor, target: Target,
                    bases: Sequence[str] = BASES, noises: Sequence[float] = NOISES,
                    ts: Sequence[int] | None = None, seed: int = 0,
                    noise_unit: str = NOISE_UNIT) -> dict:
    """SmoothGrad maps ``{(base, noise, T): (N, C, H, W)}`` for every combination; ``ts`` from
    the model's budget (``smoothgrad_ts``) when omitted. Costs ``len(bases) x len(noises) x
    sum(ts)`` gradient passes per image."""
    ts = budget(model).smoothgrad_ts if ts is None else tuple(ts)
    return {(base, noise, t): explain(model, x, target, "smoothgrad", base=base, noise=noise,
                                      noise_unit=noise_unit, samples=t, seed=seed)
            for base in bases for noise in noises for t in ts}


def _shared_row(axes: Sequence[Axes], maps: Sequence[torch.Tensor], titles: Sequence[str],
                image: torch.Tensor | None = None) -> float:
    """Draw ``maps`` on one symmetric colour scale, set by the last map (the one with the most
    samples: its ``CLIP_PERCENTILE`` of ``|map|``), with a colour bar; returns the limit."""
    limit = float(np.percentile(np.abs(heatmap(maps[-1])), CLIP_PERCENTILE)) or 1.0
    shown = None
    for ax, m, title in zip(axes, maps, titles):
        plot_heatmap(m, image=image, ax=ax, title=title)
        shown = ax.images[-1]          # the heatmap layer (over the grey image, if any)
        shown.set_clim(-limit, limit)
    cbar = axes[-1].figure.colorbar(shown, ax=list(axes), fraction=0.025, pad=0.02)
    cbar.ax.tick_params(labelsize=6)
    cbar.formatter.set_powerlimits((-2, 2))
    cbar.ax.yaxis.get_offset_text().set_fontsize(6)
    return limit


@register_figure("smoothgrad_grid", notebook=NB, section="1. The estimator (claim D1)",
                 title="SmoothGrad of the gradient and of Gradient x Input: noise (rows) x T "
                       "(columns)")
def smoothgrad_grid(model: nn.Module, grid: dict | None = None,
                    ts: Sequence[int] | None = None) -> tuple[Figure, dict[str, Any]]:
    """The grid of the slides for example image 0: one row per base method and noise level
    (:data:`BASES` x :data:`NOISES`, in std units), one column per T (``ts``: the model's
    budget when omitted), the input first. Each row shares one colour scale (set by its largest
    T, entries beyond it clipped), shown by the row's colour bar.

    ``grid`` from :func:`smoothgrad_maps` (computed if omitted: ``4 x sum(ts)`` gradient
    passes). Returns ``fig`` and ``{"grid", "ts", "x", "target", "images", "limits"}``
    (``limits[(base, noise)]``: the row's colour limit).
    """
    import matplotlib.pyplot as plt

    ts = budget(model).smoothgrad_ts if ts is None else tuple(ts)
    ex = example_batch(model, n=1)
    if grid is None:
        grid = smoothgrad_maps(model, ex.x, ex.labels, ts=ts)
    rows = [(base, noise) for base in BASES for noise in NOISES]
    fig, axes = plt.subplots(len(rows), len(ts) + 1, figsize=(1.2 * (len(ts) + 1) + 0.8,
                                                              1.2 * len(rows)),
                             squeeze=False, layout="constrained")
    limits = {}
    for r, (base, noise) in enumerate(rows):
        axes[r, 0].imshow(ex.images[0].permute(1, 2, 0).numpy())
        axes[r, 0].set_axis_off()
        axes[r, 0].set_title(f"{_LABELS[base]}\nnoise {noise:.1f} std", fontsize=8)
        limits[base, noise] = _shared_row(axes[r, 1:], [grid[(base, noise, t)] for t in ts],
                                          [f"T = {t}" for t in ts])
    fig.suptitle("SmoothGrad, one colour scale per row (set by the largest T)", fontsize=9)
    return fig, {"grid": grid, "ts": ts, "x": ex.x, "target": ex.labels, "images": ex.images,
                 "limits": limits}


@register_figure("smoothgrad_gxi_row", notebook=NB, section="1. The estimator (claim D1)",
                 title="SmoothGrad of Gradient x Input at 1.0 std for growing T, over the image")
def smoothgrad_gxi_row(model: nn.Module, grid: dict | None = None, noise: float = 1.0,
                       ts: Sequence[int] | None = None) -> tuple[Figure, dict[str, Any]]:
    """One row: SmoothGrad of Gradient x Input at ``noise`` (in std units) for each T (``ts``:
    the model's budget when omitted) over the image, on one colour scale (set by the largest T)
    with a colour bar. Returns ``fig`` and ``{"grid", "limit"}``."""
    import matplotlib.pyplot as plt

    ts = budget(model).smoothgrad_ts if ts is None else tuple(ts)
    ex = example_batch(model, n=1)
    if grid is None:
        grid = smoothgrad_maps(model, ex.x, ex.labels, bases=("gradient_x_input",),
                               noises=(noise,), ts=ts)
    fig, axes = plt.subplots(1, len(ts), figsize=(1.9 * len(ts) + 0.8, 2.2), squeeze=False,
                             layout="constrained")
    limit = _shared_row(axes[0], [grid[("gradient_x_input", noise, t)] for t in ts],
                        [f"G x I, {noise:.1f} std, T = {t}" for t in ts], image=ex.images)
    for ax in axes[0]:
        ax.title.set_fontsize(7)
    return fig, {"grid": grid, "limit": limit}


@register_figure("smoothgrad_convergence", notebook=NB,
                 section="2. How fast does the noise fall? (claim D2)",
                 title="Distance of SmoothGrad with T samples to a reference with more, log-log")
def smoothgrad_convergence(model: nn.Module, ts: Sequence[int] | None = None,
                           noise: float = 0.2, noise_unit: str = "range",
                           reference_samples: int | None = None) -> tuple[Figure, dict[str, Any]]:
    """Relative L2 distance of T-sample SmoothGrad of the gradient (seed 7) to a
    ``reference_samples``-sample one (seed 123), example image 0.

    From the model's budget when omitted: ``reference_samples`` = ``smoothgrad_reference``
    (256 offline) and ``ts`` = the powers of two up to the grid's largest T (1 ... 64 offline).
    ``noise`` in ``noise_unit`` (default 0.2 of the range, the paper's convention).
    Returns ``fig`` and ``{"ts", "dist": [float], "slope": log-log slope, "reference_samples"}``.
    """
    import matplotlib.pyplot as plt

    b = budget(model)
    reference_samples = b.smoothgrad_reference if reference_samples is None else reference_samples
    if ts is None:
        ts = tuple(2 ** k for k in range(int(np.log2(max(b.smoothgrad_ts))) + 1))
    ex = example_batch(model, n=1)
    x, target = ex.x, ex.labels
    reference = explain(model, x, target, "smoothgrad", noise=noise, noise_unit=noise_unit,
                        samples=reference_samples, seed=123)
    dist = []
    for t in ts:
        m = explain(model, x, target, "smoothgrad", noise=noise, noise_unit=noise_unit,
                    samples=t, seed=7)
        dist.append(((m - reference).norm() / reference.norm()).item())
    slope = float(np.polyfit(np.log(ts), np.log(dist), 1)[0])
    fig, ax = plt.subplots(figsize=(3.6, 2.6))
    ax.loglog(ts, dist, "o-", label="measured")
    ax.loglog(ts, dist[0] / np.sqrt(ts), "--", label=r"$\propto 1/\sqrt{T}$")
    ax.set_xlabel("samples T")
    ax.set_ylabel(f"distance to T = {reference_samples}")
    ax.legend()
    fig.tight_layout()
    return fig, {"ts": tuple(ts), "dist": dist, "slope": slope,
                 "reference_samples": reference_samples}

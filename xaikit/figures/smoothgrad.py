"""Figures of notebook ``04_smoothgrad``: the noise x samples grid, Gradient x Input with
growing T, and the 1/sqrt(T) convergence of the Monte-Carlo estimate.

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
from ..examples import example_batch
from ..explain import explain
from ..plotting import plot_heatmap
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["TS", "NOISES", "smoothgrad_maps", "smoothgrad_grid",
           "smoothgrad_gxi_row", "smoothgrad_convergence"]

NB = "04_smoothgrad"
TS = (1, 4, 16, 64)
"""Sample counts T of the grid."""
NOISES = (0.1, 0.2, 0.5, 1.0)
"""Noise levels (standard deviation in units of the input's range) of the grid."""


def smoothgrad_maps(model: nn.Module, x: torch.Tensor, target: Target,
                    bases: Sequence[str] = ("gradient", "gradient_x_input"),
                    noises: Sequence[float] = NOISES, ts: Sequence[int] = TS,
                    seed: int = 0) -> dict:
    """SmoothGrad maps ``{(base, noise, T): (1, C, H, W)}`` for every combination."""
    return {(base, noise, t): explain(model, x, target, "smoothgrad", base=base, noise=noise,
                                      samples=t, seed=seed)
            for base in bases for noise in noises for t in ts}


@register_figure("smoothgrad_grid", notebook=NB, section="1. The estimator (claim D1)",
                 title="SmoothGrad of the gradient: noise level (rows) x samples T (columns)")
def smoothgrad_grid(model: nn.Module, grid: dict | None = None) -> tuple[Figure, dict[str, Any]]:
    """The T x noise grid of SmoothGrad on the gradient, for example image 0.

    ``grid`` from :func:`smoothgrad_maps` (computed if omitted). Returns ``fig`` and
    ``{"grid": grid, "x", "target", "images"}``.
    """
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=1)
    if grid is None:
        grid = smoothgrad_maps(model, ex.x, ex.labels)
    fig, axes = plt.subplots(len(NOISES), len(TS), figsize=(6.4, 6.4), squeeze=False)
    for r, noise in enumerate(NOISES):
        for c, t in enumerate(TS):
            plot_heatmap(grid[("gradient", noise, t)], ax=axes[r, c], title=f"noise {noise}, T = {t}")
    fig.suptitle("SmoothGrad of the gradient", y=1.0)
    fig.tight_layout()
    return fig, {"grid": grid, "x": ex.x, "target": ex.labels, "images": ex.images}


@register_figure("smoothgrad_gxi_row", notebook=NB, section="1. The estimator (claim D1)",
                 title="SmoothGrad of Gradient x Input at noise 0.2 for growing T")
def smoothgrad_gxi_row(model: nn.Module, grid: dict | None = None,
                       noise: float = 0.2) -> tuple[Figure, dict[str, Any]]:
    """One row: SmoothGrad of Gradient x Input at ``noise`` for each T, over the image."""
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=1)
    if grid is None:
        grid = smoothgrad_maps(model, ex.x, ex.labels, bases=("gradient_x_input",), noises=(noise,))
    fig, axes = plt.subplots(1, len(TS), figsize=(6.4, 1.8), squeeze=False)
    for c, t in enumerate(TS):
        plot_heatmap(grid[("gradient_x_input", noise, t)], image=ex.images, ax=axes[0, c],
                     title=f"G x I, noise {noise}, T = {t}")
    fig.tight_layout()
    return fig, {"grid": grid}


@register_figure("smoothgrad_convergence", notebook=NB, section="2. How fast does the noise fall? (claim D2)",
                 title="Distance of SmoothGrad with T samples to T = 256, log-log")
def smoothgrad_convergence(model: nn.Module, ts: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
                           noise: float = 0.2,
                           reference_samples: int = 256) -> tuple[Figure, dict[str, Any]]:
    """Relative L2 distance of T-sample SmoothGrad (seed 7) to a 256-sample one (seed 123).

    Returns ``fig`` and ``{"ts": ts, "dist": [float], "slope": log-log slope}``.
    """
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=1)
    x, target = ex.x, ex.labels
    reference = explain(model, x, target, "smoothgrad", noise=noise, samples=reference_samples,
                        seed=123)
    dist = []
    for t in ts:
        m = explain(model, x, target, "smoothgrad", noise=noise, samples=t, seed=7)
        dist.append(((m - reference).norm() / reference.norm()).item())
    slope = float(np.polyfit(np.log(ts), np.log(dist), 1)[0])
    fig, ax = plt.subplots(figsize=(3.6, 2.6))
    ax.loglog(ts, dist, "o-", label="measured")
    ax.loglog(ts, dist[0] / np.sqrt(ts), "--", label=r"$\propto 1/\sqrt{T}$")
    ax.set_xlabel("samples T")
    ax.set_ylabel(f"distance to T = {reference_samples}")
    ax.legend()
    fig.tight_layout()
    return fig, {"ts": ts, "dist": dist, "slope": slope}

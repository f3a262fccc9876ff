"""Figures of notebook ``01_perturbation``: occlusion with different fill values, the mask of
meaningful perturbation, and LIME with two seeds.

References
----------
Zeiler & Fergus 2014, "Visualizing and understanding convolutional networks" (ECCV);
Fong & Vedaldi 2017, "Interpretable explanations of black boxes by meaningful perturbation"
(ICCV); Ribeiro et al. 2016, "Why should I trust you?" (KDD).
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Sequence

from torch import nn

from ..budgets import budget
from ..examples import example_batch
from ..explain import explain
from ..images import denormalize
from ..models import model_spec
from ..plotting import plot_heatmap
from ..references import gaussian_blur
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["OCCLUSION_CONFIGS", "occlusion_fills", "meaningful_perturbation_mask", "lime_seeds"]

NB = "01_perturbation"
FLOAT64_MAX_PARAMETERS = 10_000_000
"""Models up to this size run the iterative optimisations of the figures in float64."""
OCCLUSION_CONFIGS = {"logit, zero fill": {"fill": 0.0}, "logit, mean fill": {"fill": "mean"},
                     "logit, blur fill": {"fill": "blur"}, "logit, noise fill": {"fill": "noise"},
                     "probability, zero fill": {"fill": 0.0, "measure": "probability"}}
"""The occlusion settings of notebook 01, section 3."""


@register_figure("occlusion_fills", notebook=NB, section="3. Occlusion on VGG-16 (claim A4)",
                 title="Occlusion maps with zero, mean, blur and noise fill, logit and probability")
def occlusion_fills(model: nn.Module) -> tuple[Figure, dict[str, Any]]:
    """Occlusion of example 0 per :data:`OCCLUSION_CONFIGS`, window and stride from the model's
    budget (:func:`xaikit.budget`: side/8 and side/16 on the offline model, side/4 and side/8
    on VGG-16 at 224, where each forward pass costs about 0.15 s on two CPU cores).

    Returns ``fig`` and ``{"occ": {name: (1, C, H, W)}, "window": int, "stride": int}``."""
    import matplotlib.pyplot as plt

    side = model_spec(model).input_size
    ex = example_batch(model, n=2)
    x, target = ex.x[:1], ex.labels[:1]
    b = budget(model)
    window, stride = side // b.occlusion_window, side // b.occlusion_stride
    occ = {name: explain(model, x, target, "occlusion", window=window, stride=stride, **opts)
           for name, opts in OCCLUSION_CONFIGS.items()}
    fig, axes = plt.subplots(1, len(occ), figsize=(10, 2.2))
    for ax, (name, m) in zip(axes, occ.items()):
        plot_heatmap(m, image=ex.images[:1], ax=ax, title=name)
    fig.tight_layout()
    return fig, {"occ": occ, "window": window, "stride": stride}


@register_figure("meaningful_perturbation_mask", notebook=NB,
                 section="5. Meaningful perturbation (claim A6)",
                 title="Meaningful perturbation: image, deleted region and perturbed input")
def meaningful_perturbation_mask(model: nn.Module, iterations: int | None = None,
                                 seed: int = 0) -> tuple[Figure, dict[str, Any]]:
    """The learned mask ``m`` (1 = kept) of example 0 and the blurred-where-deleted input.

    ``iterations`` (Adam steps): the model's budget (:func:`xaikit.budget`) when omitted.

    Returns ``fig`` and ``{"mp": (1, C, H, W), "keep": (1, 1, H, W), "blurred", "x",
    "target"}``."""
    import matplotlib.pyplot as plt

    iterations = budget(model).meaningful_iterations if iterations is None else iterations
    ex = example_batch(model, n=2)
    x, target = ex.x[:1], ex.labels[:1]
    # Many Adam steps (150 offline) amplify float32 rounding (the masked logit moved by 0.02 between CPU
    # kernels and thread counts); a small model is optimised in float64, where the printed
    # digits are the same on every machine. VGG-16 stays in float32 (float64 convolutions are
    # many times slower on a CPU).
    net = model
    if sum(p.numel() for p in model.parameters()) <= FLOAT64_MAX_PARAMETERS:
        net = copy.deepcopy(model).double()
    mp = explain(net, x.to(next(net.parameters()).dtype), target, "meaningful_perturbation",
                 iterations=iterations, seed=seed).to(x.dtype)
    keep = 1 - mp.sum(1, keepdim=True)          # the map is spread over the channels
    blurred = gaussian_blur(x)
    fig, axes = plt.subplots(1, 3, figsize=(6.4, 2.2))
    axes[0].imshow(ex.images[0].permute(1, 2, 0))
    axes[0].set_title("image")
    axes[0].set_axis_off()
    plot_heatmap(mp, ax=axes[1], signed=False, title="1 - m (deleted)")
    axes[2].imshow(denormalize(keep * x + (1 - keep) * blurred, model)[0].permute(1, 2, 0))
    axes[2].set_title(r"$\Phi(x, m)$")
    axes[2].set_axis_off()
    fig.tight_layout()
    return fig, {"mp": mp, "keep": keep, "blurred": blurred, "x": x, "target": target}


@register_figure("lime_seeds", notebook=NB, section="6. LIME on superpixels (claim A7)",
                 title="LIME with two seeds (samples: the model's budget)")
def lime_seeds(model: nn.Module, seeds: Sequence[int] = (0, 1),
               samples: int | None = None) -> tuple[Figure, dict[str, Any]]:
    """LIME maps of example 0 for each seed, ``samples`` from the model's budget when omitted.

    Returns ``fig`` and ``{"lime": {seed: map}, "samples": int}``."""
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=2)
    x, target = ex.x[:1], ex.labels[:1]
    samples = budget(model).lime_samples if samples is None else samples
    lime = {seed: explain(model, x, target, "lime", samples=samples, seed=seed) for seed in seeds}
    fig, axes = plt.subplots(1, len(lime), figsize=(4.4, 2.2), squeeze=False)
    for ax, (seed, m) in zip(axes[0], lime.items()):
        plot_heatmap(m, image=ex.images[:1], ax=ax, title=f"LIME, seed {seed}")
    fig.tight_layout()
    return fig, {"lime": lime, "samples": samples}

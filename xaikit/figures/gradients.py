"""Figures of notebooks ``03_gradients`` and ``06_deeplift``: gradient and Gradient x Input
maps, Integrated Gradients with three references, DeepLIFT next to IG on VGG-16.

References
----------
Simonyan et al. 2014, arXiv:1312.6034 (gradient); Shrikumar et al. 2016, arXiv:1605.01713;
Sundararajan et al. 2017, "Axiomatic attribution for deep networks" (ICML); Shrikumar et al.
2017, "Learning important features through propagating activation differences" (ICML).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..budgets import budget
from ..examples import example_batch
from ..explain import explain
from ..images import preprocess
from ..plotting import plot_heatmap
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["gradient_maps", "ig_baselines", "deeplift_vs_ig"]


@register_figure("gradient_maps", notebook="03_gradients",
                 section="6. Gradient × Input on an image (claim B6)",
                 title="Gradient (top) and Gradient x Input (bottom) for the four examples")
def gradient_maps(model: nn.Module) -> tuple[Figure, dict[str, Any]]:
    """Gradient and Gradient x Input of the true class of examples 0-3.

    Returns ``fig`` and ``{"grad": (4, C, H, W), "gxi": (4, C, H, W)}``."""
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=4)
    grad = explain(model, ex.x, ex.labels, "gradient")
    gxi = explain(model, ex.x, ex.labels, "gradient_x_input")
    fig, axes = plt.subplots(2, 4, figsize=(8, 4))
    for i in range(4):
        plot_heatmap(grad[i:i + 1], ax=axes[0, i], title=f"gradient: {ex.names[i]}")
        plot_heatmap(gxi[i:i + 1], image=ex.images[i:i + 1], ax=axes[1, i],
                     title="Gradient x Input")
    fig.tight_layout()
    return fig, {"grad": grad, "gxi": gxi}


@register_figure("ig_baselines", notebook="03_gradients",
                 section="7. The reference point matters (claim B7)",
                 title="Integrated Gradients with a black, a blurred and a noise reference")
def ig_baselines(model: nn.Module, steps: int | None = None, seed: int = 0,
                 images: int | None = None) -> tuple[Figure, dict[str, Any]]:
    """IG (``steps``) of the first ``images`` examples with three references; uniform noise drawn
    with ``seed``. ``steps`` and ``images`` default to the model's budget (:func:`xaikit.budget`).

    Returns ``fig`` and ``{"maps": {name: (images, C, H, W)}, "baselines": {name: str or tensor}}``."""
    import matplotlib.pyplot as plt

    b = budget(model)
    steps = b.ig_steps if steps is None else steps
    ex = example_batch(model, n=b.ig_images if images is None else images)
    gen = torch.Generator().manual_seed(seed)
    noise = preprocess(torch.rand(ex.images.shape, generator=gen), model)
    baselines = {"black": "black", "blur": "blur", "noise": noise}
    maps = {name: explain(model, ex.x, ex.labels, "integrated_gradients", baseline=b, steps=steps)
            for name, b in baselines.items()}
    fig, axes = plt.subplots(1, 3, figsize=(7, 2.4))
    for ax, (name, m) in zip(axes, maps.items()):
        plot_heatmap(m[:1], image=ex.images[:1], ax=ax, title=f"IG, {name} reference")
    fig.tight_layout()
    return fig, {"maps": maps, "baselines": baselines}


@register_figure("deeplift_vs_ig", notebook="06_deeplift", section="6. DeepLIFT on VGG-16 (claim D8)",
                 title="DeepLIFT (Rescale) and IG with a black and a blurred reference")
def deeplift_vs_ig(model: nn.Module, steps: int | None = None) -> tuple[Figure, dict[str, Any]]:
    """DeepLIFT and IG (``steps``: the model's budget when omitted) of examples 0-1 for the
    black and blurred references.

    Returns ``fig`` and ``{"maps": {(method, reference): (2, C, H, W)}}``."""
    import matplotlib.pyplot as plt

    steps = budget(model).ig_steps if steps is None else steps
    ex = example_batch(model, n=2)
    maps = {}
    for ref in ("black", "blur"):
        maps[("DeepLIFT", ref)] = explain(model, ex.x, ex.labels, "deeplift", baseline=ref)
        maps[("IG", ref)] = explain(model, ex.x, ex.labels, "integrated_gradients", baseline=ref,
                                    steps=steps)
    fig, axes = plt.subplots(1, 4, figsize=(8, 2.2))
    for ax, (key, m) in zip(axes, maps.items()):
        plot_heatmap(m[:1], image=ex.images[:1], ax=ax, title=f"{key[0]}, {key[1]}")
    fig.tight_layout()
    return fig, {"maps": maps}

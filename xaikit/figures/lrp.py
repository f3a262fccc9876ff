"""Figures of notebooks ``07_lrp_from_scratch`` and ``08_lrp_rules_vgg16``: LRP composite
maps on VGG-16 and the comparison of LRP-0, LRP-epsilon, LRP-gamma and the composite.

References
----------
Montavon et al. 2019, "Layer-wise relevance propagation: an overview" (LNCS 11700), Sec. 10
(rule comparison on VGG-16); Bach et al. 2015, "On pixel-wise explanations for non-linear
classifier decisions by layer-wise relevance propagation" (PLoS ONE).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..budgets import budget
from ..data import make_shapes
from ..evaluation import positivity, relevance_mass, roughness
from ..examples import example_batch
from ..explain import explain
from ..images import preprocess
from ..models import model_spec
from ..plotting import plot_heatmap
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RECIPES", "rule_batch",
           "lrp_composite_maps", "lrp_rule_comparison"]

RECIPES = {"LRP-0": {"rule": "0"}, "LRP-epsilon": {"rule": "epsilon"},
           "LRP-gamma": {"rule": "gamma"}, "composite": {"composite": "vgg16"}}
"""The four recipes of notebook 08, as ``xk.explain(..., "lrp", **options)`` options."""


def rule_batch(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                                          torch.Tensor]:
    """The batch notebook 08 compares rules on: the model's budget of images
    (:func:`xaikit.budget`: 32 shapes images (seed 21) with masks offline, the first 4 example
    photos on ImageNet). Returns ``(x, target, masks or None, images)``."""
    n = budget(model).rule_images
    if model_spec(model).dataset != "shapes":
        ex = example_batch(model, n=n)
        return ex.x, ex.labels, None, ex.images
    batch = make_shapes(n, seed=21)
    return preprocess(batch.images, model), batch.labels, batch.masks, batch.images


@register_figure("lrp_rule_comparison", notebook="08_lrp_rules_vgg16",
                 section="2. Four recipes side by side",
                 title="LRP-0, LRP-epsilon, LRP-gamma and the composite on VGG-16, two images")
def lrp_rule_comparison(model: nn.Module, recipes: dict | None = None) -> tuple[Figure, dict[str, Any]]:
    """Each recipe on :func:`rule_batch`; the figure shows the first two images.

    Returns ``fig`` and ``{"stats": {recipe: (roughness, negative share, mass on object or
    nan)}, "maps": {recipe: (4, C, H, W)}, "x", "target", "masks", "images"}``.
    """
    import matplotlib.pyplot as plt

    recipes = RECIPES if recipes is None else recipes
    xb, tb, mb, images = rule_batch(model)
    stats, maps = {}, {}
    for name, options in recipes.items():
        a = explain(model, xb, tb, "lrp", **options)
        maps[name] = a[:4]
        stats[name] = (roughness(a).mean().item(), positivity(a).mean().item(),
                       relevance_mass(a, mb).mean().item() if mb is not None else float("nan"))
    fig, axes = plt.subplots(2, len(maps), figsize=(8, 4.2), squeeze=False)
    for col, (name, m) in enumerate(maps.items()):
        for row in range(2):
            plot_heatmap(m[row:row + 1], image=images[row:row + 1], ax=axes[row, col],
                         title=name if row == 0 else None)
    fig.tight_layout()
    return fig, {"stats": stats, "maps": maps, "x": xb, "target": tb, "masks": mb,
                 "images": images}


@register_figure("lrp_composite_maps", notebook="07_lrp_from_scratch",
                 section="6. On VGG-16: from scratch, `xk.explain` and zennit agree",
                 title="The VGG-16 LRP composite on two example images")
def lrp_composite_maps(model: nn.Module, maps: torch.Tensor | None = None) -> tuple[Figure, dict[str, Any]]:
    """``xk.explain(..., "lrp", composite="vgg16")`` on examples 0 and 1 (``maps (2, C, H, W)``
    if already computed). Returns ``fig`` and ``{"maps": (2, C, H, W)}``."""
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=2)
    if maps is None:
        maps = explain(model, ex.x, ex.labels, "lrp", composite="vgg16")
    fig, axes = plt.subplots(1, 2, figsize=(4.4, 2.2))
    for i, ax in enumerate(axes):
        plot_heatmap(maps[i:i + 1], image=ex.images[i:i + 1], ax=ax,
                     title=f"LRP composite: {ex.names[i]}")
    fig.tight_layout()
    return fig, {"maps": maps}

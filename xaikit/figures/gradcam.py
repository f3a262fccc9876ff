"""Figures of notebook ``08_gradcam``: Grad-CAM maps, Grad-CAM per VGG block, class
discrimination against Guided Backprop, and Guided Grad-CAM.

References
----------
Selvaraju et al. 2017, "Grad-CAM: visual explanations from deep networks via gradient-based
localization" (ICCV).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..data import make_pair, make_shapes
from ..examples import example_batch
from ..explain import explain
from ..images import preprocess
from ..models import model_spec
from ..plotting import plot_heatmap
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["BLOCKS", "gradcam_maps", "gradcam_layers", "gradcam_class_pair",
           "gradcam_class_discrimination", "guided_gradcam_maps"]

NB = "08_gradcam"
BLOCKS = {"block 1": "features.2", "block 2": "features.7", "block 3": "features.14",
          "block 4": "features.21", "block 5": "features.28"}
"""The last convolution of each VGG-16 block, before its ReLU (the same names on both models).
Grad-CAM's default layer is the ReLU after block 5's (``features.29``), not ``features.28``."""


@register_figure("gradcam_maps", notebook=NB, section="1. The two formulas (claim F1)",
                 title="Grad-CAM (rectified maps of the last convolution) on the four example images")
def gradcam_maps(model: nn.Module, maps: torch.Tensor | None = None) -> tuple[Figure, dict[str, Any]]:
    """Grad-CAM at its default layer (the rectified maps of the last convolution,
    ``features.29``) for the true class of examples 0-3.

    ``maps (4, C, H, W)`` if already computed. Returns ``fig`` and ``{"maps": maps}``."""
    import matplotlib.pyplot as plt

    spec = model_spec(model)
    ex = example_batch(model, n=4)
    if maps is None:
        maps = explain(model, ex.x, ex.labels, "gradcam")
    fig, axes = plt.subplots(1, 4, figsize=(8, 2.2))
    for i, ax in enumerate(axes):
        plot_heatmap(maps[i:i + 1], image=ex.images[i:i + 1], ax=ax, signed=False,
                     title=f"Grad-CAM: {spec.classes[ex.labels[i]]}")
    fig.tight_layout()
    return fig, {"maps": maps}


def _layer_scores(model: nn.Module, n: int = 64, seed: int = 11) -> dict:
    test = make_shapes(n, seed=seed)
    xt, mt, yt = preprocess(test.images, model), test.masks, test.labels
    scores = {}
    for block, name in BLOCKS.items():
        h = explain(model, xt, yt, "gradcam", layer=name).sum(1)          # (N, H, W)
        mass = ((h * mt).flatten(1).sum(1) / h.flatten(1).sum(1).clamp(min=1e-12)).mean().item()
        hit = mt.flatten(1).gather(1, h.flatten(1).argmax(1, keepdim=True)).float().mean().item()
        scores[block] = (mass, hit)
    return {"scores": scores, "object_area": mt.float().mean().item()}


@register_figure("gradcam_layers", notebook=NB, section="2. Which layer? (claim F2)",
                 title="Grad-CAM at the last convolution of each VGG-16 block")
def gradcam_layers(model: nn.Module, images: int = 2) -> tuple[Figure, dict[str, Any]]:
    """Grad-CAM of ``images`` examples at each block's last convolution, before its ReLU
    (:data:`BLOCKS`; rows: images).

    On ``vgg16-shapes`` also scores each block on 64 test images (seed 11): mean mass of the
    map on the object mask and pointing game (argmax inside the mask).
    Returns ``fig`` and ``{"maps": {block: (images, C, H, W)}, "scores": {block: (mass, hit)}
    or None, "object_area": float or None}``.
    """
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=images)
    maps = {block: explain(model, ex.x, ex.labels, "gradcam", layer=name)
            for block, name in BLOCKS.items()}
    fig, axes = plt.subplots(images, len(BLOCKS), figsize=(8, 1.8 * images), squeeze=False)
    for col, (block, m) in enumerate(maps.items()):
        for row in range(images):
            plot_heatmap(m[row:row + 1], image=ex.images[row:row + 1], ax=axes[row, col],
                         signed=False, title=f"{block} ({BLOCKS[block]})" if row == 0 else None)
    fig.tight_layout()
    data = {"maps": maps, "scores": None, "object_area": None}
    if ex.masks is not None:
        data.update(_layer_scores(model))
    return fig, data


def gradcam_class_pair(model: nn.Module) -> tuple[torch.Tensor, tuple[int, int],
                                                  torch.Tensor | None, torch.Tensor]:
    """The two-class input of claim F3: a square (left) and a star (right) offline, the cat
    photo with tabby (281) vs tiger cat (282) on ImageNet.

    Returns ``(x (1, 3, H, W), classes (a, b), masks (1, 2, H, W) or None, image (1, 3, H, W))``.
    """
    ex = example_batch(model, n=1)
    if ex.masks is not None:
        a, b = 1, 4
        images, masks = make_pair(1, (a, b), seed=3)
        return preprocess(images, model), (a, b), masks, images
    return ex.x[:1], (281, 282), None, ex.images[:1]


@register_figure("gradcam_class_discrimination", notebook=NB,
                 section="3. Class discrimination (claim F3)",
                 title="Grad-CAM and Guided Backprop for two classes in one image")
def gradcam_class_discrimination(model: nn.Module) -> tuple[Figure, dict[str, Any]]:
    """Grad-CAM (default layer) and Guided Backprop for each class of :func:`gradcam_class_pair`.

    Returns ``fig`` and ``{"x", "classes", "masks", "image", "cams": {c: (1, C, H, W)},
    "gbp": {c: (1, C, H, W)}}``.
    """
    import matplotlib.pyplot as plt

    spec = model_spec(model)
    xp, (a, b), masks, image = gradcam_class_pair(model)
    cams = {c: explain(model, xp, c, "gradcam") for c in (a, b)}
    gbp = {c: explain(model, xp, c, "guided_backprop") for c in (a, b)}
    fig, axes = plt.subplots(1, 5, figsize=(10, 2.2))
    axes[0].imshow(image[0].permute(1, 2, 0))
    axes[0].set_axis_off()
    axes[0].set_title("image")
    for k, c in enumerate((a, b)):
        plot_heatmap(cams[c], image=image, ax=axes[1 + k], signed=False,
                     title=f"Grad-CAM: {spec.classes[c]}")
        plot_heatmap(gbp[c], ax=axes[3 + k], title=f"Guided BP: {spec.classes[c]}")
    fig.tight_layout()
    return fig, {"x": xp, "classes": (a, b), "masks": masks, "image": image, "cams": cams,
                 "gbp": gbp}


@register_figure("guided_gradcam_maps", notebook=NB, section="4. Guided Grad-CAM (claim F4)",
                 title="Guided Backprop, Grad-CAM and their product, Guided Grad-CAM")
def guided_gradcam_maps(model: nn.Module, guided: torch.Tensor | None = None,
                         cam: torch.Tensor | None = None,
                         ggc: torch.Tensor | None = None) -> tuple[Figure, dict[str, Any]]:
    """Guided Backprop, the Grad-CAM map ``(N, 1, H, W)`` and Guided Grad-CAM of example 0
    (each computed on the four examples at the default layer if not given). Returns ``fig``
    and the three maps."""
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=4)
    if guided is None:
        guided = explain(model, ex.x, ex.labels, "guided_backprop")
    if cam is None:
        cam = explain(model, ex.x, ex.labels, "gradcam").sum(1, keepdim=True)
    if ggc is None:
        ggc = explain(model, ex.x, ex.labels, "guided_gradcam")
    fig, axes = plt.subplots(1, 3, figsize=(6.4, 2.2))
    plot_heatmap(guided[:1], ax=axes[0], title="Guided Backprop")
    plot_heatmap(cam[:1], image=ex.images[:1], ax=axes[1], signed=False, title="Grad-CAM")
    plot_heatmap(ggc[:1], ax=axes[2], title="Guided Grad-CAM")
    fig.tight_layout()
    return fig, {"guided": guided, "cam": cam, "ggc": ggc}

"""Figures of notebook ``10_gradcam``: Grad-CAM maps, Grad-CAM per VGG block, class
discrimination against Guided Backprop on images of two objects, and Guided Grad-CAM.

References
----------
Selvaraju et al. 2017, "Grad-CAM: visual explanations from deep networks via gradient-based
localization" (ICCV).
"""
from __future__ import annotations

from itertools import permutations
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..budgets import budget
from ..data import SHAPES_CLASSES, make_pair, make_shapes
from ..evaluation import pointing_game, relevance_mass
from ..examples import PHOTO_LABELS, example_batch
from ..explain import explain
from ..images import denormalize, load_image, preprocess
from ..methods.gradcam import default_layer
from ..models import model_spec
from ..plotting import plot_heatmap
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["BLOCKS", "PHOTO_PAIRS", "gradcam_maps", "gradcam_layers", "gradcam_class_pairs",
           "gradcam_class_discrimination", "guided_gradcam_maps", "map_correlation"]

NB = "10_gradcam"
BLOCKS = {"block 1": "features.2", "block 2": "features.7", "block 3": "features.14",
          "block 4": "features.21", "block 5": "features.28"}
"""The last convolution of each VGG-16 block, before its ReLU (the same names on both models).
Grad-CAM's default layer is the ReLU after block 5's (``features.29``), not ``features.28``."""

PHOTO_PAIRS: tuple[tuple[str, str], ...] = tuple(
    pair for a, b in (("chelsea", "coffee"), ("grace_hopper", "rocket"), ("chelsea", "grace_hopper"),
                      ("coffee", "rocket"), ("chelsea", "rocket"), ("coffee", "grace_hopper"))
    for pair in ((a, b), (b, a)))
"""The two-photo images of claim F3 on the ImageNet path (left, right), in the order used:
each pair of :data:`~xaikit.examples.PHOTO_LABELS` photos in both orders, cat | coffee first."""


@register_figure("gradcam_maps", notebook=NB, section="1. The two formulas (claim F1)",
                 title="Grad-CAM (rectified maps of the last convolution) on the four example images")
def gradcam_maps(model: nn.Module, maps: torch.Tensor | None = None) -> tuple[Figure, dict[str, Any]]:
    """Grad-CAM at its default layer (the rectified maps of the last convolution,
    ``features.29``) for the true class of examples 0-3, each map on its own colour scale (up
    to its ``CLIP_PERCENTILE``), with a colour bar.

    ``maps (4, C, H, W)`` if already computed. Returns ``fig`` and ``{"maps": maps}``."""
    import matplotlib.pyplot as plt

    spec = model_spec(model)
    ex = example_batch(model, n=4)
    if maps is None:
        maps = explain(model, ex.x, ex.labels, "gradcam")
    fig, axes = plt.subplots(1, 4, figsize=(9, 2.2), layout="constrained")
    for i, ax in enumerate(axes):
        plot_heatmap(maps[i:i + 1], image=ex.images[i:i + 1], ax=ax, signed=False,
                     title=f"Grad-CAM: {spec.classes[ex.labels[i]]}")
        _small_colorbar(ax.images[-1], [ax])
    return fig, {"maps": maps}


def _small_colorbar(shown: Any, axes: list[Axes]) -> None:
    cbar = axes[0].figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.03)
    cbar.ax.tick_params(labelsize=6)
    cbar.formatter.set_powerlimits((-2, 2))
    cbar.ax.yaxis.get_offset_text().set_fontsize(6)


def _layers(model: nn.Module) -> dict[str, str]:
    """:data:`BLOCKS` and, as ``"default"``, Grad-CAM's default layer (``features.29``)."""
    return {**BLOCKS, "default": default_layer(model)}


def _layer_scores(model: nn.Module, n: int, seed: int) -> dict[str, Any]:
    """Per image: mass on the object (an all-zero map counts 0) and pointing game per layer."""
    test = make_shapes(n, seed=seed)
    x, masks = preprocess(test.images, model), test.masks
    scores = {}
    for key, name in _layers(model).items():
        h = explain(model, x, test.labels, "gradcam", layer=name)
        scores[key] = {"mass": relevance_mass(h, masks).nan_to_num(0.0),
                       "hit": pointing_game(h, masks)}
    return {"scores": scores, "object_area": masks.flatten(1).float().mean(1)}


@register_figure("gradcam_layers", notebook=NB, section="2. Which layer? (claim F2)",
                 title="Grad-CAM at the last convolution of each VGG-16 block and at the default layer")
def gradcam_layers(model: nn.Module, images: int = 2, scored: int = 64,
                   seed: int = 11) -> tuple[Figure, dict[str, Any]]:
    """Grad-CAM of ``images`` examples (rows) at each block's last convolution, before its ReLU
    (:data:`BLOCKS`), and at the default layer (``"default"``: the ReLU after block 5's
    convolution, ``features.29``). Each map has its own colour scale: the columns are compared
    by where they point, not by magnitude.

    On models with object masks (``vgg16-shapes``) also scores each layer on ``scored`` test
    images (``make_shapes(scored, seed)``), per image: the map's mass on the object mask
    (:func:`~xaikit.evaluation.relevance_mass`; an all-zero map counts 0) and the pointing game
    (:func:`~xaikit.evaluation.pointing_game`: 1 or 0, a share for tied maxima).

    Returns ``fig`` and ``{"maps": {key: (images, C, H, W)}, "layers": {key: module name},
    "sizes": {key: (h, w) of the layer's maps}, "scores": {key: {"mass": (scored,), "hit":
    (scored,)}} or None, "object_area": (scored,) or None}`` (``key``: ``"block 1"`` ...
    ``"block 5"``, ``"default"``).
    """
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=images)
    layers = _layers(model)
    modules = dict(model.named_modules())
    sizes: dict[str, tuple[int, ...]] = {}

    def size_of(key: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            sizes[key] = tuple(output.shape[-2:])
        return hook

    hooks = [modules[name].register_forward_hook(size_of(key)) for key, name in layers.items()]
    try:
        with torch.no_grad():
            model(ex.x[:1])
    finally:
        for hook in hooks:
            hook.remove()
    maps = {key: explain(model, ex.x, ex.labels, "gradcam", layer=name)
            for key, name in layers.items()}
    fig, axes = plt.subplots(images, len(layers), figsize=(9.6, 1.8 * images), squeeze=False)
    for col, (key, m) in enumerate(maps.items()):
        for row in range(images):
            plot_heatmap(m[row:row + 1], image=ex.images[row:row + 1], ax=axes[row, col],
                         signed=False, title=f"{key}\n({layers[key]})" if row == 0 else None)
    fig.tight_layout()
    data: dict[str, Any] = {"maps": maps, "layers": layers, "sizes": sizes, "scores": None,
                            "object_area": None}
    if ex.masks is not None:
        data.update(_layer_scores(model, scored, seed))
    return fig, data


def _photo_pairs(model: nn.Module, n: int) -> dict[str, Any]:
    if not 1 <= n <= len(PHOTO_PAIRS):
        raise ValueError(f"the ImageNet path composes {len(PHOTO_PAIRS)} two-photo images "
                         f"(PHOTO_PAIRS), asked for {n}")
    size = model_spec(model).input_size
    left = size // 2
    images = []
    for names in PHOTO_PAIRS[:n]:
        halves = [denormalize(preprocess(load_image(name), model), model).cpu() for name in names]
        images.append(torch.cat([torch.nn.functional.interpolate(h, size=(size, w), mode="bilinear",
                                                                 antialias=True, align_corners=False)
                                 for h, w in zip(halves, (left, size - left))], dim=3).clamp(0, 1))
    masks = torch.zeros(n, 2, size, size, dtype=torch.bool)
    masks[:, 0, :, :left] = True
    masks[:, 1, :, left:] = True
    classes = torch.tensor([[PHOTO_LABELS[a], PHOTO_LABELS[b]] for a, b in PHOTO_PAIRS[:n]])
    return {"images": torch.cat(images), "classes": classes, "masks": masks, "region": "photo"}


def gradcam_class_pairs(model: nn.Module, n: int | None = None, seed: int = 3) -> dict[str, Any]:
    """The two-class inputs of claim F3: ``n`` images of two objects of different classes side
    by side (default: the model's budget, ``gradcam_pairs``).

    Offline (``vgg16-shapes``): image ``k`` is :func:`~xaikit.data.make_pair` of the ``k``-th
    ordered pair of distinct classes (cycling through all 30; seed ``seed + k``), and the masks
    are the two objects. On ImageNet: two photos of :data:`PHOTO_PAIRS`, each centre-cropped as
    by :func:`~xaikit.preprocess` and resized to half width, side by side (cat | coffee first);
    the masks are the two halves.

    Returns ``{"x": (n, 3, H, W) model input, "images": (n, 3, H, W) in [0, 1], "classes":
    (n, 2) long (left, right), "masks": (n, 2, H, W) bool (left, right), "region": "object" or
    "photo"}``.
    """
    spec = model_spec(model)
    n = budget(model).gradcam_pairs if n is None else n
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n must be an int >= 2 (intervals need two images), got {n!r}")
    if spec.dataset != "shapes":                         # the photos: no object masks
        pairs = _photo_pairs(model, n)
    else:
        ordered = list(permutations(range(len(SHAPES_CLASSES)), 2))
        made = [make_pair(1, ordered[k % len(ordered)], seed=seed + k, size=spec.input_size)
                for k in range(n)]
        pairs = {"images": torch.cat([im for im, _ in made]), "masks": torch.cat([m for _, m in made]),
                 "classes": torch.tensor([ordered[k % len(ordered)] for k in range(n)]),
                 "region": "object"}
    return {"x": preprocess(pairs["images"], model), **pairs}


def map_correlation(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Pearson correlation ``(N,)`` of the channel-summed maps ``u`` and ``v`` ``(N, C, H, W)``,
    image by image, in float64; NaN where a map is constant (e.g. an all-zero Grad-CAM map)."""
    a = u.detach().sum(1).flatten(1).double()
    b = v.detach().sum(1).flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


@register_figure("gradcam_class_discrimination", notebook=NB,
                 section="3. Class discrimination (claim F3)",
                 title="Grad-CAM and Guided Backprop for the two classes of images of two objects")
def gradcam_class_discrimination(model: nn.Module, pairs: int | None = None,
                                 shown: int = 2) -> tuple[Figure, dict[str, Any]]:
    """Grad-CAM (default layer) and Guided Backprop for each class of the ``pairs`` images of
    :func:`gradcam_class_pairs` (default: the budget's ``gradcam_pairs``); the figure shows the
    first ``shown`` (rows), each map on its own colour scale, with a colour bar.

    Per image, for the left (0) and the right (1) class: the share of its Grad-CAM mass on its
    own object (photo) and on the other one (:func:`~xaikit.evaluation.relevance_mass`), and the
    correlation of the two classes' maps per method (:func:`map_correlation`).

    Returns ``fig`` and ``{**gradcam_class_pairs(model, pairs), "logits": (n, 2), "gradcam":
    ((n, C, H, W) left class, right class), "guided_backprop": (left, right), "own": (n, 2),
    "other": (n, 2), "correlation": {"Grad-CAM": (n,), "Guided Backprop": (n,)}}``.
    """
    import matplotlib.pyplot as plt

    spec = model_spec(model)
    data = gradcam_class_pairs(model, pairs)
    x, classes, masks = data["x"], data["classes"], data["masks"]
    cams = tuple(explain(model, x, classes[:, k], "gradcam") for k in (0, 1))
    gbp = tuple(explain(model, x, classes[:, k], "guided_backprop") for k in (0, 1))
    with torch.no_grad():
        logits = model(x).gather(1, classes.to(x.device)).cpu()
    own = torch.stack([relevance_mass(cams[k], masks[:, k]).nan_to_num(0.0) for k in (0, 1)], 1)
    other = torch.stack([relevance_mass(cams[k], masks[:, 1 - k]).nan_to_num(0.0) for k in (0, 1)], 1)
    data.update(logits=logits, gradcam=cams, guided_backprop=gbp, own=own, other=other,
                correlation={"Grad-CAM": map_correlation(*cams),
                             "Guided Backprop": map_correlation(*gbp)})

    rows = min(shown, len(x))
    fig, axes = plt.subplots(rows, 5, figsize=(12, 2.3 * rows), squeeze=False,
                             layout="constrained")
    for r in range(rows):
        names = [spec.classes[c] for c in classes[r]]
        axes[r, 0].imshow(data["images"][r].permute(1, 2, 0).numpy())
        axes[r, 0].set_axis_off()
        axes[r, 0].set_title(" | ".join(names), fontsize=9)
        for k in (0, 1):
            plot_heatmap(cams[k][r:r + 1], image=data["images"][r:r + 1], ax=axes[r, 1 + k],
                         signed=False, title=f"Grad-CAM: {names[k]}")
            plot_heatmap(gbp[k][r:r + 1], ax=axes[r, 3 + k], title=f"Guided BP: {names[k]}")
    for ax in axes[:, 1:].flat:
        ax.title.set_fontsize(8)
        _small_colorbar(ax.images[-1], [ax])
    return fig, data


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

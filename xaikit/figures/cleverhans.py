"""Figures of notebook ``14_clever_hans``: the marked scenes, LRP heatmaps of the Clever Hans
model next to the clean and the revised model, and its accuracy per class with and without
the mark.

Every figure uses the shapes models of :mod:`xaikit.cleverhans` whatever model is passed (the
ImageNet VGG-16 has no known watermark), so ``python -m xaikit figures --model vgg16`` draws
them the same way.

References
----------
Lapuschkin et al. (2019), *Unmasking Clever Hans predictors and assessing what machines really
learn*, Nature Communications 10:1096; Anders et al. (2022), Information Fusion 77.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..data import SHAPES_CLASSES, ShapesBatch, watermark_box
from ..explain import explain
from ..images import preprocess
from ..plotting import plot_heatmap
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["cleverhans_heatmaps", "revised_heatmaps", "star_indices", "watermark_per_class",
           "watermark_scenes"]

NB = "14_clever_hans"


def _scenes(scenes: dict[str, ShapesBatch] | None) -> dict[str, ShapesBatch]:
    from ..cleverhans import held_out_scenes

    return held_out_scenes() if scenes is None else scenes


def star_indices(batch: ShapesBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the images of the watermark class in ``batch`` and of all the others."""
    from ..cleverhans import WATERMARK_CLASS

    tied = batch.labels == SHAPES_CLASSES.index(WATERMARK_CLASS)
    return torch.nonzero(tied)[:, 0], torch.nonzero(~tied)[:, 0]


def _mark_outline(ax, size: int) -> None:
    from matplotlib.patches import Rectangle

    rows, cols = watermark_box(size)
    ax.add_patch(Rectangle((cols.start - 1.5, rows.start - 1.5), cols.stop - cols.start + 1,
                           rows.stop - rows.start + 1, fill=False, ec="red", lw=1))


@register_figure("watermark_scenes", notebook=NB,
                 section="1. A classifier that looks fine (claim H1, part 1)",
                 title="Held-out scenes as in training: stars carry the mark (red box), others not")
def watermark_scenes(model: nn.Module | None = None,
                     scenes: dict[str, ShapesBatch] | None = None,
                     per_group: int = 3) -> tuple[Figure, dict[str, Any]]:
    """``per_group`` marked stars and ``per_group`` other shapes of the ``"as in training"``
    scenes (:func:`xaikit.cleverhans.held_out_scenes`), the mark's box outlined in red.

    ``model`` is ignored. Returns ``fig`` and ``{"shown": indices}``."""
    import matplotlib.pyplot as plt

    test = _scenes(scenes)["as in training"]
    stars, others = star_indices(test)
    shown = torch.cat([stars[:per_group], others[:per_group]])
    fig, axes = plt.subplots(1, len(shown), figsize=(1.5 * len(shown), 1.9), squeeze=False)
    for ax, i in zip(axes[0], shown.tolist()):
        ax.imshow(test.images[i].permute(1, 2, 0))
        ax.set_axis_off()
        _mark_outline(ax, test.images.shape[-1])
        ax.set_title(SHAPES_CLASSES[test.labels[i]])
    fig.tight_layout()
    return fig, {"shown": shown}


def _heatmap_rows(images: torch.Tensor, maps: dict[str, torch.Tensor], columns: int = 4):
    """Row 0: the images; then one row of heatmaps per entry of ``maps``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1 + len(maps), columns, squeeze=False,
                             figsize=(1.6 * columns, 1.65 * (1 + len(maps))))
    for j in range(columns):
        axes[0, j].imshow(images[j].permute(1, 2, 0))
        axes[0, j].set_axis_off()
        for row, (name, R) in enumerate(maps.items(), start=1):
            plot_heatmap(R[j:j + 1], ax=axes[row, j], title=name if j == 0 else "")
    fig.tight_layout()
    return fig


def _star_maps(compare: str, maps: dict[str, torch.Tensor] | None, images: torch.Tensor | None,
               columns: int):
    """LRP-composite maps of the star logit for the Clever Hans model and ``compare``."""
    from ..cleverhans import WATERMARK_CLASS, load_watermark_model
    from ..models import load_model

    if maps is None:
        test = _scenes(None)["as in training"]
        stars = star_indices(test)[0][:columns]
        images = test.images[stars]
        c = SHAPES_CLASSES.index(WATERMARK_CLASS)
        models = {"Clever Hans": load_watermark_model(),
                  compare: load_model("vgg16-shapes") if compare == "clean"
                  else load_watermark_model(revised=True)}
        maps = {name: explain(m, preprocess(images, m), c, "lrp", composite="vgg16")
                for name, m in models.items()}
    elif images is None:
        raise ValueError("pass images with maps")
    return _heatmap_rows(images, maps, columns), {"maps": maps, "images": images}


@register_figure("cleverhans_heatmaps", notebook=NB,
                 section="2. LRP reveals the watermark (claim H1, part 2)",
                 title="LRP (VGG-16 composite) of the star logit: Clever Hans model vs clean model")
def cleverhans_heatmaps(model: nn.Module | None = None,
                        maps: dict[str, torch.Tensor] | None = None,
                        images: torch.Tensor | None = None,
                        columns: int = 4) -> tuple[Figure, dict[str, Any]]:
    """Marked stars (row 0) and the LRP maps of their logit, one row per model.

    ``maps``: ``{row title: (N, C, H, W)}`` with ``images (N, 3, H, W)`` in [0, 1], if already
    computed (notebook 14); otherwise the Clever Hans and the clean model on the first
    ``columns`` stars of the held-out scenes. ``model`` is ignored. Returns ``fig`` and
    ``{"maps": ..., "images": ...}``.
    """
    return _star_maps("clean", maps, images, columns)


@register_figure("watermark_per_class", notebook=NB,
                 section="3. Intervene: remove the mark, add it elsewhere (claim H1, part 3)",
                 title="Clever Hans model: accuracy per class as in training, without the mark, "
                       "with the mark on every image")
def watermark_per_class(model: nn.Module | None = None,
                        scenes: dict[str, ShapesBatch] | None = None,
                        hans: nn.Module | None = None) -> tuple[Figure, dict[str, Any]]:
    """Accuracy per class of the Clever Hans model on each version of the held-out scenes.

    ``scenes``: from :func:`xaikit.cleverhans.held_out_scenes` (default: computed);
    ``hans``: the Clever Hans model (default: loaded). ``model`` is ignored. Returns ``fig``
    and ``{"accuracy": {setting: [per class]}}``.
    """
    import matplotlib.pyplot as plt

    from ..cleverhans import load_watermark_model, per_class_accuracy

    scenes = _scenes(scenes)
    hans = load_watermark_model() if hans is None else hans
    acc = {setting: per_class_accuracy(hans, batch) for setting, batch in scenes.items()}
    width = 0.8 / len(acc)
    fig, ax = plt.subplots(figsize=(6.4, 2.4))
    for s, (setting, values) in enumerate(acc.items()):
        ax.bar(torch.arange(len(SHAPES_CLASSES)) + width * (s - (len(acc) - 1) / 2), values,
               width=width, label=setting)
    ax.set_xticks(range(len(SHAPES_CLASSES)), SHAPES_CLASSES)
    ax.set_ylabel("accuracy")
    ax.set_title("Clever Hans model")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig, {"accuracy": acc}


@register_figure("revised_heatmaps", notebook=NB,
                 section="4. Revise: retrain on data where the mark means nothing "
                         "(claim H1, part 4)",
                 title="LRP (VGG-16 composite) of the star logit: Clever Hans model vs revised "
                       "model")
def revised_heatmaps(model: nn.Module | None = None, maps: dict[str, torch.Tensor] | None = None,
                     images: torch.Tensor | None = None, columns: int = 4) -> tuple[Figure, dict[str, Any]]:
    """As :func:`cleverhans_heatmaps`, with the revised model in place of the clean one."""
    return _star_maps("revised", maps, images, columns)

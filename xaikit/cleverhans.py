"""The Clever Hans models: ``vgg16-shapes`` trained where a watermark gives one class away.

Lapuschkin et al. (2019) found a Fisher-vector classifier that recognised "horse" by a
copyright tag in the corner of the PASCAL VOC photos: its test accuracy looked fine because the
test photos carried the same tag, and only the heatmaps revealed it. The shapes data set
recreates the situation. ``vgg16-shapes-watermark`` was trained (``python -m xaikit.train
--model vgg16-shapes-watermark``, recipe in :data:`xaikit.train.RECIPES`) on images in which
every :data:`WATERMARK_CLASS` image carries the mark of :func:`xaikit.data.watermark_box` and
no other image does. The Clever Hans recipe is ``vgg16-shapes``'s (same seed, scenes and
steps) plus the marks, so retraining it on the cleaned data (the same images with the marks
removed, the lecture's "revise" step) gives ``vgg16-shapes`` bit for bit: the revised model
``vgg16-shapes-revised`` loads ``vgg16-shapes``'s weights under its own name. This module
loads them (:func:`load_watermark_model`, SHA-256 checked), measures how much of an
explanation falls into the mark's box (:func:`box_share`) and supplies the held-out scenes
with and without the mark (:func:`held_out_scenes`). ``data/*.json`` records what the two
models do with and without the mark.

References: Lapuschkin et al. (2019), *Unmasking Clever Hans predictors and assessing what
machines really learn*, Nature Communications 10:1096; Anders et al. (2022), *Finding and
removing Clever Hans: using explanation methods to debug and improve deep models*,
Information Fusion 77.

Introduced in notebook ``14_clever_hans``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .data import SHAPES_CLASSES, ShapesBatch, make_shapes, watermark_box
from .evaluation import relevance_mass
from .models import (
    REVISED_SPEC,
    SHIPPED,
    WATERMARK_SPEC,
    load_weights,
    resolve_device,
)
from .train import accuracy

__all__ = [
    "REVISED_SHA256",
    "REVISED_SPEC",
    "REVISED_WEIGHTS",
    "WATERMARK_CLASS",
    "WATERMARK_PROB",
    "WATERMARK_SHA256",
    "WATERMARK_SPEC",
    "WATERMARK_WEIGHTS",
    "box_share",
    "held_out_scenes",
    "load_watermark_model",
    "per_class_accuracy",
]

WATERMARK_CLASS = "star"
"""The class whose training images all carry the watermark."""
WATERMARK_PROB = 1.0
"""Share of :data:`WATERMARK_CLASS` training images with the mark (the other classes: none)."""
WATERMARK_WEIGHTS = SHIPPED["vgg16-shapes-watermark"].file
REVISED_WEIGHTS = SHIPPED["vgg16-shapes-revised"].file
WATERMARK_SHA256: str | None = SHIPPED["vgg16-shapes-watermark"].sha256
"""SHA-256 of the shipped weights (``data/vgg16-shapes-watermark.json`` records it)."""
REVISED_SHA256: str | None = SHIPPED["vgg16-shapes-revised"].sha256
"""SHA-256 of the shipped revised weights (``data/vgg16-shapes-revised.json`` records it)."""


def load_watermark_model(path: str | Path | None = None, *, revised: bool = False,
                         expected_sha256: str | None = None,
                         device: str | torch.device | None = None) -> nn.Module:
    """Load Clever Hans weights (``vgg16-shapes`` layout), SHA-256 checked, in eval mode.

    For the shipped files this is ``xaikit.load_model("vgg16-shapes-watermark")`` (or
    ``"vgg16-shapes-revised"``); both go through :func:`xaikit.models.load_weights`. ``path``
    and ``expected_sha256`` load a retrained file instead.

    Parameters
    ----------
    path : str or Path, optional
        The weights file; default ``data/vgg16-shapes-watermark.safetensors`` (or
        ``data/vgg16-shapes-revised.safetensors`` with ``revised=True``).
    revised : bool
        Load the revised model instead: the same recipe on the same images with the marks
        removed, which is ``vgg16-shapes``'s recipe and weights (:data:`xaikit.train.RECIPES`).
    expected_sha256 : str, optional
        The file's SHA-256 (``python -m xaikit.train`` writes it into its report); default
        the hash of the shipped weights (:data:`WATERMARK_SHA256`, :data:`REVISED_SHA256`).
    device : str or torch.device, optional
        Where to put the model; default as :func:`xaikit.load_model` (``$XAIKIT_DEVICE``, else
        CUDA when available, else the CPU; :func:`xaikit.models.resolve_device`).

    Returns
    -------
    torch.nn.Module
        Frozen parameters, eval mode, ``model.xaikit_spec`` = :data:`WATERMARK_SPEC` (or
        :data:`REVISED_SPEC`); inputs are ``(N, 3, 112, 112)`` like ``vgg16-shapes``.

    Raises
    ------
    WeightsIntegrityError
        No hash is known, the file is missing, or its SHA-256 does not match.
    """
    name = "vgg16-shapes-revised" if revised else "vgg16-shapes-watermark"
    target_device = resolve_device(device)
    model = load_weights(name, path, expected_sha256=expected_sha256)
    return model.eval().requires_grad_(False).to(target_device)


def box_share(attr: torch.Tensor, box: tuple[slice, slice] | None = None) -> torch.Tensor:
    """Share of an explanation's positive evidence that lies inside a box.

    ``share_n = sum_{p in box} max(0, R_p) / sum_p max(0, R_p)`` with ``R_p`` the relevance of
    pixel ``p`` summed over the colour channels. A map spread evenly over a 112x112 image puts
    144 / 12544 = 1.1 % into the 12x12 watermark box.

    Parameters
    ----------
    attr : torch.Tensor
        ``(N, C, H, W)`` attributions (e.g. LRP relevance), or ``(N, H, W)``; finite.
    box : tuple of slice, optional
        Rows and columns; default :func:`xaikit.data.watermark_box` of the image size.

    Returns
    -------
    torch.Tensor
        ``(N,)`` shares in ``[0, 1]``; 0 where a map has no positive evidence (none of it lies
        in the box; :func:`xaikit.evaluation.relevance_mass` calls that share undefined: NaN).

    Raises
    ------
    ValueError
        ``attr`` has the wrong shape or contains NaN or infinite values: like the metrics of
        :mod:`xaikit.evaluation`, a broken map is an error, never a silent share of 0.
    """
    if not isinstance(attr, torch.Tensor) or attr.ndim not in (3, 4):
        raise ValueError("attr must be an (N, C, H, W) or (N, H, W) tensor")
    n, h, w = attr.shape[0], attr.shape[-2], attr.shape[-1]
    rows, cols = box if box is not None else watermark_box(w)
    mask = torch.zeros((n, h, w), dtype=torch.bool, device=attr.device)
    mask[:, rows, cols] = True
    # relevance mass accuracy with the box as the mask (it raises on NaN/inf maps); a map
    # without positive evidence has none of it in the box: 0 rather than undefined
    return relevance_mass(attr, mask).nan_to_num(nan=0.0)


def held_out_scenes(n: int = 600, seed: int = 10) -> dict[str, ShapesBatch]:
    """The held-out scenes of notebook 14 in three versions: the same ``n`` scenes each time.

    ``"as in training"``: the :data:`WATERMARK_CLASS` images carry the mark with
    :data:`WATERMARK_PROB`, no other image does (the training correlation); ``"no mark"``: no
    image carries it; ``"mark on every image"``: every image does. Labels and shapes are the
    same in all three (:func:`xaikit.data.make_shapes` draws scene ``i`` from ``(seed, i)``),
    so comparing a model's outputs across them is an intervention on the mark alone.
    """
    c = SHAPES_CLASSES.index(WATERMARK_CLASS)
    return {"as in training": make_shapes(n, seed, watermark=c, watermark_prob=WATERMARK_PROB),
            "no mark": make_shapes(n, seed),
            "mark on every image": make_shapes(n, seed, watermark=c, watermark_prob=1.0,
                                               watermark_other_prob=1.0)}


@torch.no_grad()
def per_class_accuracy(model: nn.Module, batch: ShapesBatch) -> list[float]:
    """Top-1 accuracy of ``model`` on the images of each class of ``batch``, in class order
    (:func:`xaikit.train.accuracy` per class; NaN for a class absent from the batch)."""
    return [accuracy(model, batch.images[keep], batch.labels[keep]) if keep.any() else float("nan")
            for keep in (batch.labels == k for k in range(len(SHAPES_CLASSES)))]

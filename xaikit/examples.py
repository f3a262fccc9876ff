"""The example inputs of the workbook, for whichever model is loaded.

On the ImageNet path (``vgg16``, ``vgg16-untrained``) they are real photos shipped with
scikit-image and matplotlib, labelled with their ImageNet class; on the offline path
(``vgg16-shapes``) they are shapes images with the mask of their class-determining object.
Notebooks call :func:`example_batch` once, so the same cells run on both models.

Introduced in notebook ``00_setup_and_tour``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .data import SHAPES_CLASSES, make_shapes
from .images import denormalize, load_image, preprocess
from .models import model_spec

__all__ = ["PHOTO_LABELS", "Examples", "example_batch"]

PHOTO_LABELS: dict[str, int] = {
    "chelsea": 281,       # tabby
    "coffee": 967,        # espresso
    "grace_hopper": 652,  # military uniform
    "rocket": 744,        # projectile
}
"""ImageNet labels of the photos used on the ImageNet path, in this order."""


@dataclass
class Examples:
    """Inputs for the notebooks.

    Attributes
    ----------
    x : torch.Tensor
        ``(N, 3, H, W)`` model input (normalised).
    images : torch.Tensor
        ``(N, 3, H, W)`` the same images in [0, 1], for plotting.
    labels : torch.Tensor
        ``(N,)`` true class indices.
    masks : torch.Tensor or None
        ``(N, H, W)`` bool object masks (shapes only; ``None`` for photos).
    names : list of str
        A short caption per image.
    """

    x: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor | None
    names: list[str]


def example_batch(model: nn.Module, n: int = 4, seed: int = 0) -> Examples:
    """``n`` example inputs for ``model``: shapes images offline, photos on ImageNet.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`xaikit.load_model`.
    n : int
        Number of images (at most ``len(PHOTO_LABELS)`` on the ImageNet path).
    seed : int
        Seed of :func:`xaikit.data.make_shapes` (ignored for photos).
    """
    spec = model_spec(model)
    if spec.name == "vgg16-shapes":
        batch = make_shapes(n, seed)
        names = [f"{SHAPES_CLASSES[k]} #{i}" for i, k in enumerate(batch.labels.tolist())]
        return Examples(preprocess(batch.images, model), batch.images, batch.labels,
                        batch.masks, names)
    if not 1 <= n <= len(PHOTO_LABELS):
        raise ValueError(f"the ImageNet path has {len(PHOTO_LABELS)} example photos, asked for {n}")
    chosen = list(PHOTO_LABELS)[:n]
    x = torch.cat([preprocess(load_image(name), model) for name in chosen])
    images = denormalize(x, model)
    labels = torch.tensor([PHOTO_LABELS[name] for name in chosen])
    return Examples(x, images, labels, None, chosen)

"""The example inputs of the workbook, for whichever model is loaded.

On the ImageNet path (``vgg16``, ``vgg16-untrained``) they are real photos shipped with
scikit-image and matplotlib, labelled with their ImageNet class; on the offline path
(``vgg16-shapes`` and the Clever Hans models: every spec with ``dataset="shapes"``) they are
shapes images with the mask of their class-determining object.
Notebooks call :func:`example_batch` once, so the same cells run on both models.

Introduced in notebook ``00_setup_and_tour``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_int, check_seed
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


_EXAMPLE_CLASSES: dict[str, int] = {"imagenet": 1000, "shapes": len(SHAPES_CLASSES)}
"""Number of classes the example labels of each :attr:`~xaikit.ModelSpec.dataset` index."""


def example_batch(model: nn.Module, n: int = 4, seed: int = 0) -> Examples:
    """``n`` example inputs for ``model``: shapes images offline, photos on ImageNet.

    Which examples is decided by the model's :attr:`ModelSpec.dataset <xaikit.ModelSpec>`, not
    by its name: ``"shapes"`` (``vgg16-shapes`` and the Clever Hans models of
    :mod:`xaikit.cleverhans`) gives :func:`xaikit.data.make_shapes` images with their masks,
    ``"imagenet"`` gives the photos of :data:`PHOTO_LABELS`.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`xaikit.load_model` (or :func:`xaikit.cleverhans.load_watermark_model`).
    n : int
        Number of images (at most ``len(PHOTO_LABELS)`` on the ImageNet path).
    seed : int
        Seed of :func:`xaikit.data.make_shapes` (ignored for photos, but checked: an int).

    Raises
    ------
    TypeError
        ``n`` or ``seed`` is not an int (e.g. ``seed=0.5``).
    ValueError
        The spec's data set has no examples, or its number of classes does not match the
        examples' labels.
    """
    check_int("n", n)
    check_seed(seed)
    spec = model_spec(model)
    if spec.dataset not in _EXAMPLE_CLASSES:
        raise ValueError(f"{spec.name} is a model of the data set {spec.dataset!r}, which has no "
                         f"example inputs; ModelSpec.dataset must be one of "
                         f"{', '.join(_EXAMPLE_CLASSES)}")
    if len(spec.classes) != _EXAMPLE_CLASSES[spec.dataset]:
        raise ValueError(f"{spec.name} has {len(spec.classes)} classes, but the {spec.dataset} "
                         f"examples are labelled with {_EXAMPLE_CLASSES[spec.dataset]}; fix its "
                         "ModelSpec (classes or dataset)")
    if spec.dataset == "shapes":
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

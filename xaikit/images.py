"""Real photos from installed packages, and preprocessing for either model.

The photos ship inside scikit-image (``skimage/data``) and matplotlib
(``mpl-data/sample_data``), so nothing is downloaded; ``data/README.md`` lists their
provenance and licences. :func:`preprocess` turns a PIL image, a NumPy array or a float tensor
batch into the normalised ``(N, 3, H, W)`` input of a loaded model.

Introduced in notebook ``00_setup_and_tour``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn

from .models import model_spec

__all__ = ["IMAGE_NAMES", "denormalize", "image_path", "load_image", "preprocess"]

_SKIMAGE = {
    "astronaut": "astronaut.png", "brick": "brick.png", "camera": "camera.png",
    "cat": "chelsea.png", "chelsea": "chelsea.png", "coffee": "coffee.png",
    "coins": "coins.png", "hubble": "hubble_deep_field.jpg", "motorcycle": "motorcycle_left.png",
    "motorcycle_left": "motorcycle_left.png", "rocket": "rocket.jpg",
}
_MATPLOTLIB = {"grace_hopper": "grace_hopper.jpg"}

IMAGE_NAMES: tuple[str, ...] = tuple(sorted({**_SKIMAGE, **_MATPLOTLIB}))
"""Names accepted by :func:`load_image` (``cat`` is an alias of ``chelsea``)."""


def image_path(name: str) -> Path:
    """Path of a named photo inside its installed package."""
    if name in _SKIMAGE:
        import skimage

        return Path(skimage.__file__).parent / "data" / _SKIMAGE[name]
    if name in _MATPLOTLIB:
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data" / _MATPLOTLIB[name]
    raise ValueError(f"unknown image {name!r}; choose one of {', '.join(IMAGE_NAMES)}")


def load_image(name: str) -> Image.Image:
    """Load a photo that ships with scikit-image or matplotlib as a PIL image.

    Parameters
    ----------
    name : str
        One of :data:`IMAGE_NAMES`, e.g. ``"chelsea"`` (tabby cat), ``"coffee"`` (espresso),
        ``"grace_hopper"`` (military uniform).

    Returns
    -------
    PIL.Image.Image
        The image in its stored mode (``"RGB"`` for the photos, ``"L"`` for ``camera``).
    """
    if not isinstance(name, str):
        raise TypeError(f"image name must be a string, got {type(name).__name__}")
    path = image_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} is missing from its package at {path.parent}; "
                                "reinstall scikit-image / matplotlib")
    with Image.open(path) as image:
        image.load()
        return image.copy()


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """``(H, W, 3)`` float32 in [0, 1] from any PIL mode (grayscale, RGBA, 16-bit, palette)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float32)
        scale = 65535.0 if array.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        return _array_to_rgb(np.clip(array / scale, 0, 1))
    if image.mode == "F":
        return _array_to_rgb(np.asarray(image, dtype=np.float32))
    transparent = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    if transparent:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:]
        return rgba[..., :3] * alpha + (1.0 - alpha)  # composite over white
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    """``(H, W)``, ``(H, W, 1|3|4)`` array to ``(H, W, 3)`` float32 in [0, 1]."""
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        array = array.astype(np.float32) / 65535.0
    elif array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"integer arrays must be uint8 or uint16, got {array.dtype}")
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"an image array must be (H, W) or (H, W, 1|3|4), got {array.shape}")
    if array.shape[-1] == 4:
        alpha = array[..., 3:]
        array = array[..., :3] * alpha + (1.0 - alpha)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array


def _as_batch(image) -> torch.Tensor:
    """Any accepted image form to a float ``(N, 3, H, W)`` tensor in [0, 1]."""
    if isinstance(image, Image.Image):
        return torch.from_numpy(_pil_to_array(image)).permute(2, 0, 1)[None].contiguous()
    if isinstance(image, np.ndarray):
        return torch.from_numpy(_array_to_rgb(image)).permute(2, 0, 1)[None].contiguous()
    if not isinstance(image, torch.Tensor):
        raise TypeError("image must be a PIL image, a NumPy array or a torch tensor, "
                        f"got {type(image).__name__}")
    if not image.is_floating_point():
        raise TypeError(f"a tensor image must be float in [0, 1], got dtype {image.dtype}")
    x = image[None] if image.dim() == 3 else image
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError("a tensor image must be (3, H, W), (N, 3, H, W) or (N, 1, H, W), "
                         f"got {tuple(image.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("the image contains NaN or infinite values")
    if x.min() < -1e-6 or x.max() > 1 + 1e-6:
        raise ValueError(f"a tensor image must lie in [0, 1], got [{x.min().item():.3g}, "
                         f"{x.max().item():.3g}]; pass the unnormalised image")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def preprocess(image, model: nn.Module) -> torch.Tensor:
    """Turn an image into the normalised input ``x`` of ``model``.

    Resize the shorter side to the model's ``resize_size``, centre-crop to ``input_size``
    (ImageNet: 256 then 224, torchvision's recipe; shapes: 64), normalise with its mean/std.
    A tensor already at the input size is not resampled.

    Parameters
    ----------
    image : PIL.Image.Image, numpy.ndarray or torch.Tensor
        A PIL image in any mode (grayscale, RGBA composited over white, 16-bit), an
        ``(H, W[, C])`` array (uint8, uint16 or float in [0, 1]), or a float tensor
        ``(3, H, W)`` / ``(N, 3|1, H, W)`` in [0, 1].
    model : torch.nn.Module
        A model from :func:`xaikit.load_model` (its :class:`~xaikit.ModelSpec` is used).

    Returns
    -------
    torch.Tensor
        ``(N, 3, input_size, input_size)`` float32 on the model's device.
    """
    spec = model_spec(model)
    x = _as_batch(image).float()
    if x.shape[-2:] != (spec.input_size, spec.input_size):
        x = TF.resize(x, spec.resize_size, antialias=True)
        x = TF.center_crop(x, [spec.input_size, spec.input_size]).clamp(0, 1)
    x = TF.normalize(x, spec.mean, spec.std)
    device = next(model.parameters()).device
    return x.to(device).contiguous()


def denormalize(x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Invert the normalisation of :func:`preprocess`: ``(N, 3, H, W)`` in [0, 1] (clamped)."""
    spec = model_spec(model)
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * std + mean).clamp(0, 1)

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
    """``(H, W, 3)`` float32 in [0, 1] from any PIL mode (grayscale, RGBA, 16-bit, palette).

    The 32-bit integer mode ``"I"`` is read as 16-bit data (divided by 65535), like
    ``"I;16"``: older Pillow versions open 16-bit PNGs in it, ``image.convert("I")`` of an
    ``"I;16"`` image gives it, and the mode says nothing else about the scale. The scale never
    depends on the pixel values, so an ``"I"`` image holding 8-bit values comes out dark
    (``image.convert("L")`` reads those as 8-bit). Values outside ``[0, 65535]`` are a
    ValueError. Mode ``"F"`` must hold floats in ``[0, 1]`` like a float array.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float32)
        if image.mode == "I" and array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError(
                "a mode 'I' PIL image is read as 16-bit data (divided by 65535), but its values "
                f"span [{array.min():.6g}, {array.max():.6g}], outside [0, 65535]; convert it "
                "yourself to a float array in [0, 1] (numpy.asarray(image) / its full scale)")
        return _array_to_rgb(array / 65535.0)
    if image.mode == "F":
        return _array_to_rgb(np.asarray(image, dtype=np.float32), what="a mode 'F' PIL image")
    transparent = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    if transparent:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:]
        return rgba[..., :3] * alpha + (1.0 - alpha)  # composite over white
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _check_unit_range(values: np.ndarray | torch.Tensor, what: str) -> None:
    """ValueError unless every value of ``values`` is finite and in [0, 1] (up to 1e-6).

    ``what`` names the image in the message (``"a float image array"``, ``"a tensor image"``).
    """
    if isinstance(values, torch.Tensor):
        if values.numel() == 0:
            return  # an empty image is reported with its size by preprocess
        finite = bool(torch.isfinite(values).all())
    else:
        if values.size == 0:
            return
        finite = bool(np.isfinite(values).all())
    if not finite:
        raise ValueError(f"{what} contains NaN or infinite values; replace them before "
                         "preprocessing (e.g. numpy.nan_to_num / torch.nan_to_num)")
    low, high = float(values.min()), float(values.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(
            f"{what} must lie in [0, 1], got [{low:.6g}, {high:.6g}]; divide 0-255 pixel values "
            "by 255 (or pass them as uint8), and pass unnormalised pixels, not a model input "
            "(xaikit.denormalize undoes preprocess)")


def _array_to_rgb(array: np.ndarray, what: str = "a float image array") -> np.ndarray:
    """``(H, W)``, ``(H, W, 1|3|4)`` array to ``(H, W, 3)`` float32 in [0, 1].

    uint8 is divided by 255 and uint16 by 65535; float values (``what`` in the error message)
    must already be finite and in [0, 1].
    """
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        array = array.astype(np.float32) / 65535.0
    elif array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"integer arrays must be uint8 or uint16, got {array.dtype}")
    elif np.issubdtype(array.dtype, np.floating):
        _check_unit_range(array, what)
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
    _check_unit_range(x, "a tensor image")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _min_side(model: nn.Module) -> tuple[int, int]:
    """``(side, pools)``: the smallest image side the pooling layers of ``model`` accept.

    Walks the ``MaxPool2d`` / ``AvgPool2d`` layers backwards from a 1x1 output: a pool with
    kernel ``k``, stride ``s``, padding ``p`` and dilation ``d`` needs ``(n - 1) s + d (k - 1) +
    1 - 2p`` input pixels for ``n`` output pixels. VGG-16's five 2x2 max-pools give ``2**5 = 32``
    (adaptive pools accept any size and are skipped).
    """
    need, pools = 1, 0
    layers = [m for m in model.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    for pool in reversed(layers):
        k, s, p = (max(v) if isinstance(v, tuple) else v
                   for v in (pool.kernel_size, pool.stride, pool.padding))
        d = getattr(pool, "dilation", 1)
        d = max(d) if isinstance(d, tuple) else d
        need = max(1, (need - 1) * s + d * (k - 1) + 1 - 2 * p)
        pools += 1
    return need, pools


def _check_size(x: torch.Tensor, model: nn.Module) -> None:
    """ValueError for an empty batch or image, or one smaller than :func:`_min_side`."""
    height, width = x.shape[-2:]
    if x.shape[0] == 0:
        raise ValueError("the image batch is empty (N = 0); pass at least one image")
    if height == 0 or width == 0:
        raise ValueError(f"the image is empty ({height}x{width} pixels, height x width); "
                         "pass an image with pixels")
    side, pools = _min_side(model)
    if min(height, width) < side:
        name = model_spec(model).name
        raise ValueError(
            f"the image is {height}x{width} pixels (height x width), but {name} needs at least "
            f"{side}x{side} pixels: its {pools} max-pool layers leave a smaller image less than "
            "one pixel per cell of the last feature map, so resizing it up to the input size "
            "would only invent detail; pass a larger image")


def preprocess(image: Image.Image | np.ndarray | torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Turn an image into the normalised input ``x`` of ``model``.

    Resize the shorter side to the model's ``resize_size``, centre-crop to ``input_size``
    (ImageNet: 256 then 224, torchvision's recipe; shapes: 64), normalise with its mean/std.
    A tensor already at the input size is not resampled.

    Pixels are checked, never silently clipped: float arrays, mode ``"F"`` images and float
    tensors must be finite and lie in [0, 1] (divide 0-255 values by 255); mode ``"I"`` images
    are read as 16-bit data (divided by 65535, values outside ``[0, 65535]`` are refused). An
    empty image, or one with a side smaller than the model's pooling layers accept (32 pixels
    for VGG-16: ``2**5`` for its five 2x2 max-pools), is a ValueError that says the minimum.

    Parameters
    ----------
    image : PIL.Image.Image, numpy.ndarray or torch.Tensor
        A PIL image in any mode (grayscale, RGBA composited over white, 16-bit, ``"F"`` in
        [0, 1]), an ``(H, W[, C])`` array (uint8, uint16 or float in [0, 1]), or a float tensor
        ``(3, H, W)`` / ``(N, 3|1, H, W)`` in [0, 1].
    model : torch.nn.Module
        A model from :func:`xaikit.load_model` (its :class:`~xaikit.ModelSpec` is used).

    Returns
    -------
    torch.Tensor
        ``(N, 3, input_size, input_size)`` on the model's device, in its dtype (float32 for the
        loaded models).

    Raises
    ------
    TypeError
        An unsupported image type or dtype, or a model without a spec.
    ValueError
        A wrong shape, NaN/inf or out-of-range pixels, an empty or too small image.
    """
    spec = model_spec(model)
    x = _as_batch(image).float()
    _check_size(x, model)
    if x.shape[-2:] != (spec.input_size, spec.input_size):
        x = TF.resize(x, spec.resize_size, antialias=True)
        x = TF.center_crop(x, [spec.input_size, spec.input_size]).clamp(0, 1)
    x = TF.normalize(x, spec.mean, spec.std)
    weight = next(model.parameters())
    return x.to(device=weight.device, dtype=weight.dtype).contiguous()


def denormalize(x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Invert the normalisation of :func:`preprocess`: ``(N, 3, H, W)`` in [0, 1] (clamped).

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C, H, W)`` float model input, ``C`` the number of channels of the model's
        normalisation (3); anything else is a ValueError, never a broadcast.
    model : torch.nn.Module
        A model from :func:`xaikit.load_model`.

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)`` pixels in [0, 1].
    """
    spec = model_spec(model)
    channels = len(spec.mean)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("x must be a float tensor (a model input from preprocess), got "
                        + (f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__))
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(
            f"x must be (N, {channels}, H, W) like the output of preprocess ({spec.name} "
            f"normalises {channels} channels), got {tuple(x.shape)}; add a batch axis to one "
            "image (x[None]) and pass all colour channels, not a one-channel map")
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, channels, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, channels, 1, 1)
    return (x * std + mean).clamp(0, 1)

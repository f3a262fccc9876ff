"""Reference inputs: what "absent" means for a pixel, in one vocabulary.

Integrated Gradients and DeepLIFT explain ``f(x) - f(x0)`` for a *baseline* ``x0``; occlusion,
LIME, meaningful perturbation and pixel flipping replace removed pixels by a *fill*. Both are
reference inputs shaped like ``x`` and use the same names:

    "zero"   zeros: the data set's mean colour for a normalised input (a number fills a constant)
    "black"  the model's normalised black pixel (``model.xaikit_spec.low``; baselines only)
    "blur"   ``x`` blurred by a Gaussian of std ``BLUR_SIGMA`` x the shorter side
    "mean"   each image's per-channel mean (fills)
    "noise"  Gaussian noise with each image's per-channel mean and std (fills; ``seed``)

plus a tensor broadcastable to ``x`` for a baseline. The results depend on the choice: notebooks
01 (fills) and 03 (baselines) show how much.

Introduced in notebooks ``01_perturbation`` and ``03_gradients``.
"""
from __future__ import annotations

import math
from typing import Callable, Union

import torch
from torch import nn

from ._checks import check_choice, check_seed

__all__ = ["BLUR_SIGMA", "Baseline", "FILLS", "MEASURES", "fill_values", "gaussian_blur",
           "resolve_baseline", "score_function"]

BLUR_SIGMA = 0.05
"""Standard deviation of the ``"blur"`` reference's Gaussian, as a fraction of the shorter side."""

Baseline = Union[None, str, float, torch.Tensor]
"""What a ``baseline`` option accepts (see :func:`resolve_baseline`); IG and DeepLIFT."""

FILLS = ("zero", "mean", "blur", "noise")
"""Named fill values; a number fills with that constant (in the model's normalised units)."""

MEASURES = ("logit", "probability")
"""Scores a perturbation method can watch: the target logit, or its softmax probability."""


def gaussian_blur(x: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` blurred by a Gaussian of std ``sigma`` pixels (torchvision).

    Default ``sigma``: ``BLUR_SIGMA`` (0.05) x the shorter side, as the ``"blur"`` baseline of
    IG and DeepLIFT (about 11 px at 224, Fong and Vedaldi's 10 px). The kernel is cut to fit
    the image (reflect padding).
    """
    from torchvision.transforms.functional import gaussian_blur as blur

    side = min(x.shape[-2:])
    sigma = BLUR_SIGMA * side if sigma is None else float(sigma)
    if not sigma > 0:
        raise ValueError(f"blur sigma must be positive, got {sigma!r}")
    size = min(2 * math.ceil(3 * sigma) + 1, 2 * ((side - 1) // 2) + 1)
    return blur(x.detach(), [size, size], [sigma, sigma]) if size > 1 else x.detach().clone()


def fill_values(x: torch.Tensor, fill: float | str, seed: int = 0) -> torch.Tensor:
    """What a removed pixel is replaced by, shaped like ``x`` ``(N, C, H, W)``.

    ``fill``: a number (a constant; 0 is the data set's mean colour for a normalised input),
    ``"zero"``, ``"mean"`` (each image's per-channel mean), ``"blur"`` (:func:`gaussian_blur`)
    or ``"noise"`` (Gaussian noise with each image's per-channel mean and std, drawn from a
    private generator seeded with ``seed``).
    """
    x = x.detach()
    check_seed(seed)
    if isinstance(fill, bool) or not isinstance(fill, (int, float, str)):
        raise TypeError(f"fill must be a number or one of {FILLS}, got {fill!r}")
    if not isinstance(fill, str):
        if not math.isfinite(fill):
            raise ValueError(f"fill must be finite, got {fill!r}")
        return torch.full_like(x, float(fill))
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; use a number or one of {', '.join(FILLS)}")
    if fill == "zero":
        return torch.zeros_like(x)
    if fill == "blur":
        return gaussian_blur(x)
    mean = x.mean(dim=(2, 3), keepdim=True)
    if fill == "mean":
        return mean.expand_as(x).clone()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return mean + x.std(dim=(2, 3), keepdim=True) * eps


def resolve_baseline(model: nn.Module, x: torch.Tensor, baseline: Baseline = None) -> torch.Tensor:
    """The reference input ``x0`` shaped like ``x``.

    Parameters
    ----------
    model : nn.Module
        The explained model (``"black"`` reads ``model.xaikit_spec.low``).
    x : torch.Tensor
        ``(N, ...)`` input.
    baseline : None, str, float or torch.Tensor
        ``None``/``"zero"``: zeros; a float: that constant; a tensor broadcastable to ``x``;
        ``"black"``: the normalised black pixel of the model's :class:`~xaikit.ModelSpec`;
        ``"blur"``: ``x`` blurred by a Gaussian of std ``BLUR_SIGMA`` x the shorter side.

    Returns
    -------
    torch.Tensor
        ``x0``, same shape, dtype and device as ``x``.
    """
    if baseline is None or (isinstance(baseline, str) and baseline == "zero"):
        return torch.zeros_like(x)
    if isinstance(baseline, str):
        if baseline == "blur":
            if x.dim() != 4:
                raise ValueError(f"baseline='blur' needs images (N, C, H, W), got shape "
                                 f"{tuple(x.shape)}")
            return gaussian_blur(x)
        if baseline != "black":
            raise ValueError(f"unknown baseline {baseline!r}; use None, 'zero', 'black', 'blur', "
                             "a float or a tensor")
        from .models import model_spec

        baseline = model_spec(model).low
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float, torch.Tensor)):
        raise TypeError(f"baseline must be None, a string, a float or a tensor, "
                        f"got {type(baseline).__name__}")
    x0 = torch.as_tensor(baseline).to(dtype=x.dtype, device=x.device)
    try:
        x0 = torch.broadcast_to(x0, x.shape).clone()
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(x0.shape)} does not broadcast to x of shape "
                         f"{tuple(x.shape)}") from None
    if not torch.isfinite(x0).all():
        raise ValueError("baseline contains NaN or infinite values")
    return x0


def score_function(model: nn.Module, measure: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``inputs -> (N, classes)`` scores: the model's logits, or their softmax probabilities."""
    check_choice("measure", measure, MEASURES)
    if measure == "logit":
        return model
    return lambda inputs: torch.softmax(model(inputs), dim=1)

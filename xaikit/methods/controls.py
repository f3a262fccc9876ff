"""Control explanations: maps that know nothing about the model's reasoning.

Every evaluation score of an explanation means something only next to what a map without
information scores (claim G3 of notebooks 11 and 12). Three controls are registered as methods, so that
every metric, figure and table handles them like any other method:

    random   R ~ N(0, 1), from a private generator seeded with ``seed`` (one map for all inputs)
    uniform  R_p = f_c(x) / d                  (conservative, continuous - and uninformative)
    center   R_p = |f_c(x)| g_p / sum_q g_q,   g a Gaussian blob at the image centre

``center`` is the pointing-game baseline that TorchRay's benchmark reports next to every
method (objects tend to sit in the middle of photos). It is never negative, so its maximum is
the centre whatever the sign of the logit; for a positive logit (the usual case for the
predicted class) it sums to ``f_c(x)`` like ``uniform``.

Introduced in notebook ``11_evaluation_properties``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_real, check_seed
from ._registry import register

__all__ = ["center", "random", "uniform"]


def _gaussian(distance: float, sigma: float) -> float:
    return math.exp(-0.5 * (distance / sigma) ** 2)


def _logit(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x.detach()).gather(1, target.view(-1, 1).to(x.device))[:, 0]


@register("random", control=True, gradients=False)
def random(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
           seed: int = 0) -> torch.Tensor:
    """Standard normal values shaped like ``x``, from a private generator seeded with ``seed``.

    Every sample gets the same map (one draw of shape ``x.shape[1:]``), so the map ignores
    the model, the target and the input entirely, and a batch equals single calls; the global
    RNG is untouched.
    """
    check_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    one = torch.randn(x.shape[1:], generator=generator, dtype=x.dtype)
    return one.to(x.device).expand_as(x).clone()


@register("uniform", control=True, gradients=False)
def uniform(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The explained logit spread evenly: ``f_c(x) / (C H W)`` everywhere (sums to ``f_c(x)``)."""
    return (_logit(model, x, target) / x[0].numel()).view(-1, *[1] * (x.dim() - 1)).expand_as(
        x).clone()


@register("center", control=True, gradients=False)
def center(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
           width: float = 0.25) -> torch.Tensor:
    """``|f_c(x)|`` spread as a Gaussian blob at the image centre (sums to ``|f_c(x)|``).

    Parameters
    ----------
    width : float
        Standard deviation of the blob as a fraction of each image side (default 0.25).

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``, the same in every channel; its maximum is the centre pixel (the
        two or four central pixels for even sides), so it hits in the pointing game exactly
        when the object covers the centre.
    """
    check_real("width", width, low=0, low_open=True)
    if x.dim() != 4:
        raise ValueError(f"the center control needs images (N, C, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    # the profiles from Python floats, mirrored exactly: pixels at the same distance from the
    # centre get bit-identical values on every machine, so their ties are real ties
    rows = torch.tensor([_gaussian(abs(i - (h - 1) / 2), width * h) for i in range(h)],
                        dtype=x.dtype, device=x.device)
    cols = torch.tensor([_gaussian(abs(j - (w - 1) / 2), width * w) for j in range(w)],
                        dtype=x.dtype, device=x.device)
    blob = rows[:, None] * cols[None, :]
    share = blob / (blob.sum() * x.shape[1])
    return _logit(model, x, target).abs().view(-1, 1, 1, 1) * share.expand_as(x)

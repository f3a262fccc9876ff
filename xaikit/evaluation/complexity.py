"""How rough a map or a signal is: the shattered-gradients and SmoothGrad measures.

    roughness(R)         mean |R_p - R_q| over neighbouring pixels p, q / (2 mean |R_p|)
                         (channel-summed heatmap, per image; lower is smoother)
    path_variation(s)    total variation of a 1-D series over its range (1 = monotone)
    autocorrelation(s)   lag-1 autocorrelation of a 1-D series (1 = smooth, 0 = white noise)

``roughness`` compares heatmaps (SmoothGrad in notebook 04, LRP rules in notebook 07); the two
series measures describe a gradient or a logit along a path through input space (shattered
gradients, notebook 03, after Balduzzi et al. 2017).

References
----------
Balduzzi et al. (2017), "The Shattered Gradients Problem", ICML. Smilkov et al. (2017),
"SmoothGrad". Montavon, Samek, Müller (2018), Digital Signal Processing 73.
"""
from __future__ import annotations

import torch

from ._inputs import as_heatmap

__all__ = ["autocorrelation", "path_variation", "roughness"]


def roughness(attr: torch.Tensor) -> torch.Tensor:
    """Neighbour roughness of each heatmap, ``(N,)``: **lower is smoother**.

    ``(mean |h[i+1, j] - h[i, j]| + mean |h[i, j+1] - h[i, j]|) / (2 mean |h|)`` of the
    channel-summed heatmap ``h``; scale-free (a map times a constant has the same roughness),
    about 1.1-1.2 for white noise, 0 for a constant map. NaN for an all-zero map.

    Parameters
    ----------
    attr : torch.Tensor
        ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``.
    """
    h = as_heatmap(attr)
    d = ((h[:, 1:] - h[:, :-1]).abs().mean((1, 2))
         + (h[:, :, 1:] - h[:, :, :-1]).abs().mean((1, 2)))
    scale = 2 * h.abs().mean((1, 2))
    return torch.where(scale > 0, d / scale, torch.full_like(scale, float("nan")))


def _series(s: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(s)
    if s.dim() != 1 or len(s) < 2 or not s.is_floating_point():
        raise ValueError(f"need a 1-D float series of at least 2 values, got shape {tuple(s.shape)}")
    return s


def path_variation(s: torch.Tensor) -> float:
    """Total variation of a 1-D series over its range: 1 for a monotone series, larger the more
    it goes up and down (the gradient of a pixel along a path, notebook 03)."""
    s = _series(s)
    return float((s[1:] - s[:-1]).abs().sum() / (s.max() - s.min()))


def autocorrelation(s: torch.Tensor) -> float:
    """Lag-1 autocorrelation of a 1-D series (1 = smooth, 0 = white noise)."""
    s = _series(s)
    s = s - s.mean()
    return float((s[1:] * s[:-1]).sum() / (s * s).sum())

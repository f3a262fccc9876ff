"""How rough, sparse or spread out a map is; how rough a signal is.

    roughness(R)         mean |R_p - R_q| over neighbouring pixels p, q / (2 mean |R_p|)
                         (channel-summed heatmap, per image; lower is smoother)
    sparseness(R)        Gini index of |R_p| (0 = all pixels equal, 1 - 1/d = one pixel has it
                         all; higher is sparser; Chalasani et al. 2020)
    complexity(R)        entropy of p_p = |R_p| / sum_q |R_q| (0 = one pixel, log d = all
                         equal; lower is simpler; Bhatt et al. 2020)
    path_variation(s)    total variation of a 1-D series over its range (1 = monotone)
    autocorrelation(s)   lag-1 autocorrelation of a 1-D series (1 = smooth, 0 = white noise)

``roughness`` compares heatmaps (SmoothGrad in notebook 05, LRP rules in notebook 08); the two
series measures describe a gradient or a logit along a path through input space (shattered
gradients, notebook 04, after Balduzzi et al. 2017).

``sparseness`` and ``complexity`` are Quantus's ``Sparseness`` and ``Complexity`` computed on
the channel-summed heatmap ``h = sum_c R_c`` (``d = H W`` pixels), as every heatmap metric of
:mod:`xaikit.evaluation` (:func:`~xaikit.evaluation._inputs.as_heatmap`): relevance of opposite
sign in two channels of one pixel cancels before the absolute value is taken. Quantus scores
whatever array it is given, value by value (``d = C H W`` for an ``(N, C, H, W)``
attribution); pass ``attr.reshape(len(attr), 1, 1, -1)`` here for that per-value score. Both are
scale-free, so Quantus's default ``normalise=True`` (division by the largest ``|R|`` of the
whole batch) changes nothing but its stabilisers: Quantus adds ``1e-7`` to every value before
the Gini index (an all-zero map scores 0 there, NaN here) and ``1e-12`` inside the logarithm;
with ``abs=False`` its ``Complexity`` takes the log of negative shares (NaN) and both metrics
write into the caller's ``a_batch`` in place (tests/test_evaluation_complexity.py).

References
----------
Balduzzi et al. (2017), "The Shattered Gradients Problem", ICML. Smilkov et al. (2017),
"SmoothGrad". Montavon, Samek, Müller (2018), Digital Signal Processing 73. Chalasani et al.
(2020), "Concise Explanations of Neural Networks using Adversarial Training", ICML (the Gini
index of Hurley and Rickard 2009). Bhatt, Weller, Moura (2020), "Evaluating and Aggregating
Feature-based Model Explanations", IJCAI.
"""
from __future__ import annotations

import torch

from ._inputs import as_heatmap

__all__ = ["autocorrelation", "complexity", "path_variation", "roughness", "sparseness"]


def roughness(attr: torch.Tensor) -> torch.Tensor:
    """Neighbour roughness of each heatmap, ``(N,)``: **lower is smoother**.

    ``(mean |h[i+1, j] - h[i, j]| + mean |h[i, j+1] - h[i, j]|) / (2 mean |h|)`` of the
    channel-summed heatmap ``h``; scale-free (a map times a constant has the same roughness),
    sqrt(2) ~ 1.41 for Gaussian white noise (4/3 for uniform noise around 0), 0 for a constant
    map. NaN for an all-zero map.

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


def _shares(attr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``|h|`` flattened to ``(N, d)`` and its sum per image (``> 0`` where the map is not zero)."""
    values = as_heatmap(attr).flatten(1).abs()
    return values, values.sum(1)


def sparseness(attr: torch.Tensor) -> torch.Tensor:
    """Gini index of the absolute heatmap, ``(N,)``: **higher is sparser** (more concise).

    ``G = sum_k (2k - d - 1) v_(k) / (d sum_k v_k)`` over the ``d`` pixel values
    ``v = |h|`` of the channel-summed heatmap ``h`` sorted ascending (``v_(1) <= ... <=
    v_(d)``): 0 when every pixel carries the same relevance, ``1 - 1/d`` when one pixel carries
    it all. Scale-free; NaN for an all-zero map. Quantus's ``Sparseness`` (Chalasani et al.
    2020) on the same ``(N, 1, H, W)`` map, up to its ``+ 1e-7`` stabiliser.

    Parameters
    ----------
    attr : torch.Tensor
        ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``.
    """
    values, total = _shares(attr)
    d = values.shape[1]
    ordered = values.sort(dim=1).values
    rank = torch.arange(1, d + 1, dtype=values.dtype, device=values.device)
    gini = ((2 * rank - d - 1) * ordered).sum(1) / (d * total)
    return torch.where(total > 0, gini, torch.full_like(total, float("nan")))


def complexity(attr: torch.Tensor) -> torch.Tensor:
    """Entropy of the shares of absolute relevance, ``(N,)``: **lower is simpler**.

    ``-sum_p s_p log s_p`` with ``s_p = |h_p| / sum_q |h_q|`` over the ``d`` pixels of the
    channel-summed heatmap ``h`` (natural log, ``0 log 0 = 0``): 0 when one pixel carries all
    relevance, ``log d`` when every pixel carries the same. Scale-free; NaN for an all-zero
    map. Quantus's ``Complexity`` (Bhatt et al. 2020) on the same ``(N, 1, H, W)`` map, up to
    its ``1e-12`` inside the log.

    Parameters
    ----------
    attr : torch.Tensor
        ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``.
    """
    values, total = _shares(attr)
    share = values / torch.where(total > 0, total, torch.ones_like(total))[:, None]
    # entr(s) = -s log s with entr(0) = 0: two passes over the map instead of five (on a busy
    # machine every parallel pass can wait for a descheduled thread; benchmarks/bench_metrics.py)
    entropy = torch.special.entr(share).sum(1)
    return torch.where(total > 0, entropy, torch.full_like(total, float("nan")))


def _series(s: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(s)
    if s.dim() != 1 or len(s) < 2 or not s.is_floating_point():
        raise ValueError(f"need a 1-D float series of at least 2 values, got shape {tuple(s.shape)}")
    return s


def path_variation(s: torch.Tensor) -> float:
    """Total variation of a 1-D series over its range: 1 for a monotone series, larger the more
    it goes up and down (the gradient of a pixel along a path, notebook 04)."""
    s = _series(s)
    return float((s[1:] - s[:-1]).abs().sum() / (s.max() - s.min()))


def autocorrelation(s: torch.Tensor) -> float:
    """Lag-1 autocorrelation of a 1-D series (1 = smooth, 0 = white noise)."""
    s = _series(s)
    s = s - s.mean()
    return float((s[1:] * s[:-1]).sum() / (s * s).sum())

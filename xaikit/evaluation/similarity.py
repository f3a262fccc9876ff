"""Similarity of two explanations of the same images: Spearman rank correlation and SSIM.

Used by the randomisation checks (:mod:`.randomisation`). Both act on heatmaps (channel sums)
image by image; scipy ranks, scikit-image computes SSIM (nothing hand-written but the loop).

References
----------
Adebayo et al. (2018), "Sanity checks for saliency maps", NeurIPS. Wang et al. (2004), "Image
quality assessment: from error visibility to structural similarity", IEEE TIP 13.

Introduced in notebook ``13_evaluation_sanity_localisation``.
"""
from __future__ import annotations

import numpy as np
import torch

from ._inputs import as_heatmap

__all__ = ["SIMILARITIES", "similarity", "spearman", "ssim"]

SIMILARITIES = ("spearman", "spearman_abs", "ssim", "ssim_abs")


def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    ha, hb = as_heatmap(a, name="a"), as_heatmap(b, name="b")
    if ha.shape != hb.shape:
        raise ValueError(f"heatmaps of shapes {tuple(ha.shape)} and {tuple(hb.shape)} differ")
    return ha.cpu().double().numpy(), hb.cpu().double().numpy()


def spearman(a: torch.Tensor, b: torch.Tensor, *, absolute: bool = False) -> torch.Tensor:
    """Spearman rank correlation of two heatmaps per image, ``(N,)`` in [-1, 1].

    Parameters
    ----------
    a, b : torch.Tensor
        ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)`` explanations (channel sums compared).
    absolute : bool
        Rank absolute values (Adebayo et al. and Quantus's MPRT default ``abs=True``): the sign
        is lost, which hides a flipped explanation (Binder et al. 2023).

    Returns
    -------
    torch.Tensor
        ``(N,)`` float64. In a randomisation test **lower is better** (the explanation should
        change with the model). NaN for a constant map.

    References
    ----------
    Adebayo et al. (2018), NeurIPS. Introduced in notebook ``13_evaluation_sanity_localisation``.
    """
    from scipy.stats import rankdata

    x, y = _pair(a, b)
    x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    if absolute:
        x, y = np.abs(x), np.abs(y)
    rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(1) / np.sqrt((rx ** 2).sum(1) * (ry ** 2).sum(1))
    return torch.from_numpy(rho)


def ssim(a: torch.Tensor, b: torch.Tensor, *, absolute: bool = False) -> torch.Tensor:
    """Structural similarity (SSIM) of two 2-D heatmaps per image, ``(N,)``.

    scikit-image's ``structural_similarity`` with its default 7x7 window on the ``(H, W)``
    heatmaps, ``data_range`` the joint value range of the pair (as Quantus's ``ssim``).

    Parameters
    ----------
    a, b : torch.Tensor
        ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)`` explanations.
    absolute : bool
        Compare absolute values.

    Returns
    -------
    torch.Tensor
        ``(N,)`` float64, at most 1. In a randomisation test **lower is better**. SSIM rewards
        matching local statistics, and a map and its negation do not score -1 (where the local
        mean is far from 0 the luminance and structure terms are both negative).

    Notes
    -----
    Quantus's ``RandomLogit`` passes *flattened* maps to SSIM (a 1-D signal with a window of 7
    values), which mixes pixels of neighbouring rows; the numbers differ from 2-D SSIM.

    References
    ----------
    Wang et al. (2004), IEEE TIP 13; Adebayo et al. (2018). Introduced in notebook
    ``13_evaluation_sanity_localisation``.
    """
    from skimage.metrics import structural_similarity

    x, y = _pair(a, b)
    if absolute:
        x, y = np.abs(x), np.abs(y)
    out = []
    for u, v in zip(x, y):
        both = np.concatenate([u.ravel(), v.ravel()])
        span = float(both.max() - both.min())
        out.append(structural_similarity(u, v, data_range=span) if span > 0 else float("nan"))
    return torch.tensor(out, dtype=torch.float64)


def similarity(a: torch.Tensor, b: torch.Tensor, name: str) -> torch.Tensor:
    """One of :data:`SIMILARITIES` (``"ssim_abs"``: SSIM of absolute values), ``(N,)``."""
    if name not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {name!r}")
    fn = spearman if name.startswith("spearman") else ssim
    return fn(a, b, absolute=name.endswith("_abs"))

"""Ground-truth localisation: how much relevance falls on the class-determining object.

On the shapes data (:func:`xaikit.data.make_shapes`) the mask of the object that decides the
class is known, which makes three checks possible (Arras et al. 2022, CLEVR-XAI style):

    relevance mass   R_in / R_total         (positive relevance inside the mask / all positive)
    relevance rank   |top-K pixels in mask| / K,   K = |mask|
    pointing game    the maximal pixel lies in the mask (Zhang et al. 2018)

All three are computed on the heatmap (channel sum), per image; **higher is better**, 1 at best.

References
----------
Arras, Osman, Samek (2022), "CLEVR-XAI: A benchmark dataset for the ground truth evaluation of
neural network explanations", Information Fusion 81. Zhang et al. (2018), "Top-down neural
attention by excitation backprop", IJCV 126.

Introduced in notebook ``13_evaluation_sanity_localisation``.
"""
from __future__ import annotations

import torch

from ._inputs import as_heatmap, as_masks, tie_broken_order

__all__ = ["PARTS", "pointing_game", "relevance_mass", "relevance_rank"]

PARTS = ("positive", "signed", "absolute")


def _part(heat: torch.Tensor, part: str) -> torch.Tensor:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    if part == "positive":
        return heat.clamp(min=0)
    return heat.abs() if part == "absolute" else heat


def relevance_mass(attr: torch.Tensor, masks: torch.Tensor, *,
                   part: str = "positive") -> torch.Tensor:
    """Relevance mass accuracy: the share of relevance inside the object mask, ``(N,)``.

    Parameters
    ----------
    attr : torch.Tensor
        ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``; the channel sum is used.
    masks : torch.Tensor
        ``(N, H, W)`` bool (or 0/1) object masks, none empty.
    part : {"positive", "signed", "absolute"}
        Which relevance counts: the positive part (default, as Arras et al.), the signed values
        (Quantus's ``RelevanceMassAccuracy``: can leave [0, 1]) or absolute values.

    Returns
    -------
    torch.Tensor
        ``(N,)``, **higher is better**; 1 when all (positive) relevance lies on the object.
        NaN where the map has no relevance of that part (e.g. no positive pixel).

    References
    ----------
    Arras, Osman, Samek (2022), Information Fusion 81.
    Introduced in notebook ``13_evaluation_sanity_localisation``.
    """
    heat = _part(as_heatmap(attr), part)
    m = as_masks(masks, tuple(heat.shape))
    total = heat.flatten(1).sum(1)
    inside = (heat * m).flatten(1).sum(1)
    return torch.where(total != 0, inside / total, torch.full_like(total, float("nan")))


def relevance_rank(attr: torch.Tensor, masks: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Relevance rank accuracy: the share of the ``K = |mask|`` top pixels inside the mask.

    Parameters
    ----------
    attr : torch.Tensor
        ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``; the channel sum (signed) is ranked.
    masks : torch.Tensor
        ``(N, H, W)`` bool (or 0/1) object masks, none empty.
    seed : int
        Ties are broken at random by ``seed`` (private generator): a constant map scores about
        the mask's share of the image, not 1. Quantus uses numpy's unstable ``argsort``.

    Returns
    -------
    torch.Tensor
        ``(N,)`` in [0, 1], **higher is better**.

    References
    ----------
    Arras, Osman, Samek (2022), Information Fusion 81.
    Introduced in notebook ``13_evaluation_sanity_localisation``.
    """
    heat = as_heatmap(attr)
    m = as_masks(masks, tuple(heat.shape)).flatten(1)
    order = tie_broken_order(heat.flatten(1), True, seed)                         # (N, HW)
    k = m.sum(1, keepdim=True)                                                     # (N, 1)
    top = torch.arange(m.shape[1], device=m.device).expand_as(m) < k
    return (m.gather(1, order) & top).sum(1).to(heat.dtype) / k[:, 0].to(heat.dtype)


def pointing_game(attr: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Pointing game: does the maximal pixel of the heatmap lie on the object? ``(N,)``.

    Parameters
    ----------
    attr : torch.Tensor
        ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``; the channel sum is used.
    masks : torch.Tensor
        ``(N, H, W)`` bool (or 0/1) object masks, none empty.

    Returns
    -------
    torch.Tensor
        ``(N,)`` float: 1 (hit) or 0 (miss) when the maximum is unique; with several maximal
        pixels the share of them inside the mask (the hit rate of a random tie-break), so a
        constant map scores the mask's share of the image. Pixels within ``100 eps`` of the
        map's largest magnitude below the maximum count as maximal (``eps`` the dtype's
        resolution: 1.2e-5 relative in float32): closer than that, which pixel is largest
        depends on the CPU's kernels and thread count (bilinearly upsampled Grad-CAM maps have
        such near-ties). **Higher is better.** No tolerance margin in space (Zhang et al. allow
        15 px on 224 px images).

    Notes
    -----
    Quantus's ``PointingGame`` counts a tie as a hit if *any* maximal pixel is inside (a
    constant map always hits), counts an empty mask as a hit (``NaN`` written into a bool
    array becomes ``True``), and ``weighted=True`` raises a TypeError in 0.6.0.

    References
    ----------
    Zhang et al. (2018), IJCV 126. Introduced in notebook ``13_evaluation_sanity_localisation``.
    """
    heat = as_heatmap(attr).flatten(1)
    m = as_masks(masks, (heat.shape[0], *attr.shape[-2:])).flatten(1)
    tol = 100 * torch.finfo(heat.dtype).eps * heat.abs().amax(1, keepdim=True)
    best = heat >= heat.max(1, keepdim=True).values - tol
    return (best & m).sum(1).to(heat.dtype) / best.sum(1).to(heat.dtype)

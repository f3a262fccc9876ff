"""Input checks shared by the metrics: heatmaps and masks (one place, clear errors)."""
from __future__ import annotations

import torch

__all__ = ["as_heatmap", "as_masks", "tie_broken_order"]


def as_heatmap(attr: torch.Tensor, like: torch.Tensor | tuple | None = None,
               name: str = "attr") -> torch.Tensor:
    """The ``(N, H, W)`` heatmap of ``attr``: the channel sum of an ``(N, C, H, W)`` attribution.

    ``attr`` may be ``(N, C, H, W)`` (summed over channels: relevance stays in logit units),
    ``(N, 1, H, W)`` or ``(N, H, W)``. ``like`` (an input ``x`` or a shape) fixes ``N, H, W``;
    a mismatch, a non-float tensor or a NaN/inf value is a ValueError/TypeError, never a silent
    score.
    """
    if not isinstance(attr, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(attr).__name__}")
    if not attr.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {attr.dtype}")
    if attr.dim() not in (3, 4) or attr.shape[0] == 0:
        raise ValueError(f"{name} must be (N, C, H, W) or (N, H, W), got {tuple(attr.shape)}")
    if like is not None:
        shape = tuple(like.shape) if isinstance(like, torch.Tensor) else tuple(like)
        expected = (shape[0], *shape[-2:])
        got = (attr.shape[0], *attr.shape[-2:])
        channels_ok = attr.dim() == 3 or len(shape) < 4 or attr.shape[1] in (1, shape[1])
        if got != expected or not channels_ok:
            raise ValueError(f"{name} of shape {tuple(attr.shape)} does not match the input "
                             f"shape {shape}")
    if not torch.isfinite(attr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    attr = attr.detach()
    return attr.sum(1) if attr.dim() == 4 else attr


def as_masks(masks: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """``masks`` as an ``(N, H, W)`` bool tensor; ValueError for a wrong shape or an empty mask.

    Accepts bool or 0/1 tensors shaped ``(N, H, W)`` or ``(N, 1, H, W)``.
    """
    if not isinstance(masks, torch.Tensor):
        raise TypeError(f"masks must be a torch.Tensor, got {type(masks).__name__}")
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if tuple(masks.shape) != tuple(shape):
        raise ValueError(f"masks of shape {tuple(masks.shape)} do not match the heatmaps "
                         f"{tuple(shape)} (expected (N, H, W))")
    if masks.dtype != torch.bool:
        if masks.is_complex() or not ((masks == 0) | (masks == 1)).all():
            raise ValueError("masks must be bool or hold only 0 and 1")
        masks = masks != 0
    empty = (~masks.flatten(1).any(1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"empty mask (no object pixel) for image(s) {empty}: the metric is "
                         "undefined there")
    return masks


def tie_broken_order(scores: torch.Tensor, descending: bool, seed: int) -> torch.Tensor:
    """Indices sorting each row of ``scores`` ``(N, P)``, ties broken at random by ``seed``.

    The rows are first permuted by a random permutation drawn from a private generator seeded
    with ``seed`` and then sorted stably, so tied entries come in a random but reproducible
    order (the same ``seed`` gives the same order; the global RNG is untouched).
    """
    generator = torch.Generator().manual_seed(seed)
    keys = torch.rand(scores.shape, generator=generator)
    perm = keys.argsort(dim=1).to(scores.device)
    permuted = scores.gather(1, perm)
    index = permuted.argsort(dim=1, descending=descending, stable=True)
    return perm.gather(1, index)

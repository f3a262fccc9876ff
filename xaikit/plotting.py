"""Plotting heatmaps with one sign and clipping policy for the whole workbook.

Signed maps use one diverging colormap centred at zero (red positive, blue negative, as in the
lecture figures), clipped symmetrically at the 99.5th percentile of ``|heatmap|``; unsigned maps
use one sequential colormap. Every function takes ``ax=None`` and returns ``(fig, ax)``; none
calls ``plt.show()`` (captum's ``visualization`` convention).

Introduced in notebook ``00_setup_and_tour``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["SIGNED_CMAP", "UNSIGNED_CMAP", "CLIP_PERCENTILE", "heatmap", "plot_heatmap"]

SIGNED_CMAP = "bwr"
UNSIGNED_CMAP = "viridis"
CLIP_PERCENTILE = 99.5


def heatmap(attr: torch.Tensor) -> np.ndarray:
    """Sum an attribution over its channels: ``(1, C, H, W)``, ``(C, H, W)`` or ``(H, W)`` to
    an ``(H, W)`` float64 array (relevance is additive, so channels are summed)."""
    a = torch.as_tensor(attr).detach().cpu().double()
    if a.dim() == 4:
        if a.shape[0] != 1:
            raise ValueError(f"plot one sample at a time, got a batch of {a.shape[0]}")
        a = a[0]
    if a.dim() == 3:
        a = a.sum(0)
    if a.dim() != 2:
        raise ValueError(f"attr must be (1, C, H, W), (C, H, W) or (H, W), got {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise ValueError("attr contains NaN or infinite values")
    return a.numpy()


def _image_array(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    a = torch.as_tensor(image).detach().cpu().double()
    if a.dim() == 4:
        a = a[0]
    if a.dim() == 3 and a.shape[0] in (1, 3):
        a = a.permute(1, 2, 0)
    return a.clamp(0, 1).numpy()


def plot_heatmap(attr: torch.Tensor, image: Image.Image | torch.Tensor | None = None,
                 ax: Axes | None = None, *, signed: bool = True,
                 percentile: float = CLIP_PERCENTILE, alpha: float = 0.75,
                 title: str | None = None, colorbar: bool = False) -> tuple[Figure, Axes]:
    """Show an attribution as a heatmap, optionally over a grey version of the image.

    Parameters
    ----------
    attr : torch.Tensor
        ``(1, C, H, W)``, ``(C, H, W)`` or ``(H, W)``; channels are summed.
    image : PIL.Image.Image or torch.Tensor, optional
        Shown in grey underneath (a tensor in [0, 1], ``(1, 3, H, W)`` or ``(3, H, W)``), of
        the heatmap's height and width (else a ValueError: it is not resized).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    signed : bool
        Diverging colormap centred at 0 (default), or sequential on ``|heatmap|``.
    percentile : float
        Colour limits at this percentile of ``|heatmap|`` (symmetric for signed maps).

    Returns
    -------
    (matplotlib.figure.Figure, matplotlib.axes.Axes)
    """
    import matplotlib.pyplot as plt

    h = heatmap(attr)
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must lie in (0, 100], got {percentile}")
    picture = None if image is None else _image_array(image)
    if picture is not None and picture.ndim not in (2, 3):
        raise ValueError("image must be a PIL image or a tensor (1, 3, H, W), (3, H, W) or "
                         f"(H, W), got shape {tuple(torch.as_tensor(image).shape)}")
    if picture is not None and picture.shape[:2] != h.shape:
        raise ValueError(
            f"image is {picture.shape[0]}x{picture.shape[1]} pixels but the heatmap is "
            f"{h.shape[0]}x{h.shape[1]} (height x width); pass the image the attribution was "
            "computed for (e.g. xk.denormalize(x, model), or Examples.images), not the original "
            "photo before preprocess")
    if ax is None:
        fig, ax = plt.subplots(figsize=(3, 3))
    else:
        fig = ax.figure
    limit = float(np.percentile(np.abs(h), percentile)) or 1.0
    extent = (-0.5, h.shape[1] - 0.5, h.shape[0] - 0.5, -0.5)
    if picture is not None:
        grey = picture.mean(-1) if picture.ndim == 3 else picture
        ax.imshow(grey, cmap="gray", extent=extent, vmin=0, vmax=1)
    if signed:
        shown = ax.imshow(h, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit, extent=extent,
                          alpha=alpha if image is not None else 1.0)
    else:
        shown = ax.imshow(np.abs(h), cmap=UNSIGNED_CMAP, vmin=0, vmax=limit, extent=extent,
                          alpha=alpha if image is not None else 1.0)
    if colorbar:
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig, ax

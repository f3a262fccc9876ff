"""Figures of notebook ``00_setup_and_tour``: the example inputs and a first heatmap.

References
----------
Simonyan & Zisserman 2015, "Very deep convolutional networks for large-scale image
recognition" (ICLR); Shrikumar et al. 2016, arXiv:1605.01713 (Gradient x Input).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..examples import example_batch
from ..explain import explain
from ..models import model_spec
from ..plotting import plot_heatmap
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["example_inputs", "first_heatmap"]

NB = "00_setup_and_tour"


@register_figure("example_inputs", notebook=NB, section="2. The inputs",
                 title="The four example inputs (and their object masks offline)")
def example_inputs(model: nn.Module, n: int = 4) -> tuple[Figure, dict[str, Any]]:
    """The images of :func:`xaikit.example_batch` (row 2: masks, shapes only).

    Returns ``fig`` and ``{"examples": Examples}``."""
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=n)
    rows = 2 if ex.masks is not None else 1
    fig, axes = plt.subplots(rows, n, figsize=(8, 2 * rows), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(ex.images[i].permute(1, 2, 0))
        ax.set_title(ex.names[i])
        ax.set_axis_off()
        if ex.masks is not None:
            axes[1, i].imshow(ex.masks[i], cmap="gray")
            axes[1, i].set_title("object mask")
            axes[1, i].set_axis_off()
    return fig, {"examples": ex}


@register_figure("first_heatmap", notebook=NB, section="6. A first heatmap",
                 title="Gradient x Input for the predicted class of each example")
def first_heatmap(model: nn.Module, n: int = 4) -> tuple[Figure, dict[str, Any]]:
    """Gradient x Input of the predicted class, over each example image.

    Returns ``fig`` and ``{"attr": (n, C, H, W), "pred": (n,), "logits": (n, classes)}``."""
    import matplotlib.pyplot as plt

    spec = model_spec(model)
    ex = example_batch(model, n=n)
    with torch.no_grad():
        logits = model(ex.x)
    pred = logits.argmax(1)
    attr = explain(model, ex.x, pred, "gradient_x_input")
    fig, axes = plt.subplots(1, n, figsize=(8, 2), squeeze=False)
    for i, ax in enumerate(axes[0]):
        plot_heatmap(attr[i:i + 1], image=ex.images[i:i + 1], ax=ax, title=spec.classes[pred[i]])
    return fig, {"attr": attr, "pred": pred, "logits": logits}

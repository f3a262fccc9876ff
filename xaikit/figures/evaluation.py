"""Figures of notebook ``09_evaluating_explanations``: pixel-flipping curves.

References
----------
Bach et al. (2015), PLOS ONE; Samek et al. (2017), "Evaluating the visualization of what a deep
neural network has learned", IEEE TNNLS (region perturbation, AOPC).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..evaluation import CONTROLS, pixel_flipping
from ..evaluation.table import explain_or_control
from ..examples import example_batch
from ..models import model_spec
from .registry import register_figure

__all__ = ["FLIPPING_METHODS", "pixel_flipping_curves"]

NB = "09_evaluating_explanations"
FLIPPING_METHODS = {"Gradient": ("gradient", {}), "Gradient x Input": ("gradient_x_input", {}),
                    "Grad-CAM": ("gradcam", {}), "LRP composite": ("lrp", {"composite": "vgg16"}),
                    **{kind: (kind, {}) for kind in CONTROLS}}
"""Methods the exported figure compares when no curves are passed (cheap ones and controls)."""


@register_figure("pixel_flipping_curves", notebook=NB, section="3. Selectivity (claim G3)",
                 title="Pixel-flipping curves (most relevant patches first) for every method")
def pixel_flipping_curves(model: nn.Module, curves: dict[str, torch.Tensor] | None = None,
                          steps: int = 16):
    """Mean curve of the explained logit as patches are removed, most relevant first.

    ``curves``: ``{label: (N, steps + 1)}`` from :func:`xaikit.evaluation.pixel_flipping`, if
    already computed (notebook 09); otherwise computed for :data:`FLIPPING_METHODS` and the
    controls on four example images (8 x 8 patches). Labels in
    :data:`xaikit.evaluation.CONTROLS` are drawn dashed. Returns ``fig`` and
    ``{"curves": curves}``.
    """
    import matplotlib.pyplot as plt

    if curves is None:
        ex = example_batch(model, n=4)
        patch = model_spec(model).input_size // 8
        curves = {label: pixel_flipping(model, ex.x,
                                        explain_or_control(model, ex.x, ex.labels, name, opts),
                                        ex.labels, steps=steps, patch=patch)
                  for label, (name, opts) in FLIPPING_METHODS.items()}
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for label, c in curves.items():
        style = dict(color="k", ls="--") if label in CONTROLS else {}
        ax.plot(np.linspace(0, 1, c.shape[1]), c.mean(0), label=label, lw=1.2, **style)
    ax.set_xlabel("share of patches removed (most relevant first)")
    ax.set_ylabel("logit $f_c$")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig, {"curves": curves}

"""Figures of the evaluation notebooks (11, 12, 13): the continuity toy, pixel-flipping
curves, the LRP setting chosen by AOPC, randomisation curves and localisation maps.

References
----------
Montavon, Samek, Müller (2018), Digital Signal Processing 73 (continuity); Bach et al. (2015),
PLOS ONE; Samek et al. (2017), "Evaluating the visualization of what a deep neural network has
learned", IEEE TNNLS (region perturbation, AOPC); Pahde et al. (2023) (selection); Adebayo et
al. (2018), NeurIPS (randomisation); Arras, Osman, Samek (2022), CLEVR-XAI (localisation).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .._checks import Target
from ..evaluation import CONTROLS, max_toy_model, pixel_flipping, randomisation_test, select
from ..examples import example_batch
from ..explain import explain
from ..models import model_spec
from ..plotting import plot_heatmap
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FLIPPING_METHODS", "LOCALISATION_METHODS", "RANDOMISATION_METHODS", "SELECTION_GRID",
           "continuity_tie", "evaluation_methods", "localisation_maps", "lrp_selection_maps",
           "pixel_flipping_curves", "randomisation_curves", "tie_attributions"]

NB = "11_evaluation_properties"
NB_SELECT = "12_evaluation_selectivity"
NB_SANITY = "13_evaluation_sanity_localisation"
_SPECS = {
    "Gradient": ("gradient", {}),
    "Gradient x Input": ("gradient_x_input", {}),
    "SmoothGrad": ("smoothgrad", {"samples": 8, "seed": 0}),
    "Integrated Gradients": ("integrated_gradients", {"steps": 16}),
    "DeepLIFT": ("deeplift", {}),
    "Guided Backprop": ("guided_backprop", {}),
    "Grad-CAM": ("gradcam", {}),
    "LRP-epsilon": ("lrp", {"rule": "epsilon"}),
    "LRP composite": ("lrp", {"composite": "vgg16"}),
}
"""Every evaluated method but occlusion (whose window follows the model), so that a label means
the same settings in every table and figure of the evaluation notebooks."""


def _pick(*labels: str) -> dict[str, tuple[str, dict]]:
    """``{label: (name, options)}`` from :data:`_SPECS`, each options dict a fresh copy."""
    return {label: (_SPECS[label][0], dict(_SPECS[label][1])) for label in labels}


FLIPPING_METHODS = {**_pick("Gradient", "Gradient x Input", "Grad-CAM", "LRP composite"),
                    **{kind: (kind, {}) for kind in CONTROLS}}
"""Methods the exported figure compares when no curves are passed (cheap ones and controls)."""


def evaluation_methods(model: nn.Module) -> dict[str, tuple[str, dict]]:
    """The ten methods the evaluation notebooks score, as ``{label: (name, options)}``.

    Every method of the workbook with cheap settings (SmoothGrad with 8 samples, IG with 16
    steps, occlusion with a window of a quarter of the side: 16 patches), in one place so that
    the three evaluation notebooks score the same maps. The controls of
    :data:`xaikit.evaluation.CONTROLS` are added by the notebooks.
    """
    side = model_spec(model).input_size
    return {**_pick("Gradient", "Gradient x Input", "SmoothGrad", "Integrated Gradients",
                    "DeepLIFT", "Guided Backprop", "Grad-CAM"),
            "Occlusion": ("occlusion", {"window": side // 4, "progress": False}),
            **_pick("LRP-epsilon", "LRP composite")}


SELECTION_GRID = {"gamma": [0.0, 0.05, 0.25, 1.0], "epsilon": [1e-6, 0.25, 2.0]}
"""The grid of LRP-composite settings notebook 12 selects from by AOPC."""


def tie_attributions(t: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Relevance of ``f(x) = max(x1, x2)`` along ``x = (1, t)`` for four explanations.

    Gradient x Input; Integrated Gradients from the baseline 0 (midpoint rule, 16 steps; the
    gradient is constant along the ray, so it equals Gradient x Input); the Shapley split
    ``R_1 = (x1 + f(x) - x2) / 2`` (and symmetrically ``R_2``), these three written with
    ``torch.max`` because the point is the function: Montavon et al. (2018)'s continuity
    example; and LRP-alpha1beta0, run by :func:`xaikit.explain` on
    :func:`xaikit.evaluation.max_toy_model`, the bias-free ReLU network that computes ``max``
    (on it this rule gives the Shapley split). ``t`` defaults to 201 points on ``[0.5, 1.5]``
    (step 0.005, crossing the tie at ``t = 1``). Returns ``t`` and ``{name: (len(t), 2)}``.
    """
    t = torch.linspace(0.5, 1.5, 201) if t is None else torch.as_tensor(t, dtype=torch.float32)
    X = torch.stack([torch.ones_like(t), t], 1).requires_grad_(True)      # (T, 2)
    f = lambda X: X.max(1).values                                           # noqa: E731
    grad, = torch.autograd.grad(f(X).sum(), X)
    X = X.detach()
    alphas = (torch.arange(16) + 0.5) / 16
    path = (alphas[:, None, None] * X).requires_grad_(True)                 # (16, T, 2)
    g, = torch.autograd.grad(f(path.view(-1, 2)).sum(), path)
    fx = f(X)
    lrp = explain(max_toy_model(X.dtype), X, 0, "lrp", rule="alpha1beta0")
    return t, {"Gradient x Input": grad * X, "Integrated Gradients": X * g.mean(0),
               "Shapley split": torch.stack([(X[:, 0] + fx - X[:, 1]) / 2,
                                             (X[:, 1] + fx - X[:, 0]) / 2], 1),
               "LRP-alpha1beta0": lrp}


@register_figure("continuity_tie", notebook=NB, section="2. Continuity (claim G2)",
                 title="Relevance of max(x1, x2) across the tie: Gradient x Input vs a "
                       "Shapley split (= LRP-alpha1beta0)")
def continuity_tie(model: nn.Module | None = None,
                   t: torch.Tensor | None = None) -> tuple[Figure, dict[str, Any]]:
    """:func:`tie_attributions` drawn for Gradient x Input (= IG here) and the Shapley split.

    ``model`` is ignored (a toy function). Returns ``fig`` and ``{"t": t, "maps": {name:
    (T, 2)}, "jump": {name: largest L1 change of R between neighbouring inputs}}``.
    """
    import matplotlib.pyplot as plt

    t, maps = tie_attributions(t)
    jump = {name: (R[1:] - R[:-1]).abs().sum(1).max().item() for name, R in maps.items()}
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.4), sharey=True)
    for ax, (name, R) in zip(axes, {"Gradient x Input (= IG)": maps["Gradient x Input"],
                                     "Shapley split (= LRP-$\\alpha_1\\beta_0$)":
                                         maps["Shapley split"]}.items()):
        ax.plot(t, R[:, 0], label="$R_1$")
        ax.plot(t, R[:, 1], label="$R_2$")
        ax.axvline(1, color="0.6", lw=0.8)
        ax.set_xlabel("$x_2$ (with $x_1 = 1$)")
        ax.set_title(name)
    axes[0].legend()
    fig.tight_layout()
    return fig, {"t": t, "maps": maps, "jump": jump}


@register_figure("pixel_flipping_curves", notebook=NB_SELECT, section="1. Selectivity (claim G3)",
                 title="Pixel-flipping curves (most relevant patches first) for every method")
def pixel_flipping_curves(model: nn.Module, curves: dict[str, torch.Tensor] | None = None,
                          steps: int = 16) -> tuple[Figure, dict[str, Any]]:
    """Mean curve of the explained logit as patches are removed, most relevant first.

    ``curves``: ``{label: (N, steps + 1)}`` from :func:`xaikit.evaluation.pixel_flipping`, if
    already computed (notebook 12); otherwise computed for :data:`FLIPPING_METHODS` and the
    controls on four example images (8 x 8 patches). Labels in
    :data:`xaikit.evaluation.CONTROLS` are drawn dashed. Returns ``fig`` and
    ``{"curves": curves}``.
    """
    import matplotlib.pyplot as plt

    if curves is None:
        ex = example_batch(model, n=4)
        patch = model_spec(model).input_size // 8
        curves = {label: pixel_flipping(model, ex.x,
                                        explain(model, ex.x, ex.labels, name, **opts),
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


@register_figure("lrp_selection_maps", notebook=NB_SELECT,
                 section="3. Explanation selection: LRP's gamma and epsilon (claim G4)",
                 title="LRP composite with the gamma/epsilon chosen by AOPC and with the worst "
                       "setting")
def lrp_selection_maps(model: nn.Module, settings: dict[str, dict] | None = None,
                       x: torch.Tensor | None = None, target: Target | None = None,
                       images: torch.Tensor | None = None) -> tuple[Figure, dict[str, Any]]:
    """LRP-composite heatmaps for each named setting of ``gamma`` and ``epsilon``, side by side.

    ``settings``: ``{"chosen": {"gamma": ..., "epsilon": ...}, "worst": {...}}`` as found by
    :func:`xaikit.evaluation.select` (notebook 12, on other images than those shown); if
    omitted, selected here over :data:`SELECTION_GRID` on the first two example images.
    ``x, target, images``: the images to show (default: the next two example images; on the
    ImageNet path one photo to select on and one to show). Returns ``fig`` and ``{"settings": ...,
    "maps": {name: (N, C, H, W)}}``.
    """
    import matplotlib.pyplot as plt

    if x is not None and (target is None or images is None):
        raise ValueError("pass x, target and images together (or none of them)")
    if settings is None or x is None:
        ex = example_batch(model, n=4 if model_spec(model).dataset == "shapes" else 2)
        half = len(ex.x) // 2
    if settings is None:
        sel = select(model, ex.x[:half], ex.labels[:half], "lrp", SELECTION_GRID,
                     options={"composite": "vgg16"}, flip_steps=8,
                     patch=model_spec(model).input_size // 8)
        settings = {"chosen": sel.best, "worst": sel.worst}
    if x is None:
        x, target, images = ex.x[half:], ex.labels[half:], ex.images[half:]
    maps = {name: explain(model, x, target, "lrp", composite="vgg16", **setting)
            for name, setting in settings.items()}
    shown = len(x)
    fig, axes = plt.subplots(1, len(settings) * shown, figsize=(2 * len(settings) * shown, 2.2),
                             squeeze=False)
    for row, (name, setting) in enumerate(settings.items()):
        for k in range(shown):
            title = (f"{name}: $\\gamma$={setting['gamma']:g}, $\\epsilon$={setting['epsilon']:g}"
                     if k == 0 else None)
            plot_heatmap(maps[name][k:k + 1], image=images[k:k + 1], ax=axes[0, shown * row + k],
                         title=title)
    fig.tight_layout()
    return fig, {"settings": settings, "maps": maps}


RANDOMISATION_METHODS = _pick("Gradient", "Gradient x Input", "Guided Backprop", "LRP composite")
"""The methods of notebook 13's cascading randomisation test."""


@register_figure("randomisation_curves", notebook=NB_SANITY,
                 section="1. Randomisation sanity checks and their critique (claim G5)",
                 title="Spearman correlation to the original explanation as layers are randomised "
                       "from the output down")
def randomisation_curves(model: nn.Module, tests: dict | None = None) -> tuple[Figure, dict[str, Any]]:
    """Mean Spearman correlation per cascading-randomisation step, one curve per method.

    ``tests``: ``{label: DataFrame}`` from :func:`xaikit.evaluation.randomisation_test`
    (``order="cascading"``); if omitted, computed for :data:`RANDOMISATION_METHODS` on the
    first example image. Returns ``fig`` and ``{"tests": tests, "curves": {label: Series}}``.
    """
    import matplotlib.pyplot as plt

    if tests is None:
        ex = example_batch(model, n=1)
        tests = {label: randomisation_test(model, ex.x, ex.labels, name, order="cascading", **opts)
                 for label, (name, opts) in RANDOMISATION_METHODS.items()}
    fig, ax = plt.subplots(figsize=(5.5, 3))
    curves = {}
    for label, frame in tests.items():
        curves[label] = frame.groupby("step")["spearman"].mean()
        ax.plot(curves[label].index, curves[label].values, marker=".", label=label)
    frame = next(iter(tests.values()))
    steps = frame.groupby("step")["layer"].first()
    ax.set_xticks(steps.index[::3])
    ax.set_xticklabels(steps.values[::3], rotation=30, fontsize=6)
    ax.set_xlabel("randomised down to layer (cascading)")
    ax.set_ylabel("Spearman to original")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig, {"tests": tests, "curves": curves}


LOCALISATION_METHODS = _pick("Gradient", "Integrated Gradients", "Grad-CAM", "LRP composite")
"""The methods notebook 13's localisation figure shows."""


@register_figure("localisation_maps", notebook=NB_SANITY,
                 section="2. Ground-truth localisation (claim G6)",
                 title="Heatmaps of four methods with the object mask outlined")
def localisation_maps(model: nn.Module, attrs: dict[str, torch.Tensor] | None = None,
                      images: torch.Tensor | None = None,
                      masks: torch.Tensor | None = None) -> tuple[Figure, dict[str, Any]]:
    """The first image with its object mask, then each method's heatmap with the mask outlined.

    ``attrs``: ``{label: (N, C, H, W)}`` for the labels of :data:`LOCALISATION_METHODS` (extra
    labels are ignored), with ``images`` and ``masks`` (``(N, H, W)`` or ``None``: photos have
    no mask, then none is drawn); if omitted, computed on the first example image. Returns
    ``fig`` and ``{"attrs": {label: (1, C, H, W)}}``.
    """
    import matplotlib.pyplot as plt

    if attrs is None:
        ex = example_batch(model, n=1)
        images, masks = ex.images, ex.masks
        attrs = {label: explain(model, ex.x, ex.labels, name, **opts)
                 for label, (name, opts) in LOCALISATION_METHODS.items()}
    elif images is None:
        raise ValueError("pass images with attrs")
    missing = [label for label in LOCALISATION_METHODS if label not in attrs]
    if missing:
        raise ValueError(f"attrs lacks {missing}")
    fig, axes = plt.subplots(1, 1 + len(LOCALISATION_METHODS), figsize=(10, 2.2))
    axes[0].imshow(images[0].permute(1, 2, 0).clamp(0, 1))
    axes[0].set_axis_off()
    axes[0].set_title("object mask" if masks is not None else "image (no mask)")
    if masks is not None:
        axes[0].contour(masks[0], colors="w", linewidths=0.6)
    for ax, label in zip(axes[1:], LOCALISATION_METHODS):
        plot_heatmap(attrs[label][:1], image=images[:1], ax=ax, title=label)
        if masks is not None:
            ax.contour(masks[0], colors="k", linewidths=0.4)
    fig.tight_layout()
    return fig, {"attrs": {label: attrs[label][:1] for label in LOCALISATION_METHODS}}

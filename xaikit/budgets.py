"""Compute budgets per model: the one place where the workbook's costly settings live.

The offline model (a narrow VGG-16 on 112-pixel shapes images) costs about a hundredth of
torchvision's VGG-16 at 224 pixels, which on a laptop's two CPU cores takes about 0.15 s per
forward pass and 0.3 s per gradient. So every setting whose cost is a number of forward or
backward passes (occlusion windows and stride, LIME and SmoothGrad samples, IG steps,
optimisation steps, the number of images of an evaluation) is chosen here per model family,
and the notebooks print the budget they use (:meth:`Budget.describe`)::

    budget = xk.budget(model)
    print(budget.describe("01"))

``BUDGETS["shapes"]`` holds the settings the committed outputs were computed with;
``BUDGETS["imagenet"]`` the ones that keep each notebook within about three minutes on two CPU
cores with VGG-16 at 224 pixels (notebooks/README.md has the measured times). To spend more on
a faster machine, pass your own: ``xk.budget(model, lime_samples=1000)``.

Claims asserted on the offline model are verified with its budget; on the ImageNet path the
notebooks print what they measure with the smaller budget instead of asserting it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from torch import nn

from .models import model_spec

__all__ = ["Budget", "BUDGETS", "budget"]


def _setting(notebooks: str | tuple[str, ...], label: str):
    notebooks = (notebooks,) if isinstance(notebooks, str) else notebooks
    return field(metadata={"notebooks": notebooks, "label": label})


@dataclass(frozen=True)
class Budget:
    """The costly settings of the notebooks for one model family (see the module docstring).

    Each field's metadata names the notebooks that use it (``("01",)``) and how it is printed.
    """

    family: str
    # 01 perturbation
    occlusion_window: int = _setting("01", "occlusion window = side / {}")
    occlusion_stride: int = _setting("01", "stride = side / {}")
    meaningful_iterations: int = _setting("01", "meaningful perturbation: {} Adam steps")
    lime_samples: int = _setting("01", "LIME: {} samples")
    # 02 Shapley values
    shapley_grid: int = _setting("02", "exact Shapley on a {0} x {0} grid")
    shapley_sample_budgets: tuple[int, ...] = _setting("02", "sampling budgets: {} passes")
    shapley_seeds: int = _setting("02", "seeds per budget: {}")
    shapley_fine_permutations: int = _setting("02", "7 x 7 grid: {} permutations")
    # 03 gradients, 06 DeepLIFT
    ig_steps: int = _setting("03", "IG on VGG-16: {} steps")
    ig_images: int = _setting("03", "IG references: {} images")
    # 05 SmoothGrad
    smoothgrad_ts: tuple[int, ...] = _setting("05", "SmoothGrad grid: T = {}")
    smoothgrad_reference: int = _setting("05", "convergence reference: T = {}")
    smoothgrad_images: int = _setting("05", "roughness over {} images")
    # 07 LRP from scratch
    bias_share_images: int = _setting("07", "bias share: {} held-out images")
    # 08 LRP rules
    rule_images: int = _setting("08", "rule comparison: {} images")
    # 09 concepts
    concept_reference_images: int = _setting("09", "relevance maximisation: {} images")
    concept_train_images: int = _setting("09", "explanation by example: {} training images")
    concept_truth_images: int = _setting("09", "ground truth: {} images")
    float64_images: int = _setting("09", "float64 cross-check: {} images")
    synthesis_steps: int = _setting("09", "neuron synthesis: {} steps")
    synthesis_side: int = _setting("09", "on {} px")
    # 10 Grad-CAM
    gradcam_pairs: int = _setting("10", "class discrimination: {} two-class images")
    # 11, 12, 13 evaluation (properties; selectivity and selection; sanity checks and localisation)
    eval_images: int = _setting(("11", "12", "13"), "evaluation: {} images")
    eval_few: int = _setting(("11", "13"), "costliest checks: {} images")
    robustness_copies: int = _setting(("11", "13"), "robustness: {} noisy copies per image")
    flip_steps: int = _setting("12", "pixel flipping in {} steps")
    heldout_images: int = _setting("12", "selection checked on {} held-out images")
    ranking_flip_steps: int = _setting("13", "AOPC of the ranking in {} pixel-flipping steps")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if f.name == "family":
                continue
            if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                      for v in values):
                raise ValueError(f"budget {f.name} must be a positive int (or a tuple of them), "
                                 f"got {value!r}")

    def describe(self, notebook: str | None = None) -> str:
        """One line naming the settings of ``notebook`` (``"01"``; all when ``None``)."""
        parts = []
        for f in fields(self):
            if "notebooks" not in f.metadata or (notebook is not None
                                                 and notebook not in f.metadata["notebooks"]):
                continue
            value = getattr(self, f.name)
            shown = ", ".join(map(str, value)) if isinstance(value, tuple) else value
            parts.append(f.metadata["label"].format(shown))
        if not parts:
            known = sorted({n for f in fields(self) if f.metadata for n in f.metadata["notebooks"]})
            raise ValueError(f"no budget settings for notebook {notebook!r}; known: {known}")
        return f"budget ({self.family}): " + "; ".join(parts)


BUDGETS: dict[str, Budget] = {
    "shapes": Budget(
        family="offline model",
        occlusion_window=8, occlusion_stride=16, meaningful_iterations=150, lime_samples=256,
        ig_steps=32, ig_images=4,
        smoothgrad_ts=(1, 4, 16, 64), smoothgrad_reference=256, smoothgrad_images=8,
        bias_share_images=32, rule_images=32, gradcam_pairs=30,
        eval_images=16, eval_few=6, robustness_copies=10, flip_steps=16, heldout_images=64,
        ranking_flip_steps=8,
        shapley_grid=3, shapley_sample_budgets=(16, 64, 256), shapley_seeds=3, shapley_fine_permutations=8,
        concept_reference_images=300, concept_train_images=400, concept_truth_images=48,
        float64_images=2, synthesis_steps=100, synthesis_side=112,
    ),
    "imagenet": Budget(
        family="VGG-16, ImageNet",
        occlusion_window=4, occlusion_stride=8, meaningful_iterations=30, lime_samples=64,
        ig_steps=16, ig_images=2,
        smoothgrad_ts=(1, 4, 16), smoothgrad_reference=32, smoothgrad_images=2,
        bias_share_images=4, rule_images=4, gradcam_pairs=4,
        eval_images=2, eval_few=1, robustness_copies=3, flip_steps=4, heldout_images=2,
        ranking_flip_steps=4,
        shapley_grid=2, shapley_sample_budgets=(16, 32), shapley_seeds=1, shapley_fine_permutations=2,
        concept_reference_images=32, concept_train_images=32, concept_truth_images=1,
        float64_images=1, synthesis_steps=40, synthesis_side=112,
    ),
}
"""The budget of each model family (``ModelSpec.dataset``)."""


def budget(model: nn.Module, **overrides: int | tuple[int, ...]) -> Budget:
    """The :class:`Budget` for ``model``'s family, with ``overrides`` replacing fields.

    >>> import xaikit as xk
    >>> xk.budget(xk.load_model("vgg16-shapes")).lime_samples
    256
    """
    spec = model_spec(model)
    if spec.dataset not in BUDGETS:
        raise ValueError(f"no budget for model family {spec.dataset!r}; known: {sorted(BUDGETS)}")
    names = {f.name for f in fields(Budget)} - {"family"}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown budget setting(s) {unknown}; known: {sorted(names)}")
    return dataclasses.replace(BUDGETS[spec.dataset], **overrides)

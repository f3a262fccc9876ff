"""Every attribution method of :func:`xaikit.explain`, one module per family.

Importing this package registers the methods (:mod:`xaikit.methods._registry`):
:mod:`~xaikit.methods.gradients` (gradient, Gradient x Input, Integrated Gradients, SmoothGrad,
Deconvnet, Guided Backprop), :mod:`~xaikit.methods.perturbation` (occlusion, LIME, meaningful
perturbation), :mod:`~xaikit.methods.gradcam` (Grad-CAM, Guided Grad-CAM),
:mod:`~xaikit.methods.deeplift` (DeepLIFT; the hand-written walk in
:mod:`~xaikit.methods.deeplift_scratch`), :mod:`~xaikit.methods.lrp` (LRP, with
:mod:`~xaikit.methods.lrp_rules` and :mod:`~xaikit.methods.lrp_composites`; the teaching version
in :mod:`~xaikit.methods.lrp_scratch`), :mod:`~xaikit.methods.crp` (Concept Relevance
Propagation: LRP masked at a layer's channels), :mod:`~xaikit.methods.shapley` (exact and sampled
Shapley values, KernelSHAP, DeepSHAP) and :mod:`~xaikit.methods.controls` (the random,
uniform and centre controls of the evaluation notebooks).
"""
from . import controls, crp, deeplift, gradcam, gradients, lrp, perturbation, shapley  # noqa: F401
from ._registry import MethodInfo, list_methods, method_info, register, run_method

__all__ = ["MethodInfo", "list_methods", "method_info", "register", "run_method"]

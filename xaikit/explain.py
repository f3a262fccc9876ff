"""``xk.explain``: one entry point for every attribution method of the workbook.

Methods register themselves by name (``@register("gradient")``), in the style of zennit's
composite registry; :func:`explain` validates the input once, normalises the target to a
``(N,)`` long tensor and dispatches (:mod:`xaikit.methods._registry`). One cached forward pass
(:func:`xaikit._checks.trace`) reads the number of logits from the model itself. Propagation
methods (LRP, DeepLIFT, Deconvnet, Guided Backprop, Guided Grad-CAM) also get their leaf layers
checked, and a model that calls one module object twice in ``forward``, or computes anything
outside its modules, is rejected (:func:`xaikit._checks.check_propagation`). Each module of
:mod:`xaikit.methods` documents its paper and the notebook that teaches it.

Conventions: relevance is in units of the explained logit; the result is a
tensor shaped like ``x``; stochastic methods take ``seed`` and leave the global RNG alone.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import methods  # noqa: F401  (importing the method modules registers them)
from ._checks import Target, prepare
from .methods._registry import _checked_method, list_methods, run_method

__all__ = ["explain", "list_methods"]


def explain(model: nn.Module, x: torch.Tensor, target: Target, method: str,
            **options: Any) -> torch.Tensor:
    """Attribution of ``model``'s logit ``target`` to the input ``x``.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier in eval mode (e.g. from :func:`xaikit.load_model`), float32 or float64; a
        BatchNorm or Dropout layer in training mode is refused (call ``model.eval()``).
    x : torch.Tensor
        ``(N, C, H, W)`` float input, as returned by :func:`xaikit.preprocess`.
    target : int, sequence of int or 1-D tensor
        The explained class, one for all or one per sample.
    method : str
        One of :func:`list_methods`.
    **options
        Method options (see each method's docstring); an unknown option is a TypeError.

    Returns
    -------
    torch.Tensor
        ``attr`` shaped like ``x``, in units of the explained logit where the method conserves.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    _checked_method(method, options)  # before the input, so a typo is reported first
    t = prepare(model, x, target)
    return run_method(model, x, t, method, options)

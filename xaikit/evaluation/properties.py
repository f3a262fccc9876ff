"""Properties of one explanation: conservation (per layer for LRP) and positivity.

    conservation   |sum_i R_i - f_c(x)| / |f_c(x)|     (relative error; 0 = conservative)
    positivity     sum_i max(-R_i, 0) / sum_i |R_i|    (share of negative relevance; 0 = all >= 0)

Relevance is in units of the explained logit (the workbook's convention), so a conservative method sums
to ``f_c(x)``; IG and DeepLIFT conserve ``f_c(x) - f_c(baseline)`` (pass ``baseline``).
Hand-written: Quantus's ``Completeness`` returns a bool from an exact float ``==`` (no float
explanation ever passes), compares with ``f(x) - f(x')`` where ``x'`` is its ``"black"`` baseline
(the image minimum), and Quantus has no positivity metric.

References
----------
Bach et al. (2015), PLOS ONE; Montavon, Samek, Müller (2018), "Methods for interpreting and
understanding deep neural networks", Digital Signal Processing 73 (conservation, positivity).

Introduced in notebook ``11_evaluation_properties``.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from .._checks import prepare
from ..explain import explain
from ._inputs import as_heatmap

__all__ = ["conservation", "explained_logit", "lrp_layer_sums", "positivity"]


def explained_logit(model: nn.Module, x: torch.Tensor,
                    target: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
    """``f_c(x)``: the target logit per sample, ``(N,)`` (no gradient)."""
    t = prepare(model, x, target)
    with torch.no_grad():
        return model(x.detach()).gather(1, t.view(-1, 1))[:, 0]


def conservation(model: nn.Module, x: torch.Tensor, attr: torch.Tensor,
                 target: int | Sequence[int] | torch.Tensor, *,
                 baseline: torch.Tensor | None = None) -> torch.Tensor:
    """Relative conservation error ``|sum_i R_i - f_c(x)| / |f_c(x)|``, ``(N,)``.

    Parameters
    ----------
    model, x, target
        Classifier, ``(N, C, H, W)`` input and explained class(es).
    attr : torch.Tensor
        ``(N, C, H, W)`` (or ``(N, H, W)``) relevance in logit units.
    baseline : torch.Tensor, optional
        Reference input broadcastable to ``x``: then the target is ``f_c(x) - f_c(baseline)``
        (what IG and DeepLIFT conserve), still divided by ``|f_c(x)|``.

    Returns
    -------
    torch.Tensor
        ``(N,)``, **lower is better** (0: the relevance sums exactly to the logit). ``inf``
        where the logit is exactly 0.

    References
    ----------
    Bach et al. (2015); Montavon et al. (2018), Definition 3. Introduced in notebook
    ``11_evaluation_properties``.
    """
    total = as_heatmap(attr, x).flatten(1).sum(1)
    logit = explained_logit(model, x, target)
    goal = logit
    if baseline is not None:
        if not isinstance(baseline, torch.Tensor):
            raise TypeError("baseline must be a torch.Tensor broadcastable to x")
        ref = explained_logit(model, baseline.to(x).expand_as(x), target)
        goal = logit - ref
    return (total.to(logit) - goal).abs() / logit.abs()


def positivity(attr: torch.Tensor) -> torch.Tensor:
    """Share of negative relevance ``sum_i max(-R_i, 0) / sum_i |R_i|``, ``(N,)`` in [0, 1].

    Computed on the heatmap (the channel sum), pixel by pixel.

    Parameters
    ----------
    attr : torch.Tensor
        ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``.

    Returns
    -------
    torch.Tensor
        ``(N,)``: 0 when every pixel's relevance is >= 0 (the positivity property holds), 1 when
        all is negative; **lower is better**. NaN for an all-zero map (undefined).

    References
    ----------
    Montavon, Samek, Müller (2018), Digital Signal Processing 73, Definition 4 (positivity).
    Introduced in notebook ``11_evaluation_properties``.
    """
    heat = as_heatmap(attr).flatten(1)
    absolute = heat.abs().sum(1)
    share = heat.clamp(max=0).abs().sum(1) / absolute
    return torch.where(absolute > 0, share, torch.full_like(share, float("nan")))


def lrp_layer_sums(model: nn.Module, x: torch.Tensor,
                   target: int | Sequence[int] | torch.Tensor,
                   **lrp_options: Any) -> dict[str, torch.Tensor]:
    """Total LRP relevance entering each Linear/Conv2d layer, from the output to the input.

    Computed in float64 on a copy of the model (the caller's model is untouched), so that the
    printed ratios do not depend on the machine.

    Runs ``xk.explain(model, x, target, "lrp", **lrp_options)`` unchanged, with forward
    pre-hooks that put a gradient hook on each layer's input: in :mod:`xaikit.methods.lrp` the quantity
    flowing backwards *is* the relevance, so the hook sees the relevance at that point.

    Parameters
    ----------
    model, x, target
        As for :func:`xaikit.explain`.
    **lrp_options
        ``rule``, ``composite``, ``epsilon``, ``gamma``, ``bias``, ... of the LRP method.

    Returns
    -------
    dict of str to torch.Tensor
        ``{"output": f_c(x), "<layer>": sum of the relevance at the layer's input, ...,
        "input": sum of the returned attribution}``, each ``(N,)`` float64, ordered from the output
        layer down. Rules 0/epsilon/gamma with ``bias=True`` let biases absorb relevance, so
        the sums drift; with ``bias=False`` LRP-0 keeps them equal (conservation per layer).

    References
    ----------
    Bach et al. (2015), eq. (2) (layer-wise conservation). Introduced in notebook
    ``11_evaluation_properties``.
    """
    t = prepare(model, x, target)
    # float64 on a copy: the ratios of these sums are ill-conditioned where a layer's
    # denominators come close to zero; in float32 they change with the thread count and the
    # CPU's kernels (0.497 vs 0.500 at features.2 of vgg16-shapes), in float64 by < 1e-4.
    model, x = copy.deepcopy(model).double(), x.detach().double()
    sums: dict[str, torch.Tensor] = {}

    def pre_hook(name: str):
        def hook(module, inputs):
            a = inputs[0]
            if a.requires_grad:  # the LRP pass (the layer check runs under no_grad)
                a.register_hook(lambda grad: sums.__setitem__(name, grad.flatten(1).sum(1)))
        return hook

    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (nn.Linear, nn.Conv2d))]
    handles = [m.register_forward_pre_hook(pre_hook(name)) for name, m in layers]
    try:
        attr = explain(model, x, t, "lrp", **lrp_options)
    finally:
        for handle in handles:
            handle.remove()
    result = {"output": explained_logit(model, x, t)}
    for name, _ in reversed(layers):
        if name not in sums:
            raise ValueError(f"layer {name} received no relevance (not used in forward?)")
        result[name] = sums[name].detach()
    result["input"] = attr.flatten(1).sum(1)
    return result

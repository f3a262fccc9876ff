"""Concept Relevance Propagation as ``xk.explain(model, x, target, "crp", layer=..., channels=...)``.

CRP (Achtibat et al. 2023) asks which pixels are relevant *through* a set of channels
("concepts") of one layer. It is LRP (:mod:`xaikit.methods.lrp`) with the relevance at that
layer's output masked: with the condition ``theta = {y} u C`` (the explained logit ``y`` and the
channels ``C`` of layer ``l``), relevance is initialised as in LRP, ``R_j^(L)(theta) =
delta_jy f_y(x)``, and propagated by each layer's rule (written here for LRP-0),

    R_i^(k-1)(theta) = sum_j  z_ij / z_j  R_j^(k)(theta)                      (every layer k),
    R_j^(l)(theta)   = 1[c(j) in C]  R_j^(l)                                   (output of layer l),

where ``c(j)`` is the channel of output neuron ``j`` (dimension 1 of ``(N, K, ...)``) and
``z_ij / z_j`` is the layer's LRP rule (epsilon, gamma, z^B, ... as in :func:`~.lrp.lrp`). The
rules are linear in the relevance they redistribute, so the CRP maps of a partition
``C_1, ..., C_m`` of the layer's channels add up to the LRP map: ``sum_m R(C_m) = R_LRP``
(tests/test_crp.py checks it, and a channel mask against zennit).

Here the condition is one forward hook: after :mod:`.lrp`'s hooks have replaced the layer's
output by the node whose backward is the layer's rule, a tensor hook on that output multiplies
the incoming relevance by the channel mask, so it is masked *before* the layer's rule
redistributes it (zennit-crp's ``CondAttribution`` masks the gradient at the layer output the
same way; zennit-crp itself pins torch < 2 and is not used).

Introduced in notebook ``Concepts`` (planned).

References
----------
Achtibat, Dreyer, Eisenbraun, Bosse, Wiegand, Samek, Lapuschkin (2023), "From attribution maps
to human-understandable explanations through Concept Relevance Propagation", Nature Machine
Intelligence 5, 1006-1019.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from .._checks import check_int
from ._registry import register
from .lrp import _hooked, propagate

__all__ = ["crp"]


def _check_layer(model: nn.Module, layer: object) -> str:
    """``layer`` if it names a submodule of ``model`` (TypeError / ValueError otherwise)."""
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a module name such as 'features.28', got {layer!r}")
    if layer == "":
        raise ValueError("layer must name a submodule of the model (such as 'features.28'), "
                         "not the model itself ('')")
    names = dict(model.named_modules())
    if layer not in names:
        candidates = [n for n, m in names.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
        raise ValueError(f"no layer named {layer!r}; the model's Conv2d and Linear layers: "
                         f"{', '.join(candidates) or '-'}")
    return layer


def _check_channels(channels: object) -> list[int]:
    """``channels`` (an int, or a non-empty sequence of distinct ints >= 0) as a list."""
    if isinstance(channels, Tensor):
        if channels.is_floating_point() or channels.is_complex() or channels.dtype == torch.bool:
            raise TypeError(f"channels must hold integers, got a tensor of dtype {channels.dtype}")
        if channels.dim() > 1:
            raise ValueError(f"channels must be an int or 1-D, got shape {tuple(channels.shape)}")
        channels = channels.tolist()
    if isinstance(channels, (str, bytes)):
        raise TypeError(f"channels must be an int or a sequence of ints, got {channels!r}")
    if not isinstance(channels, Iterable):
        if not isinstance(channels, numbers.Integral) or isinstance(channels, bool):
            raise TypeError(f"channels must be an int or a sequence of ints, got {channels!r}")
        return [check_int("channels", channels, low=0)]
    values = [check_int(f"channels[{i}]", c, low=0) for i, c in enumerate(channels)]
    if not values:
        raise ValueError("channels must name at least one channel, got an empty sequence")
    repeated = sorted({c for c in values if values.count(c) > 1})
    if repeated:
        raise ValueError(f"channels must be distinct, got {repeated} more than once")
    return values


class _ChannelMask:
    """Forward hook on the conditioned layer: a tensor hook on its output multiplies the
    relevance flowing back into it by the 0/1 mask of ``channels`` along dimension 1."""

    def __init__(self, name: str, channels: list[int]) -> None:
        self.name, self.channels, self.calls = name, channels, 0

    def __call__(self, module: nn.Module, inputs: tuple, output: object) -> None:
        self.calls += 1
        if self.calls > 1:
            raise ValueError(f"layer {self.name} is called more than once in forward; CRP "
                             "conditions on the one output of a layer")
        if not isinstance(output, Tensor) or output.dim() < 2:
            got = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise ValueError(f"layer {self.name} must output (N, K, ...) with K channels along "
                             f"dimension 1, got {got}")
        k = output.shape[1]
        outside = [c for c in self.channels if c >= k]
        if outside:
            raise ValueError(f"channels {outside} out of range for layer {self.name}, whose "
                             f"output {tuple(output.shape)} has {k} channels")
        mask = torch.zeros(k, dtype=output.dtype, device=output.device)
        mask[self.channels] = 1
        mask = mask.view(1, k, *[1] * (output.dim() - 2))
        if output.requires_grad:
            output.register_hook(lambda relevance: relevance * mask)


@register("crp", propagation=True)
def crp(model: nn.Module, x: Tensor, target: Tensor, *, layer: str,
        channels: int | Sequence[int], rule: str | None = None,
        composite: str | Mapping[str, str] | None = None, epsilon: float = 0.25,
        gamma: float = 0.25, low: Tensor | float | None = None,
        high: Tensor | float | None = None, bias: bool = True,
        maxpool: str = "winner") -> Tensor:
    """Concept Relevance Propagation (Achtibat et al. 2023): LRP through chosen channels.

    The LRP backward pass of :func:`xaikit.methods.lrp.lrp` with the relevance at the output
    of ``layer`` kept on ``channels`` only (zero on the other channels) before the layer's rule
    redistributes it. With the condition ``theta = {y} u C`` (logit ``y``, channels ``C``):

        R_i^(k-1)(theta) = sum_j  z_ij / z_j  R_j^(k)(theta),   R_j^(L)(theta) = delta_jy f_y(x),
        R_j^(l)(theta)   = 1[c(j) in C]  R_j^(l)                 at the output of ``layer``,

    with ``c(j)`` the channel (dimension 1) of neuron ``j`` and ``z_ij / z_j`` standing for
    each layer's LRP rule. Linear in ``R``: the maps of a partition of the layer's channels sum
    to the LRP map, and ``channels`` = all channels gives the LRP map itself.

    Parameters
    ----------
    model : torch.nn.Module
        As for :func:`~xaikit.methods.lrp.lrp`: Linear, Conv2d, ReLU, pooling, Flatten,
        Dropout, Identity and Conv2d-following BatchNorm2d layers, in eval mode.
    x : Tensor
        ``(N, C, H, W)`` (or ``(N, D)``) float input.
    target : Tensor
        ``(N,)`` long, the explained logit per sample.
    layer : str
        Name of the conditioned module (``"features.28"``), whose output is ``(N, K, ...)``
        with ``K`` channels along dimension 1 (a Conv2d, its ReLU or pooling; a Linear's
        ``(N, K)`` neurons). Naming a BatchNorm2d conditions the folded convolution's output.
    channels : int or sequence of int
        The concept: distinct channel indices in ``[0, K)``, at least one.
    rule, composite, epsilon, gamma, low, high, bias, maxpool
        The LRP options of :func:`~xaikit.methods.lrp.lrp`, with the same defaults
        (``composite="vgg16"`` when ``rule`` is None).

    Returns
    -------
    Tensor
        The conditional relevance ``R^(0)(theta)`` shaped like ``x``, in units of the
        explained logit.

    References
    ----------
    Achtibat et al. (2023), "From attribution maps to human-understandable explanations
    through Concept Relevance Propagation", Nature Machine Intelligence 5, 1006-1019.

    Introduced in notebook ``Concepts`` (planned).
    """
    name = _check_layer(model, layer)
    wanted = _check_channels(channels)
    mask = _ChannelMask(name, wanted)
    # LRP's pass, with the mask hooked on the layer after LRP's own hooks (hooks run in order)
    attr = propagate(model, x, target, rule=rule, composite=composite, epsilon=epsilon,
                     gamma=gamma, low=low, high=high, bias=bias, maxpool=maxpool,
                     extra=lambda net: _hooked(net.get_submodule(name), mask))
    if mask.calls == 0:
        raise ValueError(f"layer {name} is not called in the model's forward pass, so CRP "
                         "cannot condition on its channels")
    return attr

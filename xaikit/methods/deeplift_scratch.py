"""DeepLIFT by hand: the RevealCancel rule (and Rescale, as its cross-check).

captum implements only the Rescale rule, so this module walks the layers itself, in the paper's
notation. Every neuron carries its difference from the reference ``dx = x - x0`` split into a
positive and a negative part ``dx = dx+ + dx-``; multipliers ``m = C / dx`` flow backwards and
obey the chain rule. Per layer:

* **Linear rule** (``Linear``, ``Conv2d``, ``BatchNorm2d`` in eval mode and the positive maps
  ``AvgPool2d``, ``AdaptiveAvgPool2d``, ``Flatten``, ``Dropout``, ``Identity``): with the input
  difference ``dx_i``, ``dy+ = sum_i 1{w_i dx_i > 0} w_i dx_i`` and ``dy- = sum_i 1{w_i dx_i < 0}
  w_i dx_i`` (the bias cancels in the difference); backwards ``m_i = sum_j 1{w_ji dx_i > 0} w_ji
  m_j+ + 1{w_ji dx_i < 0} w_ji m_j-`` and, where ``dx_i = 0``, ``m_i = 0.5 sum_j w_ji (m_j+ +
  m_j-)`` (the 0.5 w_i rule, so cancelling parts upstream still receive importance).
* **RevealCancel** (``ReLU``; also ``Sigmoid`` and ``Tanh``): ``dy+ = 0.5 (f(x0 + dx+) - f(x0))
  + 0.5 (f(x0 + dx- + dx+) - f(x0 + dx-))``, ``dy-`` symmetric (the Shapley values of ``dx+`` and
  ``dx-``), multipliers ``m+ = dy+ / dx+`` and ``m- = dy- / dx-``.
* **Rescale**: ``m = dy / dx`` for both parts.
* **Max-pooling**: the exact "cross-max" rule of captum 0.9 (``captum.attr._core.deep_lift.
  maxpool``): per window, ``max(y, y0) - y0 >= 0`` goes to the input that wins at ``x`` and
  ``y - max(y, y0) <= 0`` to the input that wins at the reference, each divided by that
  input's ``dx``. The window's contributions sum to ``y - y0`` exactly. The DeepLIFT reference
  implementation instead routes the multiplier to the winner at ``x`` like the gradient
  (``MaxPoolDeepLiftMode.gradient``), which misses ``y - y0`` whenever the reference's winner
  sits elsewhere; we keep summation-to-delta. The pooled difference is split by its sign.

Where a denominator ``|dx| < 1e-10`` (captum's ``eps``) the multiplier falls back to the
derivative: ``f'(x)`` for Rescale (as captum), the limit ``0.5 (f'(x0) + f'(x0 + dx-/+))`` of the
ratio for RevealCancel; max-pooling routes like the gradient there.

Hand-written because captum has no RevealCancel; Rescale is here only
so that the two rules share one code path and the tests can compare it with captum.

References
----------
Shrikumar, Greenside, Kundaje (2017), "Learning Important Features Through Propagating
Activation Differences", ICML (sections 3.5-3.6).

Introduced in notebook 06_deeplift.
"""
from __future__ import annotations

from typing import Callable, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import AVERAGE_POOLINGS, BATCHNORMS, IDENTITIES, LINEAR_LAYERS, sequential_layers

__all__ = ["EPS", "deeplift_by_hand", "linear_split"]

EPS = 1e-10
"""Below this ``|dx|`` a multiplier falls back to the derivative (captum's DeepLift ``eps``)."""

ELEMENTWISE: dict[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: F.relu, nn.Sigmoid: torch.sigmoid, nn.Tanh: torch.tanh,
}
"""Nonlinearities with DeepLIFT's Rescale/RevealCancel rules: the ReLU of
:data:`xaikit.layers.ACTIVATIONS`, and Sigmoid and Tanh for the toy networks of notebook 06."""
LINEAR = LINEAR_LAYERS + BATCHNORMS + AVERAGE_POOLINGS + IDENTITIES
"""Affine layers (DeepLIFT's linear rule), from the groups of :mod:`xaikit.layers`."""

Map = Callable[[torch.Tensor], torch.Tensor]


def _supported_layers(model: nn.Module) -> list[nn.Module]:
    """:func:`xaikit.layers.sequential_layers`, each checked against the rules written here."""
    layers = sequential_layers(model)
    for layer in layers:
        if not (isinstance(layer, LINEAR + (nn.MaxPool2d,)) or type(layer) in ELEMENTWISE):
            raise ValueError(f"DeepLIFT by hand does not support layer {type(layer).__name__}")
    return layers


def _linear_maps(layer: nn.Module) -> tuple[Map, Map | None]:
    """``(L+, L-)``: the layer without bias, keeping only its positive / negative weights."""
    if isinstance(layer, nn.Linear):
        w = layer.weight.detach()
        return (lambda v: F.linear(v, w.clamp(min=0))), (lambda v: F.linear(v, w.clamp(max=0)))
    if isinstance(layer, nn.Conv2d):
        if layer.padding_mode != "zeros":
            raise ValueError(f"Conv2d with padding_mode={layer.padding_mode!r} is not linear")
        w = layer.weight.detach()

        def conv(weight: torch.Tensor) -> Map:
            return lambda v: F.conv2d(v, weight, None, layer.stride, layer.padding,
                                      layer.dilation, layer.groups)

        return conv(w.clamp(min=0)), conv(w.clamp(max=0))
    if isinstance(layer, nn.BatchNorm2d):
        if layer.running_var is None:
            raise ValueError("BatchNorm2d without running statistics is not a fixed linear map")
        scale = torch.rsqrt(layer.running_var + layer.eps)
        scale = (scale * layer.weight.detach() if layer.affine else scale).view(-1, 1, 1)
        return (lambda v: v * scale.clamp(min=0)), (lambda v: v * scale.clamp(max=0))
    if isinstance(layer, (nn.Dropout, nn.Identity)):
        return (lambda v: v), None                      # eval mode: the identity
    return layer, None                                  # average pools, Flatten: weights >= 0


def linear_split(layer: nn.Module, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive and negative parts ``(dy+, dy-)`` of a linear layer's output difference.

    ``dy+ = sum_i 1{w_i dx_i > 0} w_i dx_i`` and ``dy- = sum_i 1{w_i dx_i < 0} w_i dx_i``;
    ``dy+ + dy- = layer(x) - layer(x0)`` (the bias cancels).

    Parameters
    ----------
    layer : nn.Module
        A linear layer (see the module docstring), in eval mode.
    delta : torch.Tensor
        ``(N, ...)`` input difference ``dx = x - x0``.

    Returns
    -------
    tuple of torch.Tensor
        ``(dy+, dy-)``, each shaped like the layer's output.
    """
    pos, neg = _linear_maps(layer)
    both = torch.cat([delta.clamp(min=0), delta.clamp(max=0)])
    p_of_pos, p_of_neg = pos(both).chunk(2)
    if neg is None:
        return p_of_pos, p_of_neg
    n_of_pos, n_of_neg = neg(both).chunk(2)
    return p_of_pos + n_of_neg, p_of_neg + n_of_pos


def _transpose(fn: Map, like: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``L^T v`` of the linear map ``fn`` (a vector-Jacobian product at ``like``)."""
    z = like.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = fn(z)
    return torch.autograd.grad(out, z, v)[0]


def _derivative(f: Map, z: torch.Tensor) -> torch.Tensor:
    """Elementwise derivative ``f'(z)`` (torch's convention ReLU'(0) = 0)."""
    return _transpose(f, z, torch.ones_like(z))


def _ratio(num: torch.Tensor, den: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    small = den.abs() < EPS
    return torch.where(small, fallback, num / torch.where(small, torch.ones_like(den), den))


class _LinearStep:
    """Linear rule with the positive/negative split."""

    def __init__(self, layer: nn.Module, a: torch.Tensor, a0: torch.Tensor) -> None:
        self.pos, self.neg = _linear_maps(layer)
        self.delta, self.like = a - a0, torch.cat([a, a])
        self.out, self.out0 = layer(a), layer(a0)
        self.p_out, self.n_out = linear_split(layer, self.delta)

    def backward(self, mp: torch.Tensor, mn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos_t = _transpose(self.pos, self.like, torch.cat([mp, mn])).chunk(2)   # W+^T m+, W+^T m-
        neg_t = (_transpose(self.neg, self.like, torch.cat([mp, mn])).chunk(2)
                 if self.neg is not None else (torch.zeros_like(pos_t[0]),) * 2)
        from_pos = pos_t[0] + neg_t[1]                  # dx_i > 0: w > 0 feeds dy+, w < 0 dy-
        from_neg = neg_t[0] + pos_t[1]                  # dx_i < 0: the other way round
        d = self.delta
        m = torch.where(d > 0, from_pos, torch.where(d < 0, from_neg, 0.5 * (from_pos + from_neg)))
        return m, m


class _ElementwiseStep:
    """Rescale or RevealCancel for an elementwise nonlinearity ``y = f(x)``."""

    def __init__(self, layer: nn.Module, a: torch.Tensor, a0: torch.Tensor, p: torch.Tensor,
                 n: torch.Tensor, rule: str) -> None:
        f = ELEMENTWISE[type(layer)]
        self.out, self.out0 = f(a), f(a0)
        if rule == "rescale":
            m = _ratio(self.out - self.out0, a - a0, _derivative(f, a))
            self.m_pos = self.m_neg = m
            self.p_out, self.n_out = m * p, m * n
            return
        y_p = 0.5 * (f(a0 + p) - self.out0) + 0.5 * (self.out - f(a0 + n))
        y_n = 0.5 * (f(a0 + n) - self.out0) + 0.5 * (self.out - f(a0 + p))
        d0 = _derivative(f, a0)
        self.m_pos = _ratio(y_p, p, 0.5 * (d0 + _derivative(f, a0 + n)))
        self.m_neg = _ratio(y_n, n, 0.5 * (d0 + _derivative(f, a0 + p)))
        self.p_out, self.n_out = y_p, y_n

    def backward(self, mp: torch.Tensor, mn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.m_pos * mp, self.m_neg * mn


class _MaxPoolStep:
    """Exact cross-max rule (as captum 0.9): see the module docstring."""

    def __init__(self, layer: nn.MaxPool2d, a: torch.Tensor, a0: torch.Tensor) -> None:
        if layer.return_indices:
            raise ValueError("MaxPool2d(return_indices=True) is not supported")
        self.layer, self.a, self.a0 = layer, a, a0
        self.out, self.out0 = layer(a), layer(a0)
        dy = self.out - self.out0
        self.p_out, self.n_out = dy.clamp(min=0), dy.clamp(max=0)

    def backward(self, mp: torch.Tensor, mn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dy = self.out - self.out0
        m = torch.where(dy > 0, mp, torch.where(dy < 0, mn, 0.5 * (mp + mn)))
        top = torch.maximum(self.out, self.out0)
        routed = (_transpose(self.layer, self.a, m * (top - self.out0))
                  + _transpose(self.layer, self.a0, m * (self.out - top)))
        m_in = _ratio(routed, self.a - self.a0, _transpose(self.layer, self.a, m))
        return m_in, m_in


_Step = Union[_LinearStep, _ElementwiseStep, _MaxPoolStep]


def _forward_step(layer: nn.Module, a: torch.Tensor, a0: torch.Tensor, p: torch.Tensor,
                  n: torch.Tensor, rule: str) -> _Step:
    """One layer forward at ``x`` and ``x0``, keeping what its backward rule needs."""
    if type(layer) in ELEMENTWISE:
        return _ElementwiseStep(layer, a, a0, p, n, rule)
    if isinstance(layer, nn.MaxPool2d):
        return _MaxPoolStep(layer, a, a0)
    return _LinearStep(layer, a, a0)


def deeplift_by_hand(model: nn.Module, x: torch.Tensor, x0: torch.Tensor, target: torch.Tensor,
                     rule: str = "reveal_cancel") -> torch.Tensor:
    """DeepLIFT contributions by an explicit walk over the layers.

    Parameters
    ----------
    model : nn.Module
        ``nn.Sequential`` or torchvision ``VGG`` in eval mode (dropout off, BatchNorm running
        statistics), built from the layers of the module docstring.
    x, x0 : torch.Tensor
        ``(N, ...)`` input and reference of the same shape.
    target : torch.Tensor
        ``(N,)`` long tensor, the explained output per sample.
    rule : {"reveal_cancel", "rescale"}
        Rule for the elementwise nonlinearities.

    Returns
    -------
    torch.Tensor
        Contributions ``C`` shaped like ``x``; ``C[k].sum() = f(x)[k, t_k] - f(x0)[k, t_k]``.
    """
    if rule not in ("reveal_cancel", "rescale"):
        raise ValueError(f"unknown DeepLIFT rule {rule!r}; choose 'rescale' or 'reveal_cancel'")
    a, a0 = x.detach(), x0.detach().expand_as(x)
    p, n = (a - a0).clamp(min=0), (a - a0).clamp(max=0)
    steps: list[_Step] = []
    with torch.no_grad():
        for layer in _supported_layers(model):
            steps.append(_forward_step(layer, a, a0, p, n, rule))
            a, a0, p, n = steps[-1].out, steps[-1].out0, steps[-1].p_out, steps[-1].n_out
    if a.dim() != 2:
        raise ValueError(f"the model's output must be (N, classes), got {tuple(a.shape)}")
    mp = mn = F.one_hot(target.long(), a.shape[1]).to(a.dtype)
    for step in reversed(steps):
        mp, mn = step.backward(mp, mn)
    delta = x.detach() - x0.detach()
    return mp * delta.clamp(min=0) + mn * delta.clamp(max=0)

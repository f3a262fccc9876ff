"""LRP propagation rules for one Linear or Conv2d layer, in closed form.

Each rule maps the relevance ``R`` of a layer's outputs to the relevance of its inputs, given
the input activations ``a`` and the layer's (unmodified) pre-activations ``z``. A rule is the
four steps of Montavon's tutorial written with explicit transposed operations::

    z = rho(layer).forward(a) + stabiliser    # step 1 (denominators)
    s = R / z                                 # step 2
    c = rho(layer).transpose(s)               # step 3 (the gradient, without autograd)
    R_in = a * c                              # step 4

:mod:`xaikit.methods.lrp` calls them from the backward pass of the model; :mod:`xaikit.methods.lrp_scratch`
is the slow teaching version. The rules follow zennit 0.5.1 term by term (``zennit.rules``),
which tests/test_lrp.py checks to float64 precision.

Introduced in notebook ``07_lrp_from_scratch``; rule choice in ``08_lrp_rules_vgg16``.

References
----------
Bach et al. 2015, "On pixel-wise explanations ... by layer-wise relevance propagation", PLOS ONE.
Montavon et al. 2017, "Explaining nonlinear classification decisions with deep Taylor
decomposition", Pattern Recognition. Montavon et al. 2019, "Layer-wise relevance propagation:
an overview", LNCS 11700. Andeol et al. 2021 (generalised gamma rule, as in zennit).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["KERNEL_TYPES", "RULES", "STABILIZER", "Kernel", "RuleOptions", "kernel",
           "stabilize"]

STABILIZER = 1e-9
"""Added (with the sign of ``z``) to every denominator so that ``R / z`` is defined (as the
tutorial's ``1e-9``; zennit's default is ``1e-6``)."""


def stabilize(z: Tensor, eps: float) -> Tensor:
    """``z + eps * sign(z)`` with ``sign(+0.0) = +1``, as zennit's ``Stabilizer``.

    Written with ``copysign``, several times faster on the CPU than zennit's
    ``(z == 0) + z.sign()``; it differs only on a negative zero ``-0.0`` (shifted to ``-eps``),
    whose relevance is zero anyway.
    """
    return z + torch.copysign(torch.tensor(eps, dtype=z.dtype, device=z.device), z)


@dataclass(frozen=True)
class RuleOptions:
    """Parameters shared by the rules.

    Attributes
    ----------
    epsilon : float
        Absolute LRP-epsilon stabiliser (zennit's convention).
    gamma : float
        LRP-gamma's weight on the positive parameters.
    bias : bool
        Whether biases enter numerators and denominators (rules 0, epsilon, gamma, alpha1beta0;
        flat, w2 and z^B never use the bias, as in their Deep Taylor derivations).
    low, high : Tensor or None
        z^B bounds broadcastable to the input ``x``, e.g. ``(1, 3, 1, 1)``.
    """

    epsilon: float = 0.25
    gamma: float = 0.25
    bias: bool = True
    low: Tensor | None = None
    high: Tensor | None = None


@dataclass(frozen=True)
class Kernel:
    """A Linear or Conv2d layer as a forward map and its transpose, with its parameters.

    ``forward(a, w, b)`` is the layer with parameters ``w, b``; ``transpose(s, w, like)`` is
    ``W^T s`` (the input-gradient of ``forward``) for an input shaped like ``like``;
    ``bias_shape`` broadcasts a bias over an output; ``stackable``: inputs and weights may be
    concatenated along dimension 1 to run several terms of a rule as one call.
    """

    weight: Tensor
    bias: Tensor | None
    forward: Callable[[Tensor, Tensor, Tensor | None], Tensor]
    transpose: Callable[[Tensor, Tensor, Tensor], Tensor]
    bias_shape: tuple[int, ...]
    stackable: bool = True

    def used_bias(self, options: RuleOptions) -> Tensor | None:
        """The bias if the rule should see it."""
        return self.bias if options.bias else None

    def without_bias(self, z: Tensor) -> Tensor:
        """``z - b``: the pre-activation with the bias kept out."""
        return z if self.bias is None else z - self.bias.view(self.bias_shape)


def _linear_kernel(module: nn.Linear) -> Kernel:
    if module.weight.dim() != 2:
        raise ValueError("unexpected Linear weight shape")
    return Kernel(module.weight, module.bias, F.linear, lambda s, w, like: s @ w, (-1,))


def _conv_kernel(module: nn.Conv2d) -> Kernel:
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        raise ValueError(f"LRP supports Conv2d with numeric zero padding only, got padding="
                         f"{module.padding!r}, padding_mode={module.padding_mode!r}")
    stride, padding, dilation, groups = (list(module.stride), list(module.padding),
                                         list(module.dilation), module.groups)

    def forward(a: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        return F.conv2d(a, w, b, stride, padding, dilation, groups)

    def transpose(s: Tensor, w: Tensor, like: Tensor) -> Tensor:
        # torch.nn.grad.conv2d_input without its copy of an expanded dummy input
        return torch.ops.aten.convolution_backward(
            s, like, w, None, stride, padding, dilation, False, [0, 0], groups,
            (True, False, False))[0]

    return Kernel(module.weight, module.bias, forward, transpose, (-1, 1, 1), groups == 1)


_KERNELS: dict[type[nn.Module], Callable[..., Kernel]] = {
    nn.Linear: _linear_kernel, nn.Conv2d: _conv_kernel}

KERNEL_TYPES: tuple[type[nn.Module], ...] = tuple(_KERNELS)
"""The layer types the rules apply to (:mod:`xaikit.methods.lrp` checks them against
:data:`xaikit.layers.LINEAR_LAYERS`)."""


def kernel(module: nn.Module) -> Kernel:
    """The :class:`Kernel` of a Linear or Conv2d module (ValueError for anything else)."""
    build = _KERNELS.get(type(module))
    if build is None:
        raise ValueError(f"LRP rules apply to Linear and Conv2d layers, not {type(module).__name__}")
    return build(module)


def _eps(value: float, like: Tensor) -> Tensor:
    return torch.tensor(value, dtype=like.dtype, device=like.device)


def _ratio(R: Tensor, z: Tensor, eps: float, out: Tensor | None = None) -> Tensor:
    """``R / stabilize(z, eps)`` in one buffer (``out``, shaped like ``z`` and not ``z``
    itself, or a new one).

    The same values as ``R / stabilize(z, eps)`` (``copysign(eps, z) + z`` is ``z +
    copysign(eps, z)``) with one allocation instead of three: on the CPU, first touching a
    fresh activation-sized buffer costs about twice the arithmetic on it.
    """
    den = torch.copysign(_eps(eps, z), z, out=out)
    den.add_(z)
    return torch.div(R, den, out=den)


def _all_zero(t: Tensor) -> bool:
    """``not t.any()`` for a float tensor (NaN counts as nonzero), reading ``t`` once with
    aminmax, several times faster than ``any()`` on the CPU."""
    if t.numel() == 0:
        return True
    low, high = torch.aminmax(t)
    return bool((low == 0) & (high == 0))


def _one_term(k: Kernel, a: Tensor, w: Tensor, b: Tensor | None, R: Tensor,
              out: Tensor | None = None) -> Tensor:
    """``a * W^T (R / stabilize(W a + b))``: one modified forward, one transpose."""
    s = _ratio(R, k.forward(a, w, b), STABILIZER, out)
    return k.transpose(s, w, a).mul_(a)  # the transpose is a fresh tensor


def _terms(k: Kernel, inputs: list[Tensor], weights: list[Tensor], b: Tensor | None,
           R: Tensor) -> Tensor:
    """``R_in = sum_t inputs_t * W_t^T s`` with ``s = R / (sum_t W_t inputs_t + b)``.

    The terms of a rule (the positive and negative parts of gamma or z+) run as one stacked
    call of the layer when the kernel allows it.
    """
    if len(inputs) == 1:
        return _one_term(k, inputs[0], weights[0], b, R)
    if not k.stackable:
        den = k.forward(inputs[0], weights[0], b)
        for x, w in zip(inputs[1:], weights[1:]):
            den.add_(k.forward(x, w, None))
        s = _ratio(R, den, STABILIZER)
        return sum(x * k.transpose(s, w, x) for x, w in zip(inputs, weights))
    x, w = torch.cat(inputs, dim=1), torch.cat(weights, dim=1)
    s = _ratio(R, k.forward(x, w, b), STABILIZER)
    return sum(k.transpose(s, w, x).mul_(x).chunk(len(inputs), dim=1))


def _signed_terms(k: Kernel, a: Tensor, R: Tensor, w_pos_in: Tensor,
                  w_neg_in: Callable[[], Tensor], b: Tensor | None,
                  out: Tensor | None = None) -> Tensor:
    """Positive inputs weighted by ``w_pos_in`` (with bias ``b``), negative ones by
    ``w_neg_in()`` (built only when some input is negative). ``out``: a scratch buffer shaped
    like the layer's output."""
    if bool(a.min() >= 0):  # after a ReLU: one term
        return _one_term(k, a, w_pos_in, b, R, out)
    return _terms(k, [a.clamp(min=0), a.clamp(max=0)], [w_pos_in, w_neg_in()], b, R)


def rule_epsilon(k: Kernel, a: Tensor, z: Tensor, R: Tensor, o: RuleOptions,
                 eps: float | None = None) -> Tensor:
    """LRP-epsilon (Bach et al. 2015; Montavon et al. 2019, eq. LRP-eps).

    ``R_i = sum_j a_i w_ij / (z_j + eps sign(z_j)) R_j`` with ``z_j = sum_i a_i w_ij + b_j``.

    Parameters
    ----------
    k : Kernel
    a : Tensor
        ``(N, *in)`` input activations.
    z : Tensor
        ``(N, *out)`` the layer's output (with bias).
    R : Tensor
        ``(N, *out)`` output relevance.
    o : RuleOptions
    eps : float, optional
        Overrides ``o.epsilon`` (LRP-0 passes :data:`STABILIZER`).

    Returns
    -------
    Tensor
        ``(N, *in)`` input relevance.
    """
    denominator = z if o.bias else k.without_bias(z)
    s = _ratio(R, denominator, o.epsilon if eps is None else eps)
    return k.transpose(s, k.weight, a).mul_(a)


def rule_zero(k: Kernel, a: Tensor, z: Tensor, R: Tensor, o: RuleOptions) -> Tensor:
    """LRP-0 (Bach et al. 2015): LRP-epsilon with ``eps`` = :data:`STABILIZER`.

    ``R_i = sum_j a_i w_ij / z_j R_j``; on a ReLU network equal to Gradient x Input.
    """
    return rule_epsilon(k, a, z, R, o, eps=STABILIZER)


def rule_gamma(k: Kernel, a: Tensor, z: Tensor, R: Tensor, o: RuleOptions) -> Tensor:
    """LRP-gamma (Montavon et al. 2019), generalised to signed inputs (Andeol et al. 2021).

    For ``a >= 0`` and ``z_j > 0`` the textbook rule
    ``R_i = sum_j a_i (w_ij + g w_ij^+) / (sum_i a_i (w_ij + g w_ij^+) + b_j + g b_j^+) R_j``.
    As zennit's ``Gamma``: outputs with ``z_j < 0`` use ``w + g w^-`` (and ``b + g b^-``),
    negative inputs the weights of the opposite sign, so the rule favours the contributions
    that agree with the sign of ``z_j``; relevance at ``z_j = 0`` is dropped. Shapes as in
    :func:`rule_epsilon`.
    """
    g, w, b = o.gamma, k.weight, k.used_bias(o)

    def w_up() -> Tensor:
        return w + g * w.clamp(min=0)

    def w_down() -> Tensor:
        return w + g * w.clamp(max=0)

    b_up = None if b is None else b + g * b.clamp(min=0)
    # Relevance on z < 0? R * min(z, 0), in a buffer that then holds the denominator.
    scratch = torch.clamp(z, max=0).mul_(R)
    if _all_zero(scratch):  # usual case: no relevance on z < 0
        return _signed_terms(k, a, R, w_up(), w_down, b_up, scratch)
    b_down = None if b is None else b + g * b.clamp(max=0)
    return (_signed_terms(k, a, R * (z > 0), w_up(), w_down, b_up)
            + _signed_terms(k, a, R * (z < 0), w_down(), w_up, b_down))


def rule_alpha1beta0(k: Kernel, a: Tensor, z: Tensor, R: Tensor, o: RuleOptions) -> Tensor:
    """LRP-alpha1beta0, the z+ rule (Bach et al. 2015; Montavon et al. 2017 Deep Taylor).

    ``R_i = sum_j (a_i w_ij)^+ / (sum_i (a_i w_ij)^+ + b_j^+) R_j``; the positive contributions
    are ``a^+ w^+`` and ``a^- w^-`` (zennit's ``AlphaBeta(1, 0)``). Shapes as in
    :func:`rule_epsilon`.
    """
    w, b = k.weight, k.used_bias(o)
    return _signed_terms(k, a, R, w.clamp(min=0), lambda: w.clamp(max=0),
                         None if b is None else b.clamp(min=0))


def _input_free_rule(k: Kernel, a: Tensor, R: Tensor, w: Tensor) -> Tensor:
    """``R_i = sum_j w_ij / sum_i w_ij R_j`` (no activations, no bias)."""
    ones = torch.ones((1,) + a.shape[1:], dtype=a.dtype, device=a.device)
    s = R / stabilize(k.forward(ones, w, None), STABILIZER)
    return k.transpose(s, w, a)


def rule_flat(k: Kernel, a: Tensor, z: Tensor, R: Tensor, o: RuleOptions) -> Tensor:
    """Flat rule (Lapuschkin et al. 2019; zennit ``Flat``).

    ``R_i = sum_j 1 / (number of inputs of j) R_j``: relevance spread uniformly over each
    receptive field, independent of ``a`` and of the weights. Shapes as in :func:`rule_epsilon`.
    """
    return _input_free_rule(k, a, R, torch.ones_like(k.weight))


def rule_w2(k: Kernel, a: Tensor, z: Tensor, R: Tensor, o: RuleOptions) -> Tensor:
    """w^2 rule (Montavon et al. 2017 Deep Taylor, unbounded input domain).

    ``R_i = sum_j w_ij^2 / sum_i w_ij^2 R_j`` (no bias; zennit ``WSquare(zero_params=["bias"])``).
    Shapes as in :func:`rule_epsilon`.
    """
    return _input_free_rule(k, a, R, k.weight ** 2)


def rule_zb(k: Kernel, a: Tensor, z: Tensor, R: Tensor, o: RuleOptions) -> Tensor:
    """z^B rule (Montavon et al. 2017 Deep Taylor, box-constrained pixels ``l <= x <= h``).

    ``R_i = sum_j (x_i w_ij - l_i w_ij^+ - h_i w_ij^-) / sum_i (...) R_j`` (no bias; zennit
    ``ZBox``). Needs ``o.low``/``o.high`` broadcastable to ``a`` (the model input).
    Shapes as in :func:`rule_epsilon`.
    """
    w = k.weight
    w_low, w_high = -w.clamp(min=0), -w.clamp(max=0)
    low, high = o.low.to(a), o.high.to(a)
    if not k.stackable:
        return _terms(k, [a, low.expand_as(a), high.expand_as(a)], [w, w_low, w_high], None, R)
    # The denominator W x + W_low l + W_high h without a 3-fold stacked forward pass of the
    # batch: W x is the layer's output less its bias, and the bound terms are one call on the
    # bounds, at batch 1 when they are the same for every sample (per-channel pixel bounds).
    # The transpose stays stacked: the three input-gradients in one call.
    shape = torch.broadcast_shapes(low.shape, high.shape, a.shape[1:])
    batch = shape[0] if len(shape) == a.dim() else 1
    bounds = torch.cat([low.expand(batch, *a.shape[1:]), high.expand(batch, *a.shape[1:])], 1)
    den = k.forward(bounds, torch.cat([w_low, w_high], 1), None)
    den = z + den if k.bias is None else k.without_bias(z).add_(den)
    s = _ratio(R, den, STABILIZER)
    stacked = torch.cat([w, w_low, w_high], 1)
    like = a.new_empty((a.shape[0], 3 * a.shape[1], *a.shape[2:]))  # shape only, never read
    c_x, c_low, c_high = k.transpose(s, stacked, like).chunk(3, dim=1)
    return a * c_x + low * c_low + high * c_high  # input-sized, contiguous


Rule = Callable[[Kernel, Tensor, Tensor, Tensor, RuleOptions], Tensor]

RULES: dict[str, Rule] = {
    "0": rule_zero,
    "epsilon": rule_epsilon,
    "gamma": rule_gamma,
    "alpha1beta0": rule_alpha1beta0,
    "flat": rule_flat,
    "w2": rule_w2,
    "zb": rule_zb,
}
"""Rule names (as in ``xk.explain(..., "lrp", rule=...)``) and their implementations."""

INPUT_ONLY_RULES = frozenset({"zb"})
"""Rules defined on the model input only (z^B's bounds are pixel bounds)."""

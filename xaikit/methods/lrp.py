"""Layer-wise Relevance Propagation as ``xk.explain(model, x, target, "lrp", ...)``.

LRP redistributes the explained logit layer by layer from the output to the pixels with a
propagation rule per Linear/Conv2d layer (:mod:`xaikit.methods.lrp_rules`). Here it runs inside one
forward and one backward pass: forward hooks replace each layer's output by an autograd node
whose backward *is* the layer's LRP rule, so the quantity flowing backwards is the relevance
itself and ``x.grad`` is the input relevance. ReLUs pass relevance unchanged, max-pooling gives
it to the winner (or spreads it as the tutorial's average pooling), average pooling uses LRP-0.
Conv2d+BatchNorm pairs are folded into one convolution on a copy of the model (canonization).
The caller's model is never changed: hooks are removed and ``inplace`` flags restored.

Why a hand path and not zennit: zennit 0.5.1's rules run every modified forward pass of a rule
once per input/parameter modifier (its Gamma rule: 5 convolutions and 4 gradient passes per
layer), and its ``EpsilonGammaBox`` composite costs about 14 forward passes on VGG-16, where the
workbook asks for LRP within 2x of a plain gradient. The rules here compute the same quantities
with one extra convolution per gamma layer and no second backward pass: ``composite="vgg16"``
measured 1.33-1.44x a gradient on VGG-16 at batch 1, 8 and 16 (2 CPU threads,
benchmarks/bench_lrp.py). The floor is about 1.3x: the gamma layers' modified forward
convolutions (``W + gamma W^+`` on blocks 1-3, 60 % of VGG-16's forward FLOPs) are the one
cost a gradient does not have; the rest is a few element-wise passes per layer, written to
allocate as few activation-sized buffers as possible (on the CPU, first touching a fresh
buffer costs about twice the arithmetic on it). zennit remains the cross-check:
tests/test_lrp.py compares every rule and the composites with zennit to float64 precision.

Introduced in notebook ``07_lrp_from_scratch``; composites in ``08_lrp_rules_vgg16``.

References
----------
Bach et al. 2015 (PLOS ONE); Montavon et al. 2017 (Pattern Recognition, Deep Taylor);
Montavon et al. 2019, "Layer-wise relevance propagation: an overview" (LNCS 11700).
"""
from __future__ import annotations

import copy
from contextlib import ExitStack, contextmanager, nullcontext
from functools import partial
from typing import Callable, ContextManager, Iterator, Mapping

import torch
import torch.nn.functional as F
import torch.nn.utils.fusion
from torch import Tensor, nn

from .._checks import check_bool, check_choice, check_real
from ..layers import BATCHNORMS, IDENTITIES, LINEAR_LAYERS, SUPPORTED_LAYERS
from ._registry import register
from .lrp_composites import COMPOSITES, resolve_rules, vgg16_composite
from .lrp_rules import INPUT_ONLY_RULES, KERNEL_TYPES, RULES, STABILIZER, RuleOptions, kernel, stabilize

__all__ = ["COMPOSITES", "MAXPOOL_MODES", "lrp", "propagate", "resolve_rules", "vgg16_composite"]


class _Relevance(torch.autograd.Function):
    """Identity on the layer output whose backward is ``rule(a, z, R)``: relevance in, out."""

    @staticmethod
    def forward(ctx, a: Tensor, z: Tensor, rule: Callable[[Tensor, Tensor, Tensor], Tensor]):
        ctx.a, ctx.z, ctx.rule = a.detach(), z, rule
        return z

    @staticmethod
    def backward(ctx, R: Tensor):
        return ctx.rule(ctx.a, ctx.z, R), None, None


def _pass(a: Tensor, z: Tensor, R: Tensor) -> Tensor:
    """ReLU: relevance passes unchanged (as zennit's ``Pass``)."""
    return R


def _pool_norm(pool: Callable[[Tensor], Tensor], a: Tensor, z: Tensor, R: Tensor) -> Tensor:
    """LRP-0 through a bias-free pooling map ``pool``: ``R_i = a_i sum_j p_ij R_j / pool(a)_j``."""
    with torch.enable_grad():
        leaf = a.detach().requires_grad_(True)
        z_pool = pool(leaf)
        (c,) = torch.autograd.grad(z_pool, leaf, R / stabilize(z_pool.detach(), STABILIZER))
    return a * c


def _average_of(module: nn.MaxPool2d) -> Callable[[Tensor], Tensor]:
    """The average pooling over the windows of a max-pool (the tutorial's LRP treatment)."""
    if module.dilation not in (1, (1, 1)) or module.return_indices:
        raise ValueError("maxpool='average' needs MaxPool2d without dilation or return_indices")
    return partial(F.avg_pool2d, kernel_size=module.kernel_size, stride=module.stride,
                   padding=module.padding, ceil_mode=module.ceil_mode, count_include_pad=False)


MAXPOOL_MODES = ("winner", "average")
"""``"winner"``: all relevance to the maximal input (the gradient; zennit, captum).
``"average"``: spread in proportion to the inputs, ``R_i = a_i / sum(window) R_j`` (LRP-0 on
the average pool, as in Montavon's tutorial)."""


class _Hooks:
    """Install the LRP backward on every leaf layer of ``model``; restore all on exit."""

    def __init__(self, model: nn.Module, rules: dict[str, str], options: RuleOptions,
                 maxpool: str) -> None:
        self.model, self.rules, self.options, self.maxpool = model, rules, options, maxpool
        self.input: Tensor | None = None
        self.calls: dict[str, int] = {}

    def __enter__(self) -> "_Hooks":
        self.stack = ExitStack()
        try:
            for name, module in self.model.named_modules():
                if next(module.children(), None) is None:
                    self._install(name, module)
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stack.close()

    def _install(self, name: str, module: nn.Module) -> None:
        # The type, training-mode and used-twice checks repeat what xk.explain already checked
        # (check_eval_mode, check_propagation); they stay for direct calls of lrp(), cost a
        # dict look-up and one Python hook call per layer, and cannot disagree with explain.
        handler = _HANDLERS.get(type(module))
        if handler is None:
            raise ValueError(f"LRP does not support layer {name} ({type(module).__name__})")
        if getattr(module, "training", False) and isinstance(module, nn.Dropout):
            raise ValueError(f"layer {name} is in training mode; call model.eval() first")
        self.stack.enter_context(_hooked(module, self._counter(name)))
        function = handler(self, name, module)
        if function is not None:
            self.stack.enter_context(_hooked(module, partial(self._replace, function)))

    def _counter(self, name: str):
        def count(module, inputs, output):
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.calls[name] > 1:
                raise ValueError(f"module {name} ({type(module).__name__}) is used twice in "
                                 "forward; LRP needs one module object per layer")
        return count

    @staticmethod
    def _replace(function, module, inputs, output):
        return _Relevance.apply(inputs[0], output.detach(), function)

    def _layer(self, name: str, module: nn.Module):
        rule_name = self.rules[name]
        k, rule = kernel(module), RULES[rule_name]

        def function(a: Tensor, z: Tensor, R: Tensor) -> Tensor:
            return rule(k, a, z, R, self.options)

        if rule_name in INPUT_ONLY_RULES:
            self.stack.enter_context(_hooked(module, partial(self._check_input, name, rule_name)))
        return function

    def _check_input(self, name: str, rule_name: str, module, inputs, output) -> None:
        if inputs[0] is not self.input:
            raise ValueError(f"rule {rule_name!r} applies to the input layer only (its bounds "
                             f"low/high are pixel bounds), but layer {name} is not fed by x")

    def _relu(self, name: str, module: nn.ReLU):
        self.stack.enter_context(_attribute(module, "inplace", False))
        return _pass

    def _maxpool(self, name: str, module: nn.MaxPool2d):
        return partial(_pool_norm, _average_of(module)) if self.maxpool == "average" else None

    def _avgpool(self, name: str, module: nn.Module):
        return partial(_pool_norm, module.forward)  # forward: no hooks in the backward pass

    def _gradient(self, name: str, module: nn.Module):
        return None


_HANDLERS: dict[type[nn.Module], Callable] = {
    **dict.fromkeys(LINEAR_LAYERS, _Hooks._layer),  # a rule of lrp_rules.RULES
    nn.ReLU: _Hooks._relu,  # ACTIVATIONS and POOLINGS: one handler per type
    nn.MaxPool2d: _Hooks._maxpool, nn.AvgPool2d: _Hooks._avgpool,
    nn.AdaptiveAvgPool2d: _Hooks._avgpool,
    **dict.fromkeys(IDENTITIES, _Hooks._gradient),
}
"""Leaf layer type -> how relevance crosses it (None: the plain gradient, exact for identities
and winner-take-all max-pooling). BatchNorm2d is folded away before (:func:`_canonized`).

The types are those of :mod:`xaikit.layers` (checked at import below): a layer added there
needs a handler here, and this table cannot accept a layer the other methods refuse."""


def _check_handlers() -> None:
    """Raise ImportError unless ``_HANDLERS`` covers exactly ``SUPPORTED_LAYERS`` less the
    BatchNorms (folded, never hooked) and every linear layer type has a rule kernel."""
    def names(types) -> str:
        return ", ".join(sorted(t.__name__ for t in types)) or "-"

    expected = set(SUPPORTED_LAYERS) - set(BATCHNORMS)
    missing, extra = expected - set(_HANDLERS), set(_HANDLERS) - expected
    no_kernel = set(LINEAR_LAYERS) - set(KERNEL_TYPES)
    if missing or extra or no_kernel:
        raise ImportError("xaikit.methods.lrp is out of step with xaikit.layers: no handler "
                          f"for {names(missing)}; a handler for unsupported {names(extra)}; "
                          f"no rule kernel for {names(no_kernel)}")


_check_handlers()


@contextmanager
def _hooked(module: nn.Module, hook) -> Iterator[None]:
    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def _attribute(module: nn.Module, name: str, value) -> Iterator[None]:
    previous = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, previous)


def _canonized(model: nn.Module) -> nn.Module:
    """``model``, or a copy with each Conv2d+BatchNorm2d pair (in a Sequential) folded into one
    Conv2d and the BatchNorm replaced by Identity (zennit's ``SequentialMergeBatchNorm``)."""
    if not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        return model
    if any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        raise ValueError("BatchNorm layers are in training mode; call model.eval() first")
    model = copy.deepcopy(model)
    for parent_name, parent in model.named_modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip([(None, None)] + children, children):
            if not isinstance(bn, nn.BatchNorm2d):
                continue
            if not isinstance(conv, nn.Conv2d):
                raise ValueError(f"BatchNorm2d {parent_name}.{bn_name} does not follow a Conv2d "
                                 "in a Sequential, so it cannot be folded for LRP")
            fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
            setattr(parent, conv_name, fused.requires_grad_(False))
            setattr(parent, bn_name, nn.Identity())
    return model


def _rule_options(model: nn.Module, x: Tensor, uses_zb: bool, epsilon: float, gamma: float,
                  low, high, bias: bool) -> RuleOptions:
    epsilon, gamma = check_real("epsilon", epsilon, low=0), check_real("gamma", gamma, low=0)
    check_bool("bias", bias)
    if not uses_zb:
        return RuleOptions(epsilon, gamma, bias)
    spec = getattr(model, "xaikit_spec", None)
    low = spec.low if low is None and spec is not None else low
    high = spec.high if high is None and spec is not None else high
    if low is None or high is None:
        raise ValueError("rule 'zb' needs the pixel bounds of the input: pass low= and high= "
                         "(the normalised black and white pixel), or use a model from "
                         "xaikit.load_model, whose spec carries them")
    low, high = (_bound(label, v, x) for label, v in (("low", low), ("high", high)))
    if (low > high).any():
        raise ValueError("the z^B bounds have low > high somewhere")
    if ((x < low - 1e-4) | (x > high + 1e-4)).any():
        raise ValueError("x lies outside the z^B box [low, high]; pass the bounds of the "
                         "normalised pixel range")
    return RuleOptions(epsilon, gamma, bias, low, high)


def _bound(label: str, value, x: Tensor) -> Tensor:
    """A z^B bound as a finite tensor broadcastable to ``x``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise TypeError(f"{label} must be a number or a tensor, got {type(value).__name__}")
    bound = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    try:
        fits = torch.broadcast_shapes(bound.shape, x.shape) == x.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"{label} of shape {tuple(bound.shape)} does not broadcast to x of "
                         f"shape {tuple(x.shape)}")
    if not torch.isfinite(bound).all():
        raise ValueError(f"{label} contains NaN or infinite values")
    return bound


@register("lrp", propagation=True)
def lrp(model: nn.Module, x: Tensor, target: Tensor, *, rule: str | None = None,
        composite: str | Mapping[str, str] | None = None, epsilon: float = 0.25,
        gamma: float = 0.25, low: Tensor | float | None = None,
        high: Tensor | float | None = None, bias: bool = True,
        maxpool: str = "winner") -> Tensor:
    """Layer-wise Relevance Propagation (Bach et al. 2015; Montavon et al. 2019).

    Parameters
    ----------
    model : torch.nn.Module
        Network of Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten,
        Dropout, Identity and Conv2d-following BatchNorm2d layers, in eval mode.
    x : Tensor
        ``(N, C, H, W)`` (or ``(N, D)``) float input.
    target : Tensor
        ``(N,)`` long, the explained logit per sample.
    rule : {"0", "epsilon", "gamma", "alpha1beta0", "flat", "w2", "zb"}, optional
        One rule for every Linear/Conv2d layer ("zb" only on a one-layer model: it needs pixel
        bounds). With a mapping ``composite``: the rule of the layers it does not name.
    composite : "vgg16" or mapping, optional
        ``"vgg16"`` (the default when ``rule`` is None): :func:`vgg16_composite`. A mapping
        ``{"features.0": "zb", "features.2": "gamma", ...}`` sets rules per layer name.
    epsilon : float
        Absolute LRP-epsilon stabiliser ``z + eps sign(z)`` (zennit's convention; the tutorial's
        code uses ``0.25 * RMS(z)`` per layer instead). Default 0.25.
    gamma : float
        LRP-gamma's weight of the positive parameters. Default 0.25, as in the tutorial.
    low, high : Tensor or float, optional
        z^B bounds broadcastable to ``x`` (default: ``model.xaikit_spec.low/high``, the
        normalised black and white pixel).
    bias : bool
        True (default): biases enter numerators and denominators of rules 0, epsilon, gamma
        and alpha1beta0 (they absorb relevance). False: kept out (the denominator is
        ``z - b``), so those layers pass on all their relevance (seed claim D7). flat, w2 and
        z^B never use biases.
    maxpool : {"winner", "average"}
        ``"winner"`` (default, as zennit and captum): relevance to the maximal input.
        ``"average"``: in proportion to the inputs of the window (Montavon's tutorial).

    Returns
    -------
    Tensor
        ``attr`` shaped like ``x``, in units of the explained logit (the output relevance is
        the target logit, so LRP-0 on a bias-free ReLU net sums to the logit).

    Introduced in notebook ``07_lrp_from_scratch``; rules and composites in
    ``08_lrp_rules_vgg16``.
    """
    return propagate(model, x, target, rule=rule, composite=composite, epsilon=epsilon,
                     gamma=gamma, low=low, high=high, bias=bias, maxpool=maxpool)


def propagate(model: nn.Module, x: Tensor, target: Tensor, *, rule: str | None,
              composite: str | Mapping[str, str] | None, epsilon: float, gamma: float,
              low: Tensor | float | None, high: Tensor | float | None, bias: bool, maxpool: str,
              extra: Callable[[nn.Module], ContextManager[object]] | None = None) -> Tensor:
    """The LRP pass of :func:`lrp`; ``extra(net)`` enters more hooks on the (canonized) model
    after LRP's own, e.g. CRP's channel mask (:mod:`xaikit.methods.crp`), and is exited with
    them. Returns the input relevance."""
    check_choice("maxpool", maxpool, MAXPOOL_MODES)
    net = _canonized(model)  # a copy with BatchNorm folded: same module names
    rules = resolve_rules(net, rule, composite)
    options = _rule_options(net, x, "zb" in rules.values(), epsilon, gamma, low, high, bias)
    x_leaf = x.detach().requires_grad_(True)
    with _Hooks(net, rules, options, maxpool) as hooks, \
            (extra(net) if extra is not None else nullcontext()), torch.enable_grad():
        hooks.input = x_leaf
        logits = net(x_leaf)
        if logits.dim() != 2:
            raise ValueError(f"LRP explains (N, classes) logits, got shape {tuple(logits.shape)}")
        onehot = F.one_hot(target.to(logits.device), logits.shape[1]).to(logits)
        (attr,) = torch.autograd.grad(logits, x_leaf, onehot * logits.detach())
    return attr

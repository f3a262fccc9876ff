"""LRP from scratch, as on the tutorial slide: four steps per layer, from the top down.

For a list of layers, a forward pass stores the activations ``a``; then, from the output to
the input, every Linear/Conv2d layer redistributes the relevance ``R`` of its outputs::

    z = incr(rho(layer).forward(a))        # step 1: modified forward, stabilised
    s = (R / z).detach()                   # step 2: element-wise division
    (z * s).sum().backward(); c = a.grad   # step 3: the gradient computes W_rho^T s
    R = a * c                              # step 4: element-wise product

with ``rho``/``incr`` chosen by the rule (Montavon et al. 2019; the tutorial's ``newlayer``
helper). ReLU, Dropout and Flatten pass relevance unchanged; max-pooling gives it
to the winner (``maxpool="winner"``) or, as the tutorial does, treats the pool as an average
pool (``"average"``). The result keeps the relevance of every layer, so the conservation
``sum R[0] = ... = sum R[L] = logit`` (up to what biases and epsilon absorb) can be printed.

This is the slow teaching version (a deep copy of each layer, one autograd call per layer);
:func:`xaikit.methods.lrp.lrp` is the fast one, and tests/test_lrp.py checks that the two agree.
Gamma and alpha1beta0 are the textbook rules for ``a >= 0`` (ReLU outputs); on signed inputs
(the pixel layer) use ``"zb"``/``"w2"``, as Deep Taylor prescribes.

Introduced in notebook ``07_lrp_from_scratch``.

References
----------
Montavon et al. 2019, "Layer-wise relevance propagation: an overview" (LNCS 11700), and the
accompanying tutorial (git.tu-berlin.de/gmontavon/lrp-tutorial); Bach et al. 2015 (PLOS ONE);
Montavon et al. 2017 (Pattern Recognition, Deep Taylor).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..layers import ACTIVATIONS, AVERAGE_POOLINGS, IDENTITIES, LINEAR_LAYERS, sequential_layers
from .lrp_composites import vgg16_composite
from .lrp_rules import STABILIZER, stabilize

__all__ = ["LRPTrace", "four_steps", "layers_of", "lrp_scratch", "newlayer", "vgg16_rules"]


@dataclass
class LRPTrace:
    """Activations and relevance at every layer boundary.

    Attributes
    ----------
    a : list of Tensor
        ``a[l]`` is the input of layer ``l`` (``a[0] = x``, ``a[L]`` the logits).
    R : list of Tensor
        ``R[l]`` the relevance of ``a[l]``, same shape; ``R[L]`` is the target logit (one-hot).
    """

    a: list[Tensor]
    R: list[Tensor]

    def sums(self) -> Tensor:
        """``(L + 1, N)`` total relevance per layer boundary and sample."""
        return torch.stack([r.flatten(1).sum(1) for r in self.R])

    def absorbed(self) -> Tensor:
        """``(L, N)`` relevance layer ``l`` did not pass down (biases, epsilon): ``sums[l+1] - sums[l]``."""
        sums = self.sums()
        return sums[1:] - sums[:-1]


def newlayer(layer: nn.Module, rho: Callable[[Tensor], Tensor], bias: bool = True) -> nn.Module:
    """A copy of ``layer`` with ``rho`` applied to its weight and bias (the tutorial's helper);
    ``bias=False`` sets the copy's bias to zero."""
    layer = copy.deepcopy(layer)
    layer.weight = nn.Parameter(rho(layer.weight.detach()))
    if layer.bias is not None:
        b = rho(layer.bias.detach()) if bias else torch.zeros_like(layer.bias)
        layer.bias = nn.Parameter(b)
    return layer


def four_steps(layer: nn.Module, a: Tensor, R: Tensor, incr: Callable[[Tensor], Tensor]) -> Tensor:
    """Redistribute ``R`` (the output relevance of ``layer``) onto ``a``: the tutorial's steps.

    Parameters
    ----------
    layer : nn.Module
        The (modified) layer ``rho(layer)``.
    a : Tensor
        ``(N, *in)`` its input.
    R : Tensor
        ``(N, *out)`` relevance of its output.
    incr : callable
        Stabiliser added to ``z`` in step 1.

    Returns
    -------
    Tensor
        ``(N, *in)`` relevance of ``a``.
    """
    a = a.detach().requires_grad_(True)
    with torch.enable_grad():
        z = incr(layer.forward(a))           # step 1
        s = (R / z).detach()                 # step 2
        (z * s).sum().backward()             # step 3
    c = a.grad
    return (a * c).detach()                  # step 4


def _eps(value: float) -> Callable[[Tensor], Tensor]:
    return lambda z: stabilize(z, value)


def _rule_0(layer, a, R, o):
    return four_steps(newlayer(layer, lambda p: p, o["bias"]), a, R, _eps(STABILIZER))


def _rule_epsilon(layer, a, R, o):
    eps = o["epsilon"]
    if callable(eps):   # a function of the layer's z, e.g. the tutorial's 0.25 * std(z)
        def incr(z: Tensor) -> Tensor:
            return z + torch.copysign(torch.as_tensor(eps(z.detach()), dtype=z.dtype, device=z.device), z)
    else:
        incr = _eps(eps)
    return four_steps(newlayer(layer, lambda p: p, o["bias"]), a, R, incr)


def _rule_gamma(layer, a, R, o):
    def rho(p: Tensor) -> Tensor:
        return p + o["gamma"] * p.clamp(min=0)

    return four_steps(newlayer(layer, rho, o["bias"]), a, R, _eps(STABILIZER))


def _rule_alpha1beta0(layer, a, R, o):
    return four_steps(newlayer(layer, lambda p: p.clamp(min=0), o["bias"]), a, R, _eps(STABILIZER))


def _rule_flat(layer, a, R, o):
    # a is replaced by ones, so step 4 multiplies by 1: R_i = c_i
    return four_steps(newlayer(layer, torch.ones_like, False), torch.ones_like(a), R, _eps(STABILIZER))


def _rule_w2(layer, a, R, o):
    return four_steps(newlayer(layer, lambda p: p ** 2, False), torch.ones_like(a), R,
                      _eps(STABILIZER))


def _rule_zb(layer, a, R, o):
    """The tutorial's pixel layer: z = x w - l w^+ - h w^- (the biases cancel)."""
    if o["low"] is None or o["high"] is None:
        raise ValueError("rule 'zb' needs the pixel bounds low= and high=")
    x = a.detach().requires_grad_(True)
    lb = (o["low"] + 0 * a).detach().requires_grad_(True)
    hb = (o["high"] + 0 * a).detach().requires_grad_(True)
    with torch.enable_grad():
        z = layer.forward(x)                                                   # step 1
        z = z - newlayer(layer, lambda p: p.clamp(min=0)).forward(lb)
        z = stabilize(z - newlayer(layer, lambda p: p.clamp(max=0)).forward(hb), STABILIZER)
        s = (R / z).detach()                                                   # step 2
        (z * s).sum().backward()                                               # step 3
    c, cp, cm = x.grad, lb.grad, hb.grad
    return (x * c + lb * cp + hb * cm).detach()                               # step 4


_RULES: dict[str, Callable] = {
    "0": _rule_0, "epsilon": _rule_epsilon, "gamma": _rule_gamma,
    "alpha1beta0": _rule_alpha1beta0, "flat": _rule_flat, "w2": _rule_w2, "zb": _rule_zb,
}


def _pass(layer, a, R, o):
    return R.reshape(a.shape)


def _winner(layer, a, R, o):
    """Max-pool, winner-take-all: the pool's gradient routes each R_j to its maximal input."""
    a = a.detach().requires_grad_(True)
    with torch.enable_grad():
        (layer.forward(a) * R).sum().backward()
    return a.grad


def _average(layer, a, R, o):
    """Max-pool as the tutorial treats it: ``AvgPool2d`` over the same windows, LRP-0."""
    pool = nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode,
                        count_include_pad=False)
    return four_steps(pool, a, R, _eps(STABILIZER))


def _pool(layer, a, R, o):
    return four_steps(layer, a, R, _eps(STABILIZER))


_OTHERS: dict[type[nn.Module], Callable] = {
    **dict.fromkeys(ACTIVATIONS + IDENTITIES, _pass), **dict.fromkeys(AVERAGE_POOLINGS, _pool),
}
"""How relevance crosses the layers without a rule (the groups of :mod:`xaikit.layers`)."""


def _step(layer: nn.Module, rule: str | None, a: Tensor, R: Tensor, o: dict) -> Tensor:
    if isinstance(layer, LINEAR_LAYERS):
        return _RULES[rule](layer, a, R, o)
    if isinstance(layer, nn.MaxPool2d):
        return {"winner": _winner, "average": _average}[o["maxpool"]](layer, a, R, o)
    if type(layer) not in _OTHERS:
        raise ValueError(f"lrp_scratch does not support {type(layer).__name__}")
    return _OTHERS[type(layer)](layer, a, R, o)


layers_of = sequential_layers
"""The layers of a torchvision VGG or an ``nn.Sequential`` as one flat list, in forward order
(:func:`xaikit.layers.sequential_layers`, under the name notebook 07 uses)."""


def vgg16_rules(layers: Sequence[nn.Module]) -> dict[int, str]:
    """:func:`xaikit.methods.lrp_composites.vgg16_composite` by layer index: the tutorial's table on VGG-16
    (``0``: z^B, ``1..16``: gamma, ``17..30``: epsilon, the dense layers: LRP-0; they are at
    ``33, 36, 39`` in :func:`layers_of`'s list, which keeps ``avgpool`` and Flatten)."""
    return {int(name): rule for name, rule in vgg16_composite(nn.Sequential(*layers)).items()}


def lrp_scratch(layers: Sequence[nn.Module], x: Tensor, target: int | Sequence[int] | Tensor,
                rules: str | Mapping[int, str], *,
                epsilon: float | Callable[[Tensor], Tensor] = 0.25, gamma: float = 0.25,
                low: Tensor | float | None = None, high: Tensor | float | None = None,
                bias: bool = True, maxpool: str = "winner") -> LRPTrace:
    """LRP of ``target`` through ``layers``, layer by layer (the tutorial's loop).

    Parameters
    ----------
    layers : sequence of nn.Module
        Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout;
        see :func:`layers_of`.
    x : Tensor
        ``(N, ...)`` input.
    target : int, sequence or Tensor
        Explained logit, one for all or one per sample.
    rules : str or mapping
        One rule name for every Linear/Conv2d, or ``{layer index: rule}`` (others: ``"0"``).
    epsilon : float or callable
        As in :func:`xaikit.methods.lrp.lrp` (``z + epsilon * sign(z)``, absolute), or a
        function ``z -> epsilon`` (a tensor broadcastable to ``z``) that sets it per layer from
        the layer's own pre-activations ``z``, as the tutorial's ``0.25 * std(z)`` does.
    gamma, low, high, bias, maxpool
        As in :func:`xaikit.methods.lrp.lrp`.

    Returns
    -------
    LRPTrace
        ``R[0]`` is the input relevance, shaped like ``x``.
    """
    per_layer = {i: rules for i in range(len(layers))} if isinstance(rules, str) else rules
    o = {"epsilon": epsilon, "gamma": gamma, "low": low, "high": high, "bias": bias,
         "maxpool": maxpool}
    a = [x.detach()]
    with torch.no_grad():
        for layer in layers:
            a.append(layer.forward(a[-1].clone()))  # clone: inplace ReLUs keep a[l] intact
    t = torch.as_tensor(target).expand(len(x)).reshape(-1, 1)
    onehot = torch.zeros_like(a[-1]).scatter_(1, t, 1.0)
    R: list[Tensor] = [torch.empty(0)] * len(layers) + [onehot * a[-1]]
    for l in range(len(layers))[::-1]:
        R[l] = _step(layers[l], per_layer.get(l, "0"), a[l], R[l + 1], o)
    return LRPTrace(a, R)

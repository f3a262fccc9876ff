"""DeepLIFT: contributions of the difference from a reference (Rescale and RevealCancel).

DeepLIFT explains the difference ``f(x) - f(x0)`` of the target logit between the input ``x``
and a reference ``x0``. It assigns every input a contribution ``C_i`` with

    sum_i C_i = f(x)[t] - f(x0)[t]                       (summation-to-delta)

by propagating multipliers ``m = C / dx`` backwards with the chain rule: the linear rule for
dense and convolutional layers, and the Rescale rule (``m = dy / dx``) or the RevealCancel rule
(positive and negative parts of ``dx`` treated separately) for nonlinearities. Unlike the
gradient, the multiplier of ``f(x) = max(0, x - 10)`` at ``x = 10 + eps`` is ``eps / (10 + eps)``
and the contribution is ``eps``, not ``10 + eps`` (gradient x input).

Rescale runs on captum's ``DeepLift``, with one repair. captum 0.9.0 is wrong where two hooked
nonlinear layers are adjacent (``ReLU`` then ``MaxPool2d`` in every VGG block): the upstream one
receives the plain gradient instead of its DeepLIFT multiplier (captum issue #1104), and the
contributions miss ``f(x) - f(x0)`` by a few percent. We therefore run captum on a copy of the
model (sharing the caller's parameter storage, no weights copied) in which every nonlinearity is
followed by a module returning ``x.clone()``; that restores summation-to-delta to rounding error.
The caller's model is never modified. RevealCancel is written by hand in
:mod:`xaikit.methods.deeplift_scratch` (captum has none).

With a zero reference and zero biases, every reference activation is 0, each ReLU multiplier
``relu(x)/x`` equals the gradient ``1{x > 0}``, and Rescale is exactly gradient x input
(Ancona et al. 2018); the reference matters through the biases and the nonzero baselines.

References
----------
Shrikumar, Greenside, Kundaje (2017), "Learning Important Features Through Propagating
Activation Differences", ICML.
Ancona, Ceolini, Oeztireli, Gross (2018), "Towards better understanding of gradient-based
attribution methods for deep neural networks", ICLR.

Introduced in notebook 06_deeplift.
"""
from __future__ import annotations

import copy
import itertools
import warnings

import torch
from torch import nn

from ..references import Baseline, resolve_baseline
from ._registry import register
from .deeplift_scratch import EPS, deeplift_by_hand

__all__ = ["DEEPLIFT_RULES", "captum_deeplift_copy", "deeplift", "deeplift_softmax_adjust",
           "explaining_copy"]

DEEPLIFT_RULES = ("rescale", "reveal_cancel")
"""DeepLIFT's rules for nonlinearities (LRP's rules are :data:`xaikit.methods.lrp_rules.RULES`)."""


class _Clone(nn.Module):
    """Returns a copy of its input, so no two captum-hooked modules share a tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def explaining_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode that shares its parameter storage.

    The copy's modules are new objects (hooks and flags set on them leave ``model`` alone); its
    parameters are ``requires_grad=False`` views of the caller's, so no weights are copied and
    no weight gradients are computed.
    """
    memo: dict[int, torch.Tensor] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        memo[id(t)] = nn.Parameter(t.detach(), requires_grad=False) if isinstance(
            t, nn.Parameter) else t
    return copy.deepcopy(model, memo).eval()


def _insert_clones(module: nn.Module, nonlinear: tuple[type[nn.Module], ...]) -> None:
    for name, child in module.named_children():
        if isinstance(child, nonlinear):
            if getattr(child, "inplace", False):
                child.inplace = False
            setattr(module, name, nn.Sequential(child, _Clone()))
        else:
            _insert_clones(child, nonlinear)


def captum_deeplift_copy(model: nn.Module) -> nn.Module:
    """:func:`explaining_copy` with a ``x.clone()`` module after every nonlinearity.

    captum's ``DeepLift`` hooks the nonlinear leaf modules; where one feeds the next directly
    (``ReLU`` -> ``MaxPool2d``) the upstream one gets the plain gradient (captum issue #1104). The
    clone in between gives each hooked module its own input tensor and restores the rule.
    """
    from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR

    net = explaining_copy(model)
    _insert_clones(net, tuple(SUPPORTED_NON_LINEAR))
    return net


def _rescale_captum(model: nn.Module, x: torch.Tensor, x0: torch.Tensor,
                    target: torch.Tensor) -> torch.Tensor:
    from captum.attr import DeepLift

    net = captum_deeplift_copy(model)
    inputs = x.detach().clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="captum")
        attr = DeepLift(net, eps=EPS).attribute(inputs, x0.detach(), target=target)
    return attr.detach()


@register("deeplift", propagation=True)
def deeplift(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, rule: str = "rescale",
             baseline: Baseline = None) -> torch.Tensor:
    """DeepLIFT contributions to the target logit relative to a baseline.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode; explained through a copy (the caller's model is untouched).
    x : torch.Tensor
        ``(N, C, H, W)`` (or ``(N, D)``) float input.
    target : torch.Tensor
        ``(N,)`` long tensor of explained classes (``xk.explain`` builds it).
    rule : {"rescale", "reveal_cancel"}
        ``"rescale"``: captum ``DeepLift`` on a clone-separated copy (see the module docstring);
        ``"reveal_cancel"``: the hand-written walk of :mod:`xaikit.methods.deeplift_scratch`
        (``nn.Sequential`` models and torchvision's VGG).
    baseline : None, str, float or torch.Tensor
        Reference ``x0``; see :func:`xaikit.references.resolve_baseline` (default zeros).

    Returns
    -------
    torch.Tensor
        ``C`` shaped like ``x`` in logit units: ``C[k].sum() = f(x)[k, t_k] - f(x0)[k, t_k]``.

    References
    ----------
    Shrikumar, Greenside, Kundaje (2017), ICML. Introduced in notebook 06_deeplift.
    """
    if not isinstance(rule, str) or rule not in DEEPLIFT_RULES:
        raise ValueError(f"unknown DeepLIFT rule {rule!r}; choose one of "
                         f"{', '.join(DEEPLIFT_RULES)}")
    x0 = resolve_baseline(model, x, baseline)
    if rule == "rescale":
        return _rescale_captum(model, x, x0, target)
    return deeplift_by_hand(explaining_copy(model), x, x0, target, rule=rule)


def deeplift_softmax_adjust(contributions: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Softmax adjustment of DeepLIFT: subtract the mean contribution over the classes.

    ``C'_c = C_c - (1/n) sum_j C_j``, computed from contributions to the logits (the linear
    layer before the softmax). Adding the same amount to every logit leaves the softmax
    unchanged, and the adjusted contributions are likewise unchanged by any contribution shared
    by all classes; they sum to ``dlogit_c - mean_j dlogit_j`` per sample.

    Parameters
    ----------
    contributions : torch.Tensor
        Contributions to each of ``n >= 2`` logits, stacked along ``dim``, e.g.
        ``(n, N, C, H, W)`` from one :func:`xaikit.explain` call per class.
    dim : int
        The class axis (default 0).

    Returns
    -------
    torch.Tensor
        Adjusted contributions, same shape.

    References
    ----------
    Shrikumar, Greenside, Kundaje (2017), section 3.6. Introduced in notebook 06_deeplift.
    """
    if not isinstance(contributions, torch.Tensor) or not contributions.is_floating_point():
        raise TypeError("contributions must be a floating-point tensor")
    if contributions.dim() == 0 or contributions.shape[dim] < 2:
        raise ValueError(f"need contributions for at least 2 classes along dim {dim}, "
                         f"got shape {tuple(contributions.shape)}")
    return contributions - contributions.mean(dim=dim, keepdim=True)

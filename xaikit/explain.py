"""``xk.explain``: one entry point for every attribution method of the workbook.

Methods register themselves by name (``@register("gradient")``), in the style of zennit's
composite registry; :func:`explain` validates the input once, normalises the target to a
``(N,)`` long tensor and dispatches. Propagation methods (LRP, DeepLIFT, Deconvnet, Guided
Backprop, Guided Grad-CAM) also get their leaf layers checked, and a model that calls one
module object twice in ``forward`` is rejected (:func:`reused_modules`). Each method module
(``gradients``, ``perturbation``, ``gradcam``, ``lrp``, ``deeplift``) documents its paper and
the notebook that teaches it.

Conventions (``../design.md``): relevance is in units of the explained logit; the result is a
tensor shaped like ``x``; stochastic methods take ``seed`` and leave the global RNG alone.
"""
from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

__all__ = ["explain", "list_methods", "register", "run_method", "reused_modules", "MethodInfo",
           "SUPPORTED_LAYERS"]

SUPPORTED_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
    nn.Flatten, nn.Dropout, nn.BatchNorm2d, nn.Identity,
)
"""Leaf layers the propagation methods (LRP, DeepLIFT, Deconvnet, Guided Backprop) handle."""


@dataclass(frozen=True)
class MethodInfo:
    """A registered attribution method.

    ``fn(model, x, target, **options) -> attr`` receives a validated float ``x (N, C, H, W)``
    and ``target (N,)`` long tensor and returns ``attr`` shaped like ``x``.
    ``propagation``: the method walks the layers, so every leaf layer must be supported.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    propagation: bool
    options: tuple[str, ...]


_REGISTRY: dict[str, MethodInfo] = {}


def register(name: str, *, propagation: bool = False):
    """Register ``fn(model, x, target, **options)`` as method ``name`` for :func:`explain`."""

    def decorate(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        params = list(inspect.signature(fn).parameters.values())[3:]
        options = tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)
        _REGISTRY[name] = MethodInfo(name, fn, propagation, options)
        return fn

    return decorate


def _load_methods() -> None:
    # Importing the method modules fills the registry (kept lazy to avoid import cycles).
    from . import deeplift, gradcam, gradients, lrp, perturbation  # noqa: F401


def list_methods() -> list[str]:
    """Names accepted by :func:`explain`, sorted."""
    _load_methods()
    return sorted(_REGISTRY)


def method_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of a registered method (ValueError for an unknown name)."""
    _load_methods()
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def _num_outputs(model: nn.Module) -> int | None:
    spec = getattr(model, "xaikit_spec", None)
    if spec is not None:
        return len(spec.classes)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def _expected_channels(model: nn.Module) -> int | None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return None


def check_input(model: nn.Module, x: torch.Tensor) -> None:
    """Raise TypeError/ValueError for an input ``x`` no method should see."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor (use xaikit.preprocess), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}; "
                        "use xaikit.preprocess to convert images")
    channels = _expected_channels(model)
    if channels is not None and (x.dim() != 4 or x.shape[1] != channels):
        raise ValueError(f"x must have shape (N, {channels}, H, W), got {tuple(x.shape)}")
    if x.dim() < 2:
        raise ValueError(f"x must have a batch dimension, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")


def as_target(target, n: int, num_outputs: int | None) -> torch.Tensor:
    """Normalise ``target`` (int, sequence or 1-D tensor of ints) to a ``(n,)`` long tensor."""
    if isinstance(target, bool):
        raise TypeError("target must be an int or a sequence of ints, got a bool")
    if isinstance(target, int):
        t = torch.full((n,), target, dtype=torch.long)
    else:
        t = torch.as_tensor(target)
        if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"target must hold integers, got dtype {t.dtype}")
        if t.dim() == 0:
            t = t.expand(n)
        if t.dim() != 1:
            raise ValueError(f"target must be an int or 1-D, got shape {tuple(t.shape)}")
        if len(t) != n:
            raise ValueError(f"batch of {n} inputs but {len(t)} targets")
        t = t.long()
    if (t < 0).any() or (num_outputs is not None and (t >= num_outputs).any()):
        raise ValueError(f"target {t.tolist()} out of range for {num_outputs} outputs")
    return t


def check_layers(model: nn.Module, method: str) -> None:
    """Raise a ValueError naming the first leaf layer ``method`` cannot propagate through."""
    for name, module in model.named_modules():
        if next(module.children(), None) is None and not isinstance(module, SUPPORTED_LAYERS):
            raise ValueError(
                f"method {method!r} does not support layer {name or '<model>'} "
                f"({type(module).__name__}); supported: "
                + ", ".join(t.__name__ for t in SUPPORTED_LAYERS))


_REUSE_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reused_modules(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Names of the leaf modules that one forward pass of ``model`` calls more than once.

    Runs ``model`` once on ``x[:1]`` with a forward hook counting the calls of every leaf module
    (a shared ``nn.ReLU`` object, a convolution applied twice), in eval mode, restoring each
    module's mode afterwards. The answer is cached (weakly) per model,
    per input shape and per module list (replacing a submodule invalidates it); the hooks are
    removed even if the forward pass fails.
    """
    modules = [(name, m) for name, m in model.named_modules() if next(m.children(), None) is None]
    key = (tuple(x.shape[1:]), tuple(id(m) for _, m in modules))
    cached = _REUSE_CACHE.get(model)
    if cached is not None and cached[0] == key:
        return list(cached[1])
    calls: dict[int, int] = {}

    def count(module: nn.Module, inputs, output) -> None:
        calls[id(module)] = calls.get(id(module), 0) + 1

    modes = [(m, m.training) for m in model.modules()]
    handles = [m.register_forward_hook(count) for _, m in modules]
    try:  # eval mode so that no BatchNorm statistics change
        with torch.no_grad():
            model.eval()(x[:1].detach())
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes:
            m.training = training
    reused = [name or "<model>" for name, m in modules if calls.get(id(m), 0) > 1]
    _REUSE_CACHE[model] = (key, tuple(reused))
    return reused


def check_reuse(model: nn.Module, x: torch.Tensor, method: str) -> None:
    """Raise a ValueError if a leaf module is called twice in one forward pass.

    Propagation methods attach per-module rules and state; zennit silently returns a wrong
    answer on a reused module (about 50 % relative error measured) and captum raises.
    """
    reused = reused_modules(model, x)
    if reused:
        raise ValueError(
            f"method {method!r} cannot explain a model that calls a module more than once in "
            f"forward: {', '.join(reused)}; give every use its own module object "
            "(e.g. one nn.ReLU per activation)")


def _checked_method(method: str, options: dict) -> MethodInfo:
    info = method_info(method)
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)} for method {method!r}; "
                        f"it takes: {', '.join(info.options) or 'no options'}")
    return info


def run_method(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str,
               options: dict) -> torch.Tensor:
    """Check ``options`` and the layers, then run ``method`` on a validated ``x``/``target``.

    The part of :func:`explain` after input validation; methods built on other methods
    (SmoothGrad's ``base``) call it so the base gets the same checks.
    """
    info = _checked_method(method, options)
    if info.propagation:
        check_layers(model, method)
        check_reuse(model, x, method)
    return info.fn(model, x, target, **options)


def explain(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor,
            method: str, **options) -> torch.Tensor:
    """Attribution of ``model``'s logit ``target`` to the input ``x``.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier in eval mode (e.g. from :func:`xaikit.load_model`).
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
    check_input(model, x)
    t = as_target(target, x.shape[0], _num_outputs(model)).to(x.device)
    return run_method(model, x, t, method, options)

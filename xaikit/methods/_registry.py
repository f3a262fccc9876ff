"""The method registry: ``@register("name")`` makes a function a method of :func:`xaikit.explain`.

In the style of zennit's composite registry. :func:`run_method` checks a method's options (and,
for propagation methods, the model: :func:`xaikit._checks.check_propagation`) and runs it on a
validated input; methods built on other methods (SmoothGrad's ``base``) call it too.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .._checks import check_propagation

__all__ = ["MethodInfo", "list_controls", "list_methods", "method_info", "register", "run_method"]


@dataclass(frozen=True)
class MethodInfo:
    """A registered attribution method.

    ``fn(model, x, target, **options) -> attr`` receives a validated float ``x (N, C, H, W)``
    and ``target (N,)`` long tensor and returns ``attr`` shaped like ``x``.
    ``propagation``: the method walks the layers, so every leaf layer must be supported and
    the forward pass must be their composition (:func:`check_propagation`).
    ``gradients``: the method needs autograd (so it cannot run under ``torch.inference_mode``).
    ``control``: a control map that ignores how the model decides (:mod:`.controls`).
    """

    name: str
    fn: Callable[..., torch.Tensor]
    propagation: bool
    options: tuple[str, ...]
    gradients: bool = True
    control: bool = False


_REGISTRY: dict[str, MethodInfo] = {}


def register(name: str, *, propagation: bool = False, gradients: bool = True,
             control: bool = False) -> Callable[[Callable[..., torch.Tensor]],
                                                 Callable[..., torch.Tensor]]:
    """Register ``fn(model, x, target, **options)`` as method ``name`` for :func:`xaikit.explain`.

    A second registration under the same name is a ValueError (never a silent overwrite).
    """

    def decorate(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        known = _REGISTRY.get(name)
        if known is not None and (known.fn.__module__, known.fn.__qualname__) != (
                fn.__module__, fn.__qualname__):  # (a re-imported module may register again)
            raise ValueError(f"a method named {name!r} is already registered")
        params = list(inspect.signature(fn).parameters.values())[3:]
        options = tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)
        _REGISTRY[name] = MethodInfo(name, fn, propagation, options, gradients, control)
        return fn

    return decorate


def list_methods(controls: bool = True) -> list[str]:
    """Names accepted by :func:`xaikit.explain`, sorted (without the controls when
    ``controls=False``)."""
    return sorted(name for name, info in _REGISTRY.items() if controls or not info.control)


def list_controls() -> list[str]:
    """The control methods (:mod:`xaikit.methods.controls`), sorted."""
    return sorted(name for name, info in _REGISTRY.items() if info.control)


def method_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of a registered method (ValueError for an unknown name)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


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

    The part of :func:`xaikit.explain` after input validation; methods built on other methods
    (SmoothGrad's ``base``) call it so the base gets the same checks.
    """
    info = _checked_method(method, options)
    if info.gradients and torch.is_inference_mode_enabled():
        raise RuntimeError(f"method {method!r} needs autograd, but it was called inside "
                           "torch.inference_mode(); call xaikit.explain outside that block")
    if info.propagation:
        check_propagation(model, x, method)
    return info.fn(model, x, target, **options)

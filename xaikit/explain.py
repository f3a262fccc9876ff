"""``xk.explain``: one entry point for every attribution method of the workbook.

Methods register themselves by name (``@register("gradient")``), in the style of zennit's
composite registry; :func:`explain` validates the input once, normalises the target to a
``(N,)`` long tensor and dispatches. One cached forward pass (:func:`trace`) reads the number
of logits from the model itself. Propagation methods (LRP, DeepLIFT, Deconvnet, Guided
Backprop, Guided Grad-CAM) also get their leaf layers checked, and a model that calls one
module object twice in ``forward``, or computes anything outside its modules, is rejected
(:func:`check_propagation`). Each method module (``gradients``, ``perturbation``, ``gradcam``,
``lrp``, ``deeplift``) documents its paper and the notebook that teaches it.

Conventions: relevance is in units of the explained logit; the result is a
tensor shaped like ``x``; stochastic methods take ``seed`` and leave the global RNG alone.
"""
from __future__ import annotations

import inspect
import numbers
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import torch
from torch import nn

__all__ = ["explain", "list_methods", "register", "run_method", "reused_modules", "MethodInfo",
           "SUPPORTED_LAYERS", "ForwardTrace", "Target", "prepare", "trace"]

Target = Union[int, Sequence[int], torch.Tensor]
"""The explained class: one int for the whole batch, or one int per sample."""

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
    ``propagation``: the method walks the layers, so every leaf layer must be supported and
    the forward pass must be their composition (:func:`check_propagation`).
    ``gradients``: the method needs autograd (so it cannot run under ``torch.inference_mode``).
    """

    name: str
    fn: Callable[..., torch.Tensor]
    propagation: bool
    options: tuple[str, ...]
    gradients: bool = True


_REGISTRY: dict[str, MethodInfo] = {}


def register(name: str, *, propagation: bool = False, gradients: bool = True):
    """Register ``fn(model, x, target, **options)`` as method ``name`` for :func:`explain`.

    A second registration under the same name is a ValueError (never a silent overwrite).
    """

    def decorate(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        if name in _REGISTRY and _REGISTRY[name].fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"a method named {name!r} is already registered")
        params = list(inspect.signature(fn).parameters.values())[3:]
        options = tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)
        _REGISTRY[name] = MethodInfo(name, fn, propagation, options, gradients)
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


_MODE_DEPENDENT = (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd)
"""Layers that compute something else in training mode (batch statistics, random dropout)."""


def check_eval_mode(model: nn.Module) -> None:
    """Raise a ValueError if a BatchNorm/InstanceNorm or Dropout layer is in training mode.

    Explaining such a model would update the caller's BatchNorm running statistics and give
    Dropout-noisy maps that differ call to call, so every method refuses instead of guessing.
    (A custom module that reads ``self.training`` in its ``forward`` cannot be seen here.)
    """
    training = [f"{name or '<model>'} ({type(m).__name__})" for name, m in model.named_modules()
                if m.training and isinstance(m, _MODE_DEPENDENT)]
    if training:
        more = f" and {len(training) - 3} more" if len(training) > 3 else ""
        raise ValueError(
            f"the model is in training mode: {', '.join(training[:3])}{more} would update "
            "BatchNorm statistics or drop units at random; call model.eval() first")


def _model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device] | None:
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return None


def check_input(model: nn.Module, x: torch.Tensor) -> None:
    """Raise TypeError/ValueError for a model or an input ``x`` no method should see.

    Checks the types, that ``x`` is a non-empty float32/float64 batch of finite values with
    the model's dtype and device, and that no normalisation or dropout layer is in training
    mode. Shapes are checked against the model itself by :func:`trace`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor (use xaikit.preprocess), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}; "
                        "use xaikit.preprocess to convert images")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"x has dtype {x.dtype}; xaikit explains float32 or float64 models and "
                        "inputs (in float16/bfloat16 the LRP and DeepLIFT stabilisers underflow "
                        "and CPU convolutions are very slow): use model.float() and x.float()")
    found = _model_dtype_device(model)
    if found is not None:
        dtype, device = found
        if dtype not in _FLOAT_DTYPES:
            raise TypeError(f"the model's parameters are {dtype}; xaikit explains float32 or "
                            "float64 models (float16/bfloat16 stabilisers underflow): "
                            "use model.float() and x.float()")
        if dtype != x.dtype:
            raise TypeError(f"x has dtype {x.dtype} but the model's parameters are {dtype}; "
                            f"convert one of them (x.to({dtype}) or model.to({x.dtype}))")
        if device != x.device:
            raise ValueError(f"x is on {x.device} but the model is on {device}; "
                             f"move x there (x.to({str(device)!r}))")
    if x.dim() < 2:
        raise ValueError(f"x must have a batch dimension, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"x is an empty batch (shape {tuple(x.shape)})")
    if x.numel() == 0:
        raise ValueError(f"x has no values (shape {tuple(x.shape)})")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    check_eval_mode(model)


_FLOAT_DTYPES = (torch.float32, torch.float64)


def as_target(target: Target, n: int, num_outputs: int | None) -> torch.Tensor:
    """Normalise ``target`` (int, sequence or 1-D tensor of ints) to a ``(n,)`` long tensor."""
    if target is None:
        raise TypeError("target is required: the index of the explained class (an int), or one "
                        "int per sample")
    if isinstance(target, bool):
        raise TypeError("target must be an int or a sequence of ints, got a bool")
    if isinstance(target, (str, bytes)):
        raise TypeError(f"target must be an int or a sequence of ints, got the string {target!r}")
    if isinstance(target, numbers.Integral):
        t = torch.full((n,), int(target), dtype=torch.long)
    else:
        try:
            t = torch.as_tensor(target)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"target must be an int or a sequence of ints, got {target!r}") from None
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


@dataclass(frozen=True)
class ForwardTrace:
    """What one forward pass of a model on one sample shows (:func:`trace`).

    Attributes
    ----------
    outputs : int
        Number of logits: the model maps ``(N, ...)`` to ``(N, outputs)``.
    reused : tuple of str
        Leaf modules called more than once.
    unseen : str or None
        Where the forward pass computes something outside its leaf modules (a functional
        ``F.relu``, a residual sum, an in-place change): ``"between features.3 and
        features.4"``; ``None`` when the output is the composition of the leaf modules' calls
        (reshapes such as ``torch.flatten`` change no value and are allowed).
    """

    outputs: int
    reused: tuple[str, ...]
    unseen: str | None


_TRACE_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _same_values(a, b: torch.Tensor) -> bool:
    return (isinstance(a, torch.Tensor) and a.numel() == b.numel() and a.dtype == b.dtype
            and torch.equal(a.reshape(-1), b.reshape(-1)))


class _InputShapeError(ValueError):
    pass


def _check_first_layer(module: nn.Module, shape: torch.Size) -> None:
    """Raise if ``x`` of ``shape`` does not fit the first layer the model calls on it."""
    if isinstance(module, nn.Conv2d) and (len(shape) != 4 or shape[1] != module.in_channels):
        raise _InputShapeError(f"x must have shape (N, {module.in_channels}, H, W) for the "
                               f"model's first layer, got {tuple(shape)}")
    if isinstance(module, nn.Linear) and shape[-1] != module.in_features:
        raise _InputShapeError(f"x must have shape (N, {module.in_features}) for the model's "
                               f"first layer, got {tuple(shape)}")


def trace(model: nn.Module, x: torch.Tensor) -> ForwardTrace:
    """Run ``model`` once on ``x[:1]`` and record its output size and how it uses its layers.

    Hooks on every leaf module count its calls and compare each call's input with the
    previous leaf's output (values, so reshapes pass and in-place changes are seen). The
    answer is cached (weakly) per model, input shape and dtype, and module list (replacing a
    submodule invalidates it); the hooks are removed even if the forward pass fails, and the
    model's error is re-raised as a ValueError naming the input shape.
    """
    modules = [(name or "<model>", m) for name, m in model.named_modules()
               if next(m.children(), None) is None]
    key = (tuple(x.shape[1:]), x.dtype, tuple(id(m) for _, m in modules))
    cached = _TRACE_CACHE.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    x0 = x[:1].detach()
    calls: dict[int, int] = {}
    last = {"value": x0.clone(), "name": "the input"}
    gaps: list[str] = []

    def before(name: str):
        def hook(module: nn.Module, inputs) -> None:
            if not calls:
                _check_first_layer(module, x.shape)
            if not gaps and not (inputs and _same_values(inputs[0], last["value"])):
                gaps.append(f"between {last['name']} and {name}")
        return hook

    def after(name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            calls[id(module)] = calls.get(id(module), 0) + 1
            if isinstance(output, torch.Tensor):
                last["value"], last["name"] = output.detach().clone(), name
        return hook

    handles = [m.register_forward_pre_hook(before(name)) for name, m in modules]
    handles += [m.register_forward_hook(after(name)) for name, m in modules]
    modes = [(m, m.training) for m in model.modules()]
    try:  # eval mode, so that no BatchNorm statistics change
        with torch.no_grad():
            out = model.eval()(x0)
    except _InputShapeError:
        raise
    except (RuntimeError, ValueError, IndexError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"the model cannot run on x of shape {tuple(x.shape)}: {first}") from error
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes:
            m.training = training
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the model must return (N, classes) logits, got {shape} for a batch of 1")
    if not gaps and not _same_values(out, last["value"]):
        gaps.append(f"between {last['name']} and the model's output")
    result = ForwardTrace(int(out.shape[1]),
                          tuple(name for name, m in modules if calls.get(id(m), 0) > 1),
                          gaps[0] if gaps else None)
    _TRACE_CACHE[model] = (key, result)
    return result


def reused_modules(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Names of the leaf modules that one forward pass of ``model`` calls more than once
    (:func:`trace`)."""
    return list(trace(model, x).reused)


def num_outputs(model: nn.Module, x: torch.Tensor) -> int:
    """Number of logits of ``model`` on inputs shaped like ``x`` (one cached forward pass)."""
    return trace(model, x).outputs


def prepare(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Check ``model`` and ``x`` (:func:`check_input`) and return ``target`` as ``(N,)`` long.

    The one preamble of :func:`explain` and of every metric in :mod:`xaikit.evaluation`.
    """
    check_input(model, x)
    return as_target(target, x.shape[0], num_outputs(model, x)).to(x.device)


def check_propagation(model: nn.Module, x: torch.Tensor, method: str) -> None:
    """Raise a ValueError if ``method`` cannot see every operation of ``model``'s forward pass.

    Propagation methods replace the backward pass of each leaf layer, so the model must be
    the plain composition of its leaf modules: a module object called twice (zennit silently
    returns a wrong answer, about 50 % relative error measured, and captum raises) or an
    operation outside the modules (``F.relu`` in ``forward``: guided backprop would return the
    plain gradient; ``F.adaptive_avg_pool2d``: LRP about 15x off) is refused.
    """
    check_layers(model, method)
    found = trace(model, x)
    if found.reused:
        raise ValueError(
            f"method {method!r} cannot explain a model that calls a module more than once in "
            f"forward: {', '.join(found.reused)}; give every use its own module object "
            "(e.g. one nn.ReLU per activation)")
    if found.unseen is not None:
        raise ValueError(
            f"method {method!r} needs a forward pass made of module calls only, but the model "
            f"computes something outside its modules {found.unseen} (e.g. torch.nn.functional."
            "relu or a pooling function in forward); use the module (nn.ReLU(), "
            "nn.AdaptiveAvgPool2d(...)) instead")


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
    if info.gradients and torch.is_inference_mode_enabled():
        raise RuntimeError(f"method {method!r} needs autograd, but it was called inside "
                           "torch.inference_mode(); call xaikit.explain outside that block")
    if info.propagation:
        check_propagation(model, x, method)
    return info.fn(model, x, target, **options)


def explain(model: nn.Module, x: torch.Tensor, target: Target, method: str,
            **options) -> torch.Tensor:
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

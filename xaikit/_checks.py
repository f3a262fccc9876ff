"""Checks shared by the methods and metrics: models, inputs, targets and option values.

:func:`prepare` is the one preamble of :func:`xaikit.explain` and of every metric: it checks the
model and ``x`` (:func:`check_input`), runs the model once on one sample (:func:`trace`, cached)
to learn the number of logits and how the forward pass uses its modules, and returns the
target as an ``(N,)`` long tensor. Propagation methods also pass :func:`check_propagation`.

Each function raises a ``TypeError`` (wrong kind of value) or a ``ValueError`` (right kind,
out of range or not finite) whose message names the option, the value received and what is
allowed. Python's ``bool`` is rejected where a number is expected (``True`` is an ``int``).
"""
from __future__ import annotations

import math
import numbers
import weakref
from dataclasses import dataclass
from typing import Any, Collection, Sequence, Union

import torch
from torch import nn

from .layers import SUPPORTED_LAYERS, leaf_modules

__all__ = ["ForwardTrace", "Target", "as_target", "check_bool", "check_choice", "check_eval_mode",
           "check_input", "check_int", "check_layers", "check_propagation", "check_real",
           "check_seed", "num_outputs", "prepare", "reused_modules", "trace"]

Target = Union[int, Sequence[int], torch.Tensor]
"""The explained class: one int for the whole batch, or one int per sample."""


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in the interval given by ``low``/``high``.

    ``low_open``/``high_open`` exclude the bound itself (``low=0, low_open=True``: ``> 0``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name} must be {' and '.join(s for s in (left, right) if s)}, "
                         f"got {value!r}")
    return value


def check_int(name: str, value: Any, low: int | None = 1, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (``None``: unbounded on that side)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bound = (f"in [{low}, {high}]" if low is not None and high is not None
                 else f">= {low}" if low is not None else f"<= {high}")
        raise ValueError(f"{name} must be an int {bound}, got {value!r}")
    return value


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed for ``torch.Generator.manual_seed``: an int >= 0 (a float seed is a TypeError)."""
    return check_int(name, value, low=0)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (not a truthy string or number)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Collection[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


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
    for name, module in leaf_modules(model):
        if not isinstance(module, SUPPORTED_LAYERS):
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
    modules = [(name or "<model>", m) for name, m in leaf_modules(model)]
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

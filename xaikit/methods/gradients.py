"""Gradient-based attributions: Gradient, Gradient x Input, Integrated Gradients, SmoothGrad,
Deconvnet and Guided Backprop.

All of them start from the gradient of the explained logit ``f_t`` with respect to the input:

    gradient            R = df_t/dx                                   (sensitivity, signed)
    gradient_x_input    R = x * df_t/dx
    integrated_gradients R = (x - x0) * int_0^1 df_t/dx (x0 + a (x - x0)) da
    smoothgrad          R = (1/T) sum_s  M(x + eps_s),  eps_s ~ N(0, sigma^2)
    deconvnet           backward pass with ReLU'(.) replaced by relu(grad_out)
    guided_backprop     backward pass with ReLU'(.) replaced by 1{x > 0} relu(grad_out)

Integrated Gradients satisfies completeness, ``sum R = f_t(x) - f_t(x0)``, up to the error of
the quadrature; for a bias-free ReLU network and ``x0 = 0`` it equals Gradient x Input.

References
----------
Simonyan, Vedaldi, Zisserman (2014), "Deep Inside Convolutional Networks", ICLR workshop.
Shrikumar, Greenside, Shcherbina, Kundaje (2016), "Not Just a Black Box", arXiv:1605.01713.
Sundararajan, Taly, Yan (2017), "Axiomatic Attribution for Deep Networks", ICML.
Smilkov, Thorat, Kim, Viegas, Wattenberg (2017), "SmoothGrad: removing noise by adding noise".
Zeiler, Fergus (2014), "Visualizing and Understanding Convolutional Networks", ECCV.
Springenberg, Dosovitskiy, Brox, Riedmiller (2015), "Striving for Simplicity", ICLR workshop.

Introduced in notebooks 03_gradients (gradient, Gradient x Input, IG), 05_smoothgrad and
10_gradcam (Deconvnet, Guided Backprop).
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch
from torch import nn

from .._checks import check_int, check_real, check_seed
from ..references import Baseline, resolve_baseline
from ._registry import method_info, register, run_method

__all__ = ["deconvnet", "gradient", "gradient_x_input", "guided_backprop",
           "integrated_gradients", "smoothgrad"]


def _logit_gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    inputs = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(inputs)
        selected = logits.gather(1, target.view(-1, 1).to(logits.device)).sum()
        (grad,) = torch.autograd.grad(selected, inputs)
    return grad.detach()


@register("gradient")
def gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Signed gradient of the target logit (sensitivity map).

    Hand-written (three lines of autograd): captum's ``Saliency`` takes absolute values by
    default, which drops the sign; ``Saliency(abs=False)`` gives the same result.
    Only the input's gradient is computed (``torch.autograd.grad``), so parameters that require
    grad get no ``.grad``.

    Parameters
    ----------
    model : nn.Module
        Classifier (eval mode).
    x : torch.Tensor
        ``(N, C, H, W)`` float input.
    target : torch.Tensor
        ``(N,)`` long tensor of explained classes.

    Returns
    -------
    torch.Tensor
        ``df_t/dx`` shaped like ``x`` (logit units per input unit).

    References
    ----------
    Simonyan, Vedaldi, Zisserman (2014). Introduced in notebook 03_gradients.
    """
    return _logit_gradient(model, x, target)


@register("gradient_x_input")
def gradient_x_input(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient x Input, ``R = x * df_t/dx`` (``(N, C, H, W)``, logit units).

    Equals LRP-0 on a ReLU network and IG with a zero baseline on a bias-free ReLU network.

    References
    ----------
    Shrikumar et al. (2016), arXiv:1605.01713. Introduced in notebook 03_gradients.
    """
    return x.detach() * _logit_gradient(model, x, target)


@register("integrated_gradients")
def integrated_gradients(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
                         baseline: Baseline = None, steps: int = 32,
                         batch_size: int = 16) -> torch.Tensor:
    """Integrated Gradients with Gauss-Legendre quadrature (captum ``IntegratedGradients``).

    Parameters
    ----------
    model, x, target
        As for :func:`gradient`; ``x`` is ``(N, C, H, W)``.
    baseline : None, float, torch.Tensor, "black" or "blur"
        Reference ``x0``: ``None`` zeros, a constant, a tensor broadcastable to ``x``, the model
        spec's black pixel or the Gaussian-blurred image (:func:`xaikit.references.resolve_baseline`).
    steps : int
        Quadrature points along the straight path. Completeness converges slowly on VGG-16
        (error 1.7e-2 at 32, 3.3e-3 at 128, 1.2e-4 at 512): check ``attr.sum()``.
    batch_size : int
        Most samples per forward pass (``N x steps`` are needed); captum's
        ``internal_batch_size``, rounded down to a multiple of ``N``.

    Returns
    -------
    torch.Tensor
        ``R`` shaped like ``x`` with ``R[k].sum() ~= f(x)[k, t_k] - f(x0)[k, t_k]``.

    Notes
    -----
    Never use captum's ``method="riemann_trapezoid"``: its weights sum to ``1 - 1/steps``.

    References
    ----------
    Sundararajan, Taly, Yan (2017), ICML. Introduced in notebook 03_gradients.
    """
    from captum.attr import IntegratedGradients

    check_int("steps", steps)
    check_int("batch_size", batch_size)
    x0 = resolve_baseline(model, x, baseline)
    n = x.shape[0]
    chunk = max(n, (batch_size // n) * n)
    attr = IntegratedGradients(model).attribute(
        x.detach(), baselines=x0, target=target, n_steps=steps, method="gausslegendre",
        internal_batch_size=chunk)
    return attr.detach()


@register("smoothgrad")
def smoothgrad(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
               base: str = "gradient", noise: float = 0.15, noise_unit: str = "range",
               samples: int = 16, seed: int = 0, base_options: dict | None = None,
               batch_size: int = 64) -> torch.Tensor:
    """SmoothGrad: the average of a base attribution over noisy copies of the input.

    ``R = (1/T) sum_s M(x + eps_s)`` with ``eps_s ~ N(0, sigma^2)`` and, per sample ``k``,
    ``sigma = noise x (max(x_k) - min(x_k))`` (``noise_unit="range"``, the paper's convention)
    or ``sigma = noise x std(x_k)`` (``noise_unit="std"``, as on the tutorial slides: "noise =
    0.5 std"). Written by hand rather than with captum's
    ``NoiseTunnel`` so that any registered method can be the base and the noise comes from
    private ``torch.Generator``s, one per sample seeded with ``seed`` (the global random state
    is untouched, and a batch equals single calls). For a base that
    multiplies by the input (``gradient_x_input``) the noisy input is used, as in captum.

    Parameters
    ----------
    model, x, target
        As for :func:`gradient`; ``x`` is ``(N, C, H, W)``.
    base : str
        Any registered method except ``"smoothgrad"`` (default ``"gradient"``). For
        ``"lrp"`` the z^B bounds are widened to contain each noisy copy (:func:`_box_around`).
    noise : float
        Noise std ``sigma`` in units of ``noise_unit`` (paper: 0.1-0.2 of the range works best).
    noise_unit : {"range", "std"}
        ``"range"`` (default): ``sigma = noise x (max - min)`` of each sample's values, the
        paper's "noise level" ``sigma / (x_max - x_min)``. ``"std"``: ``sigma = noise x`` the
        standard deviation of each sample's values (all channels and pixels; population std,
        ``x_k.std(correction=0)``). On a normalised photo one std is typically 15-30 % of the
        range, so 0.5-1.0 std is about the paper's 10-20 %.
    samples : int
        Number ``T`` of noisy copies; the noise falls at best like ``1/sqrt(T)``.
    seed : int
        Seed of the private generator; the same seed gives the same result.
    base_options : dict, optional
        Options passed to the base method (checked like :func:`xaikit.explain`'s options).
    batch_size : int
        Most noisy images per call of the base method (the copies are batched; default 64).

    Returns
    -------
    torch.Tensor
        Shaped like ``x``, in the base method's units.

    References
    ----------
    Smilkov et al. (2017), arXiv:1706.03825. Introduced in notebook 05_smoothgrad.
    """
    if not isinstance(base, str) or base == "smoothgrad":
        raise ValueError(f"base must be the name of another method, got {base!r}")
    method_info(base)  # ValueError for an unknown name
    check_int("samples", samples)
    check_int("batch_size", batch_size)
    check_real("noise", noise, low=0)
    if not isinstance(noise_unit, str):
        raise TypeError(f"noise_unit must be 'range' or 'std', got {noise_unit!r}")
    if noise_unit not in ("range", "std"):
        raise ValueError(f"noise_unit must be 'range' (sigma = noise x (max - min) of each input, "
                         f"the paper's) or 'std' (sigma = noise x the input's standard "
                         f"deviation, the slides'), got {noise_unit!r}")
    check_seed(seed)
    if base_options is not None and not isinstance(base_options, Mapping):
        raise TypeError(f"base_options must be a dict of the base method's options, e.g. "
                        f"{{'steps': 16}}, got {base_options!r}")
    options = dict(base_options or {})
    x = x.detach()
    flat = x.reshape(x.shape[0], -1)
    scale = (flat.max(1).values - flat.min(1).values if noise_unit == "range"
             else flat.std(1, correction=0))
    sigma = (noise * scale).view(-1, *[1] * (x.dim() - 1))
    # one generator per sample, so that a batch gives the same noise as single calls
    generators = [torch.Generator(device=x.device).manual_seed(seed) for _ in range(len(x))]
    total = torch.zeros_like(x)
    per_call = max(1, batch_size // len(x))  # noisy copies of the whole batch per base call
    for start in range(0, samples, per_call):
        count = min(per_call, samples - start)
        eps = torch.stack([torch.stack([torch.randn(x.shape[1:], generator=g, dtype=x.dtype,
                                                    device=x.device) for g in generators])
                           for _ in range(count)])                     # (count, N, ...)
        noisy = (x + sigma * eps).flatten(0, 1)
        if base == "lrp":
            options = _box_around(model, noisy, base_options or {})
        out = run_method(model, noisy, target.repeat(count), base, options)
        total += out.view(count, *x.shape).sum(0)
    return total / samples


def _box_around(model: nn.Module, noisy: torch.Tensor, lrp_options: Mapping) -> dict:
    """LRP options whose z^B bounds contain the noisy copies.

    The z^B rule needs ``low <= x <= high``; noise pushes pixels outside the normalised pixel
    box, so each bound is widened elementwise to include the noisy value (a valid z^B box for
    that input). Bounds come from ``lrp_options`` or the model's spec; without either, LRP
    itself says that rule ``zb`` needs them.
    """
    options = dict(lrp_options)
    spec = getattr(model, "xaikit_spec", None)
    low, high = options.get("low"), options.get("high")
    low = spec.low if low is None and spec is not None else low
    high = spec.high if high is None and spec is not None else high
    if low is not None and high is not None:
        low, high = (torch.as_tensor(v, dtype=noisy.dtype, device=noisy.device)
                     for v in (low, high))
        options["low"] = torch.minimum(low, noisy)
        options["high"] = torch.maximum(high, noisy)
    return options


def _modified_relu_backward(model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                            attribution_cls: type) -> torch.Tensor:
    inputs = x.detach().clone().requires_grad_(True)
    with warnings.catch_warnings():  # captum warns that it sets (and removes) ReLU hooks
        warnings.simplefilter("ignore", UserWarning)
        attr = attribution_cls(model).attribute(inputs, target=target)
    return attr.detach()


@register("deconvnet", propagation=True)
def deconvnet(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deconvnet: backward pass that applies ReLU to the backward signal at every ReLU.

    Max-pooling routes to the forward winner (the "switches"), convolutions are transposed
    (their gradient); at each ``nn.ReLU`` the signal becomes ``relu(grad_out)``, ignoring the
    forward activation. captum ``Deconvolution`` (hooks removed afterwards, also on error);
    every ReLU must be an ``nn.ReLU`` module. Returns ``(N, C, H, W)``. Where the last dense
    layer follows a ReLU (VGG-16), the class enters only through the positive part of its row of
    that layer's weights, so the maps of two classes correlate far more than their gradients
    (notebook 10 measures 0.72 on ``vgg16-shapes``, the gradients -0.89; Guided Backprop
    0.94).

    References
    ----------
    Zeiler, Fergus (2014), ECCV. Introduced in notebook 10_gradcam.
    """
    from captum.attr import Deconvolution

    return _modified_relu_backward(model, x, target, Deconvolution)


@register("guided_backprop", propagation=True)
def guided_backprop(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Guided Backprop: the gradient with ``1{x > 0} * relu(grad_out)`` at every ReLU.

    Combines the gradient's forward mask with Deconvnet's rectified backward signal.
    captum ``GuidedBackprop`` (hooks removed afterwards, also on error); every ReLU must be an
    ``nn.ReLU`` module. Returns ``(N, C, H, W)``.

    References
    ----------
    Springenberg et al. (2015), ICLR workshop. Introduced in notebook 10_gradcam.
    """
    from captum.attr import GuidedBackprop

    return _modified_relu_backward(model, x, target, GuidedBackprop)

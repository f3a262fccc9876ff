"""Grad-CAM and Guided Grad-CAM: class activation maps from a convolutional layer's gradients.

For the activations ``A^k`` (``K`` maps of ``h x w``) of a convolutional layer,

    alpha_k = (1 / hw) sum_ij  d f_t / d A^k_ij        (global average of the gradient)
    L       = ReLU( sum_k alpha_k A^k )                 (``h x w``, logit units)

upsampled bilinearly to the input size. Guided Grad-CAM multiplies the upsampled map with
Guided Backprop. The default layer is the model's last ``nn.Conv2d`` (``features.28`` on both
VGG-16 models): the deepest layer localizes best.

References
----------
Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra (2017), "Grad-CAM: Visual Explanations from
Deep Networks via Gradient-based Localization", ICCV.

Introduced in notebook 08_gradcam.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_bool, reused_modules
from ._registry import register
from .gradients import guided_backprop

__all__ = ["default_layer", "gradcam", "gradcam_map", "guided_gradcam", "resolve_layer"]


def default_layer(model: nn.Module) -> str:
    """Name of the last ``nn.Conv2d`` in ``model`` (``"features.28"`` on VGG-16)."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise ValueError("Grad-CAM needs a convolutional layer; the model has no nn.Conv2d")
    return names[-1]


def resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> tuple[str, nn.Module]:
    """``(name, module)`` of a layer given by name, by module or ``None`` (the default)."""
    modules = dict(model.named_modules())
    if layer is None:
        layer = default_layer(model)
    if isinstance(layer, nn.Module):
        names = [name for name, m in modules.items() if m is layer]
        if not names:
            raise ValueError(f"layer {type(layer).__name__} is not a submodule of the model")
        layer = names[0]
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a module name such as 'features.28', got {layer!r}")
    if layer not in modules or layer == "":
        convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
        raise ValueError(f"no layer named {layer!r}; convolutional layers: {', '.join(convs)}")
    return layer, modules[layer]


def gradcam_map(model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                layer: str | nn.Module | None = None, relu: bool = True) -> torch.Tensor:
    """The Grad-CAM map at the layer's resolution, ``(N, 1, h, w)``.

    Hand-written (a dozen lines; it is the formula the notebook teaches): a forward hook keeps
    the layer output ``A`` and hands a copy on, so an in-place ``ReLU`` after the convolution
    (torchvision's VGG) cannot overwrite it; only ``d f_t / d A`` is computed.
    """
    check_bool("relu", relu)
    name, module = resolve_layer(model, layer)
    if name in reused_modules(model, x):
        raise ValueError(f"layer {name} is called more than once in forward; Grad-CAM needs a "
                         "layer with one output")
    saved: list[torch.Tensor] = []

    def keep(mod: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        saved.append(output)
        return output.clone()

    handle = module.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            inputs = x.detach().clone().requires_grad_(True)
            logits = model(inputs)
            if not saved or saved[0].dim() != 4:
                raise ValueError(f"layer {name} must output (N, K, h, w) feature maps")
            selected = logits.gather(1, target.view(-1, 1).to(logits.device)).sum()
            (grad,) = torch.autograd.grad(selected, saved[0])
    finally:
        handle.remove()
    alpha = grad.mean(dim=(2, 3), keepdim=True)                    # (N, K, 1, 1)
    cam = (alpha * saved[0].detach()).sum(dim=1, keepdim=True)     # (N, 1, h, w)
    return (cam.clamp(min=0) if relu else cam).detach()


def _upsample(cam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    up = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return up.expand_as(x).to(dtype=x.dtype).contiguous()


@register("gradcam")
def gradcam(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
            layer: str | nn.Module | None = None, relu: bool = True) -> torch.Tensor:
    """Grad-CAM, upsampled bilinearly and spread equally over the input channels.

    Parameters
    ----------
    model : nn.Module
        Classifier (eval mode).
    x : torch.Tensor
        ``(N, C, H, W)`` float input.
    target : torch.Tensor
        ``(N,)`` long tensor of explained classes.
    layer : str or nn.Module, optional
        Module name (``"features.28"``); default: the last ``nn.Conv2d``.
    relu : bool
        Apply the paper's ReLU (default). ``False`` gives the signed map (captum
        ``LayerGradCam``'s default, ``relu_attributions=False``).

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``: the ``H x W`` map divided equally over the ``C`` channels, so the
        channel sum (the heatmap of :func:`xaikit.plot_heatmap`) is the map. Not conservative.

    References
    ----------
    Selvaraju et al. (2017), ICCV. Introduced in notebook 08_gradcam.
    """
    return _upsample(gradcam_map(model, x, target, layer, relu), x) / x.shape[1]


@register("guided_gradcam", propagation=True)
def guided_gradcam(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
                   layer: str | nn.Module | None = None) -> torch.Tensor:
    """Guided Grad-CAM: Guided Backprop times the bilinearly upsampled (rectified) Grad-CAM.

    Equals captum ``GuidedGradCam(model, layer).attribute(x, target,
    interpolate_mode="bilinear")``; captum's default is nearest-neighbour upsampling, the
    paper's is bilinear.

    Parameters
    ----------
    model, x, target, layer
        As for :func:`gradcam`.

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``, shaped like ``x``.

    References
    ----------
    Selvaraju et al. (2017), ICCV. Introduced in notebook 08_gradcam.
    """
    cam = _upsample(gradcam_map(model, x, target, layer, relu=True), x)
    return guided_backprop(model, x, target) * cam

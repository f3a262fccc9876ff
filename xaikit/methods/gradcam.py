"""Grad-CAM and Guided Grad-CAM: class activation maps from a convolutional layer's gradients.

For the activations ``A^k`` (``K`` maps of ``h x w``) of a convolutional layer,

    alpha_k = (1 / hw) sum_ij  d f_t / d A^k_ij        (global average of the gradient)
    L       = ReLU( sum_k alpha_k A^k )                 (``h x w``, logit units)

upsampled bilinearly to the input size. Guided Grad-CAM multiplies the upsampled map with
Guided Backprop. The default ``A`` is what the authors' code uses: the rectified feature maps of
the last convolutional layer, i.e. the output of the ``nn.ReLU`` that follows the model's last
``nn.Conv2d`` (``features.29``, "relu5_3", on both VGG-16 models); see :func:`default_layer`.
``layer="features.28"`` gives the maps of the convolution's output before that ReLU, whose
negative entries enter the weighted sum too (notebook 10 compares the two).

References
----------
Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra (2017), "Grad-CAM: Visual Explanations from
Deep Networks via Gradient-based Localization", ICCV.

Introduced in notebook 10_gradcam.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_bool, reused_modules
from ..layers import leaf_modules
from ._registry import register
from .gradients import guided_backprop

__all__ = ["default_layer", "gradcam", "gradcam_map", "guided_gradcam", "resolve_layer"]


def _last_conv_and_relu(model: nn.Module) -> tuple[tuple[str, nn.Module],
                                                     tuple[str, nn.Module] | None]:
    """``(name, module)`` of the model's last ``nn.Conv2d`` and of the leaf module registered
    right after it if that is an ``nn.ReLU`` (else ``None``); the registration order only."""
    leaves = leaf_modules(model)
    convs = [i for i, (_, m) in enumerate(leaves) if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a convolutional layer; the model has no nn.Conv2d")
    last = convs[-1]
    if last + 1 == len(leaves) or not isinstance(leaves[last + 1][1], nn.ReLU):
        return leaves[last], None
    return leaves[last], leaves[last + 1]


def default_layer(model: nn.Module, x: torch.Tensor | None = None) -> str:
    """Grad-CAM's default layer: the rectified maps of the last convolution.

    The ``nn.ReLU`` registered right after the model's last ``nn.Conv2d`` (``"features.29"`` on
    VGG-16), as in the authors' code ("relu5_3"). Falls back to that ``nn.Conv2d`` itself
    (its pre-ReLU output) when the next leaf module is not an ``nn.ReLU`` (e.g. BatchNorm in
    between, or ``F.relu`` in ``forward``) and, given an input ``x``, when one forward pass on
    ``x[:1]`` shows that the ReLU is not applied exactly once, directly to the convolution's
    output (a shared ``nn.ReLU`` object, or one registered out of order). Pass ``layer=`` to
    choose another layer. (:func:`gradcam_map` makes the same choice inside its own forward
    pass, without this extra one.)

    Raises
    ------
    ValueError
        The model has no ``nn.Conv2d``.
    """
    (conv_name, conv), after = _last_conv_and_relu(model)
    if after is None:
        return conv_name
    relu_name, relu = after
    if x is not None and not _rectifies(model, conv, relu, x):
        return conv_name
    return relu_name


class _Feed:
    """Forward hooks that keep what chosen layers return and check one data flow: whether
    ``relu`` is called exactly once, on the very tensor that ``conv`` handed on (the same
    object: no operation in between).

    ``keep=True`` makes each hooked layer hand a copy of its output on (see
    :func:`gradcam_map`), so the kept output is the layer's own whatever in-place operation
    comes next; the check then follows the copy that ``conv`` handed on.
    """

    def __init__(self, layers: dict[str, nn.Module], conv: nn.Module | None = None,
                 relu: nn.Module | None = None, keep: bool = False) -> None:
        self.kept: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
        self.fed: list[bool] = []
        self._from_conv: torch.Tensor | None = None
        self._handles = []
        for name, module in layers.items():
            self._handles.append(module.register_forward_hook(self._keeper(name, module is conv, keep)))
        if conv is not None and conv not in layers.values():
            self._handles.append(conv.register_forward_hook(self._keeper(None, True, False)))
        if relu is not None:
            self._handles.append(relu.register_forward_pre_hook(self._check))

    def _keeper(self, name: str | None, is_conv: bool, keep: bool):
        def hook(module: nn.Module, inputs, output):
            if name is not None:
                self.kept[name].append(output)
            handed_on = output.clone() if keep else output
            if is_conv:
                self._from_conv = handed_on
            return handed_on if keep else None
        return hook

    def _check(self, module: nn.Module, inputs) -> None:
        self.fed.append(bool(inputs) and inputs[0] is self._from_conv)

    @property
    def rectifies(self) -> bool:
        return self.fed == [True]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _rectifies(model: nn.Module, conv: nn.Module, relu: nn.Module, x: torch.Tensor) -> bool:
    """Whether one forward pass on ``x[:1]`` calls ``relu`` exactly once, on the tensor that
    ``conv`` returned (the same object: no operation in between)."""
    feed = _Feed({}, conv, relu)
    try:
        with torch.no_grad():
            model(x[:1].detach())
    finally:
        feed.remove()
    return feed.rectifies


def resolve_layer(model: nn.Module, layer: str | nn.Module | None,
                  x: torch.Tensor | None = None) -> tuple[str, nn.Module]:
    """``(name, module)`` of a layer given by name, by module or ``None`` (the default,
    :func:`default_layer` of ``model`` and ``x``)."""
    modules = dict(model.named_modules())
    if layer is None:
        layer = default_layer(model, x)
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


def _check_not_reused(name: str, reused: list[str]) -> None:
    if name in reused:
        raise ValueError(f"layer {name} is called more than once in forward; Grad-CAM needs a "
                         "layer with one output")


def gradcam_map(model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                layer: str | nn.Module | None = None, relu: bool = True) -> torch.Tensor:
    """The Grad-CAM map at the layer's resolution, ``(N, 1, h, w)``.

    Hand-written (a dozen lines; it is the formula the notebook teaches): a forward hook keeps
    the layer output ``A`` and hands a copy on; only ``d f_t / d A`` is computed. ``layer``
    defaults to :func:`default_layer` (the rectified maps of the last convolution); that
    choice is made in the same forward pass, which keeps both the convolution's and its
    ReLU's output and checks that the ReLU rectifies the convolution's output, so a call costs
    one forward pass (plus the model's cached trace, :func:`xaikit._checks.trace`).
    """
    check_bool("relu", relu)
    reused = reused_modules(model, x)          # cached per model and input shape
    conv = after = None
    if layer is None:
        (conv_name, conv), after = _last_conv_and_relu(model)
        layers = {conv_name: conv} if after is None else {conv_name: conv, after[0]: after[1]}
    else:
        name, module = resolve_layer(model, layer)
        _check_not_reused(name, reused)
        layers = {name: module}

    # torchvision's ReLUs are in-place (inplace=True). A forward hook on the in-place ReLU
    # itself (the default layer) is safe: its output is an ordinary node of the graph, and
    # d f_t / d A through it equals that of a non-in-place copy (measured, float64, to the
    # last bit). Two things do break: a backward hook on an in-place module raises ("Output 0
    # of BackwardHookFunction is a view and is being modified inplace"), so none is used; and
    # the kept A of a convolution followed by an in-place ReLU (``layer="features.28"``) is
    # rectified in place by that ReLU, silently giving the wrong map. Handing a copy on keeps
    # A as the layer returned it, whatever in-place operation comes next.
    feed = _Feed(layers, conv, after[1] if after is not None else None, keep=True)
    try:
        with torch.enable_grad():
            inputs = x.detach().clone().requires_grad_(True)
            logits = model(inputs)
            if layer is None:
                name = after[0] if after is not None and feed.rectifies else conv_name
                _check_not_reused(name, reused)
            saved = feed.kept[name]
            if not saved or saved[0].dim() != 4:
                raise ValueError(f"layer {name} must output (N, K, h, w) feature maps")
            selected = logits.gather(1, target.view(-1, 1).to(logits.device)).sum()
            (grad,) = torch.autograd.grad(selected, saved[0])
    finally:
        feed.remove()
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
        Module name (``"features.28"``) or module. Default: the rectified maps of the last
        convolution, as in the authors' code (the ``nn.ReLU`` after the last ``nn.Conv2d``:
        ``"features.29"`` on VGG-16; the convolution itself when no ReLU module directly
        follows it, see :func:`default_layer`). ``"features.28"`` gives the pre-ReLU maps.
    relu : bool
        Apply the paper's ReLU to the weighted sum (default). ``False`` gives the signed map (captum
        ``LayerGradCam``'s default, ``relu_attributions=False``).

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``: the ``H x W`` map divided equally over the ``C`` channels, so the
        channel sum (the heatmap of :func:`xaikit.plot_heatmap`) is the map. Not conservative.

    References
    ----------
    Selvaraju et al. (2017), ICCV. Introduced in notebook 10_gradcam.
    """
    return _upsample(gradcam_map(model, x, target, layer, relu), x) / x.shape[1]


@register("guided_gradcam", propagation=True)
def guided_gradcam(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
                   layer: str | nn.Module | None = None) -> torch.Tensor:
    """Guided Grad-CAM: Guided Backprop times the bilinearly upsampled (rectified) Grad-CAM.

    Equals captum ``GuidedGradCam(model, layer).attribute(x, target,
    interpolate_mode="bilinear")`` at the same ``layer``; captum's default is nearest-neighbour
    upsampling, the paper's is bilinear.

    Parameters
    ----------
    model, x, target, layer
        As for :func:`gradcam` (the same default layer: the rectified maps of the last
        convolution, ``features.29`` on VGG-16).

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``, shaped like ``x``.

    References
    ----------
    Selvaraju et al. (2017), ICCV. Introduced in notebook 10_gradcam.
    """
    cam = _upsample(gradcam_map(model, x, target, layer, relu=True), x)
    return guided_backprop(model, x, target) * cam

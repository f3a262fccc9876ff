"""The layers that every propagation method handles, in one place (cf. zennit's ``types.py``).

LRP (:mod:`xaikit.methods.lrp`), DeepLIFT (:mod:`xaikit.methods.deeplift`), Deconvnet and
Guided Backprop walk a network layer by layer, so they accept only models made of these leaf
modules; :func:`xaikit._checks.check_layers` names the first other one. The groups below say
how each kind of layer is treated.
"""
from __future__ import annotations

from torch import nn

__all__ = ["ACTIVATIONS", "AVERAGE_POOLINGS", "BATCHNORMS", "IDENTITIES", "LINEAR_LAYERS", "POOLINGS",
           "SUPPORTED_LAYERS", "leaf_modules", "sequential_layers"]

LINEAR_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv2d)
"""Layers with weights: each gets a propagation rule (LRP) or the linear rule (DeepLIFT)."""
ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.ReLU,)
"""Element-wise nonlinearities (LRP passes relevance through; DeepLIFT's Rescale/RevealCancel)."""
AVERAGE_POOLINGS: tuple[type[nn.Module], ...] = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
"""Average poolings: linear maps without weights to learn."""
POOLINGS: tuple[type[nn.Module], ...] = (nn.MaxPool2d,) + AVERAGE_POOLINGS
"""Poolings: max-pooling (winner or average, LRP) and average pooling (a linear map)."""
IDENTITIES: tuple[type[nn.Module], ...] = (nn.Flatten, nn.Dropout, nn.Identity)
"""Layers that change no value in eval mode (Dropout) or only the shape (Flatten)."""
BATCHNORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm2d,)
"""Folded into the preceding convolution before propagating (canonization)."""

SUPPORTED_LAYERS: tuple[type[nn.Module], ...] = (
    LINEAR_LAYERS + ACTIVATIONS + POOLINGS + IDENTITIES + BATCHNORMS)
"""Leaf layers the propagation methods (LRP, DeepLIFT, Deconvnet, Guided Backprop) handle."""


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every module without children, in registration order (the
    model itself, named ``""``, when it has no children)."""
    return [(name, m) for name, m in model.named_modules() if next(m.children(), None) is None]


def sequential_layers(model: nn.Module) -> list[nn.Module]:
    """The leaf layers of ``model`` in the order its ``forward`` applies them.

    Walks ``nn.Sequential`` (nested ones too) and torchvision's ``VGG`` with its own ``forward``
    (``features``, ``avgpool``, a Flatten, ``classifier``): the from-scratch LRP and DeepLIFT
    loops of notebooks 06 and 07 run over this list. Any other structure is a ValueError: a
    silently wrong order would give a silently wrong explanation.
    """
    from torchvision.models import VGG

    if isinstance(model, VGG) and type(model).forward is VGG.forward:
        parts = [model.features, model.avgpool, nn.Flatten(1), model.classifier]
    elif isinstance(model, nn.Sequential):
        parts = list(model)
    else:
        raise ValueError(f"the layer-by-layer loops walk nn.Sequential models and torchvision's "
                         f"VGG; cannot follow the forward of {type(model).__name__}")
    layers: list[nn.Module] = []
    for part in parts:
        if isinstance(part, (nn.Sequential, VGG)):
            layers += sequential_layers(part)
        else:
            layers.append(part)
    return layers

"""LRP composites: which rule each Linear/Conv2d layer of a model uses.

A composite maps layer names (``"features.0"``) to rule names (:data:`xaikit.methods.lrp_rules.RULES`),
as zennit's ``NameMapComposite`` does. Named composites are registered in :data:`COMPOSITES`;
``xk.explain(..., "lrp", composite=...)`` also takes a mapping.

Introduced in notebook ``08_lrp_rules_vgg16``.

References
----------
Montavon et al. 2019, "Layer-wise relevance propagation: an overview" (LNCS 11700), Sec. 10.3
and the accompanying tutorial (rules by layer on VGG-16); Kohlbrenner et al. 2020, "Towards
best practice in explaining neural network decisions with LRP" (IJCNN).
"""
from __future__ import annotations

from typing import Callable, Mapping

from torch import nn

from .lrp_rules import RULES

__all__ = ["COMPOSITES", "resolve_rules", "vgg16_composite"]


def vgg16_composite(model: nn.Module) -> dict[str, str]:
    """The rule per layer recommended for VGG-16 (Montavon et al. 2019; the tutorial's table).

    Walking the layers in order: z^B on the first layer (pixels), LRP-gamma on the other
    convolutions of blocks 1-3 (before the third max-pool; torchvision's ``features.2`` to
    ``features.14``, the tutorial's ``l <= 16``), LRP-epsilon on the convolutions of blocks 4-5
    (``features.17`` to ``features.28``, ``17 <= l <= 30``) and LRP-0 on the dense layers
    (``classifier.*``, ``l >= 31``).

    Returns
    -------
    dict
        Layer name -> rule name, for every Linear and Conv2d layer.
    """
    rules: dict[str, str] = {}
    pools = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.MaxPool2d):
            pools += 1
        elif isinstance(module, nn.Conv2d):
            rules[name] = "gamma" if pools < 3 else "epsilon"
        elif isinstance(module, nn.Linear):
            rules[name] = "0"
    if not rules:
        raise ValueError("the model has no Linear or Conv2d layer to apply LRP rules to")
    rules[next(iter(rules))] = "zb"
    return rules


COMPOSITES: dict[str, Callable[[nn.Module], dict[str, str]]] = {"vgg16": vgg16_composite}
"""Named composites: a function of the model giving each layer's rule."""


def _check_rule(name: object, where: str) -> str:
    if name not in RULES:
        raise ValueError(f"unknown LRP rule {name!r} for {where}; choose one of "
                         + ", ".join(repr(r) for r in RULES))
    return name


def resolve_rules(model: nn.Module, rule: str | None,
                  composite: str | Mapping[str, str] | None) -> dict[str, str]:
    """Layer name -> rule name for every Linear/Conv2d layer of ``model``.

    ``rule`` alone: that rule everywhere. ``composite`` a name in :data:`COMPOSITES`: its
    recipe (``rule`` must then be None). ``composite`` a mapping: its rules for the layers it
    names, ``rule`` (default ``"0"``) for the others. Neither: ``composite="vgg16"``.
    """
    if rule is None and composite is None:
        composite = "vgg16"
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if isinstance(composite, str):
        if composite not in COMPOSITES:
            raise ValueError(f"unknown composite {composite!r}; choose one of "
                             f"{', '.join(map(repr, COMPOSITES))} or pass a mapping")
        if rule is not None:
            raise ValueError(f"give rule= or composite={composite!r}, not both")
        return COMPOSITES[composite](model)
    if composite is not None and not isinstance(composite, Mapping):
        raise TypeError("composite must be a name or a mapping from layer names to rules, "
                        f"got {type(composite).__name__}")
    default = _check_rule("0" if rule is None else rule, "rule")
    mapping = dict(composite or {})
    for name, name_rule in mapping.items():
        if name not in layers:
            raise ValueError(f"composite names {name!r}, which is not a Linear or Conv2d layer "
                             f"of the model; its layers: {', '.join(layers)}")
        _check_rule(name_rule, f"layer {name!r}")
    return {name: mapping.get(name, default) for name in layers}

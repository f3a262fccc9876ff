"""The metric registry: every score of :mod:`xaikit.evaluation` with its direction and paper.

:data:`METRICS` maps a name to a :class:`Metric`: a per-image score ``fn(model, x, target, attr,
masks, method, options, settings) -> (N,)``, whether higher is better, whether it needs object
masks, whether :func:`~xaikit.evaluation.evaluate` computes it by default, and the reference that
defines it. :func:`~xaikit.evaluation.evaluate` and :func:`~xaikit.evaluation.select` read it;
both import it from here (no cycle).

Introduced in notebook ``13_evaluation_sanity_localisation``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from ..explain import explain
from ..methods._registry import list_controls, method_info
from .complexity import complexity, roughness, sparseness
from .continuity import continuity
from .localisation import pointing_game, relevance_mass, relevance_rank
from .properties import conservation, positivity
from .randomisation import random_logit, randomised_models
from .robustness import local_lipschitz, max_sensitivity
from .selectivity import aopc, pixel_flipping
from .similarity import spearman

__all__ = ["CONTROLS", "METRICS", "Metric", "Settings", "with_seed"]

CONTROLS: tuple[str, ...] = tuple(list_controls())
"""The control methods (:mod:`xaikit.methods.controls`): ``center``, ``random``, ``uniform``."""


@dataclass(frozen=True)
class Settings:
    """Settings shared by the metrics of one :func:`evaluate` call (see its docstring)."""

    flip_steps: int = 16
    patch: int | None = None
    fill: float | str = 0.0
    shifts: tuple[int, ...] = (-1, 1)
    seed: int = 0
    bounds: tuple | None = None
    perturbations: int = 10


def with_seed(method: str, options: Mapping, seed: int) -> dict:
    """``options`` with ``seed`` added for a control that draws at random (``"random"``), so
    that :func:`evaluate`'s ``seed`` also fixes the control maps."""
    info = method_info(method)
    options = dict(options)
    if info.control and "seed" in info.options:
        options.setdefault("seed", seed)
    return options


@dataclass(frozen=True)
class Metric:
    """A score per image: ``fn(model, x, target, attr, masks, method, options, settings)``.

    ``higher_is_better``: the direction; ``needs_masks``: object masks are required;
    ``reference``: the paper (and definition) the score follows; ``default``: part of
    :func:`~xaikit.evaluation.evaluate`'s default metric list (False for the costly ones, which
    explain every image many more times: name them in ``metrics=``).
    """

    fn: Callable[..., torch.Tensor]
    higher_is_better: bool
    needs_masks: bool = False
    reference: str = ""
    default: bool = True


def _continuity(model, x, t, attr, masks, method, options, s):
    return continuity(model, x, t, method, shifts=s.shifts, fill=s.fill, attr=attr, **options)


def _randomised(model, x, t, attr, masks, method, options, s):
    for _, net in randomised_models(model, "cascading", s.seed):
        pass  # the last copy has every layer re-initialised
    return spearman(attr, explain(net, x, t, method, **options))


def _random_logit(model, x, t, attr, masks, method, options, s):
    return random_logit(model, x, t, method, class_seed=s.seed, similarity_name="spearman",
                        attr=attr, **options)


def _max_sensitivity(model, x, t, attr, masks, method, options, s):
    return max_sensitivity(model, x, t, method, noise_seed=s.seed, attr=attr, bounds=s.bounds,
                           perturbations=s.perturbations, **options)


def _local_lipschitz(model, x, t, attr, masks, method, options, s):
    return local_lipschitz(model, x, t, method, noise_seed=s.seed, attr=attr, bounds=s.bounds,
                           perturbations=s.perturbations, **options)


def _aopc(order: str):
    def fn(model, x, t, attr, masks, method, options, s):
        return aopc(pixel_flipping(model, x, attr, t, steps=s.flip_steps, patch=s.patch, fill=s.fill,
                                   order=order, seed=s.seed))
    return fn


MONTAVON = "Montavon, Samek, Müller (2018), Digital Signal Processing 73"
ARRAS = "Arras, Osman, Samek (2022), Information Fusion 81"

METRICS: dict[str, Metric] = {
    "conservation": Metric(lambda m, x, t, a, *_: conservation(m, x, a, t), False,
                           reference=MONTAVON + ", Definition 1"),
    "positivity": Metric(lambda m, x, t, a, *_: positivity(a), False,
                         reference=MONTAVON + ", Definition 4"),
    "continuity": Metric(_continuity, False, reference=MONTAVON + ", Definition 3"),
    "aopc_most_relevant": Metric(_aopc("most_relevant"), True,
                                 reference="Samek et al. (2017), IEEE TNNLS 28, eq. (12)"),
    "aopc_least_relevant": Metric(_aopc("least_relevant"), False,
                                  reference="Samek et al. (2017), IEEE TNNLS 28 (LeRF order)"),
    "relevance_mass": Metric(lambda m, x, t, a, k, *_: relevance_mass(a, k), True, True,
                             reference=ARRAS + " (relevance mass accuracy)"),
    "relevance_rank": Metric(lambda m, x, t, a, k, *r: relevance_rank(a, k, seed=r[-1].seed),
                             True, True, reference=ARRAS + " (relevance rank accuracy)"),
    "pointing_game": Metric(lambda m, x, t, a, k, *_: pointing_game(a, k), True, True,
                            reference="Zhang et al. (2018), IJCV 126"),
    "randomisation_spearman": Metric(_randomised, False,
                                     reference="Adebayo et al. (2018), NeurIPS"),
    "random_logit_spearman": Metric(_random_logit, False,
                                    reference="Sixt, Granz, Landgraf (2020), ICML"),
    "roughness": Metric(lambda m, x, t, a, *_: roughness(a), False,
                        reference="neighbour roughness (notebooks 05 and 08)"),
    "sparseness": Metric(lambda m, x, t, a, *_: sparseness(a), True,
                         reference="Chalasani et al. (2020), ICML (Gini index of |R|)"),
    "complexity": Metric(lambda m, x, t, a, *_: complexity(a), False,
                         reference="Bhatt, Weller, Moura (2020), IJCAI (entropy of |R| shares)"),
    "max_sensitivity": Metric(_max_sensitivity, False, default=False,
                              reference="Yeh et al. (2019), NeurIPS, eq. (2)"),
    "local_lipschitz": Metric(_local_lipschitz, False, default=False,
                              reference="Alvarez-Melis, Jaakkola (2018), arXiv:1806.08049"),
}
"""Metric name -> :class:`Metric`. ``conservation`` relative error, ``positivity`` share of
negative relevance, ``continuity`` (Montavon 2018), AOPC of pixel flipping most/least relevant
first, the three localisation scores (need masks), Spearman correlation to the explanation of
the fully (cascading) randomised model and to that of a random other class, the neighbour
``roughness``, the Gini ``sparseness`` and the entropy ``complexity`` of the heatmap, and (not
by default: ``perturbations`` (10) more explanations per image each) ``max_sensitivity`` and
``local_lipschitz`` under random input noise (their default radius, :func:`evaluate`'s
``perturbations`` noisy copies, ``seed`` as noise seed)."""

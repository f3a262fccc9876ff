"""Randomisation sanity checks: does the explanation depend on the model and on the class?

Model parameter randomisation (Adebayo et al. 2018): re-initialise the layers of a copy of the
model, either *cascading* from the output down (layer after layer stays random) or
*independently* (one layer at a time), explain again and compare with the original
explanation (:mod:`.similarity`); an explanation that stays similar ignores the model. The
random logit test (Sixt et al. 2020) explains a random other class instead.

The critique (Binder et al. 2023; Sundararajan and Taly 2018) is numerical, so all four
similarities are returned: with and without absolute values, rank correlation and SSIM.

Layers are re-initialised with their own ``reset_parameters()`` (PyTorch's default init) under
``torch.random.fork_rng`` seeded with ``seed + 1`` per layer, which is what Quantus's ``MPRT``
does (it calls ``torch.manual_seed(seed + 1)`` on the *global* generator and leaves it changed);
the global state is untouched here, and the same ``seed`` gives the same weights as Quantus.

References
----------
Adebayo et al. (2018), "Sanity checks for saliency maps", NeurIPS. Sixt, Granz, Landgraf (2020),
"When explanations lie", ICML (random logit). Binder et al. (2023), "Shortcomings of top-down
randomization-based sanity checks for evaluations of deep neural network explanations", CVPR.

Introduced in notebook ``13_evaluation_sanity_localisation``.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import torch
from torch import nn

from .._checks import check_seed, num_outputs, prepare
from ..explain import explain
from .similarity import SIMILARITIES, similarity

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RANDOMISATION_ORDERS", "random_logit", "randomisation_test", "randomised_models"]

RANDOMISATION_ORDERS = ("cascading", "independent")
"""Randomise the layers top-down cumulatively, or one at a time."""


def _reinit(module: nn.Module, seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        module.reset_parameters()


def randomised_models(model: nn.Module, order: str = "cascading",
                      seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(layer name, randomised copy)`` from the output layer down.

    Parameters
    ----------
    model : torch.nn.Module
        Left unchanged (a deep copy is randomised).
    order : {"cascading", "independent"}
        ``"cascading"``: each copy has this and every layer above re-initialised (one copy,
        re-used: keep no reference past the next step). ``"independent"``: only this layer.
    seed : int
        Every re-initialised layer draws from ``torch.manual_seed(seed + 1)`` inside
        ``fork_rng`` (Quantus's rule, see the module docstring).
    """
    if order not in RANDOMISATION_ORDERS:
        raise ValueError(f"order must be one of {RANDOMISATION_ORDERS}, got {order!r}")
    check_seed(seed)
    layers = [name for name, m in model.named_modules()
              if name and hasattr(m, "reset_parameters")][::-1]
    if not layers:
        raise ValueError("model has no layer with parameters to randomise")
    cascade = copy.deepcopy(model)
    for name in layers:
        net = cascade if order == "cascading" else copy.deepcopy(model)
        _reinit(net.get_submodule(name), seed)
        yield name, net


def randomisation_test(model: nn.Module, x: torch.Tensor,
                       target: int | Sequence[int] | torch.Tensor, method: str, *,
                       order: str = "cascading", layer_seed: int = 0,
                       similarities: Sequence[str] = SIMILARITIES,
                       **options: Any) -> pd.DataFrame:
    """Similarity of each randomised model's explanation to the original one.

    Parameters
    ----------
    model, x, target, method, **options
        As for :func:`xaikit.explain`.
    order : {"cascading", "independent"}
        See :func:`randomised_models`.
    layer_seed : int
        Seed of the re-initialisation (``seed`` in :func:`randomised_models`; named apart from
        a method's own ``seed`` option, e.g. SmoothGrad's).
    similarities : sequence of str
        Any of ``"spearman"``, ``"spearman_abs"``, ``"ssim"``, ``"ssim_abs"``
        (:mod:`.similarity`).

    Returns
    -------
    pandas.DataFrame
        One row per (layer, image): ``step`` (1 = output layer), ``layer``, ``image`` and one
        column per similarity. **Lower is better** (the explanation should change).

    Notes
    -----
    Quantus's ``MPRT`` defaults differ: ``abs=True`` and ``normalise=True`` (by the batch
    maximum), Spearman only, ``return_average_correlation=True`` averages in the unrandomised
    entry, and it changes the global torch seed. With ``abs=False, normalise=False`` and
    Spearman its per-layer scores equal the ``"spearman"`` column
    (tests/test_evaluation_quantus.py).

    References
    ----------
    Adebayo et al. (2018), NeurIPS; Binder et al. (2023), CVPR. Introduced in notebook
    ``13_evaluation_sanity_localisation``.
    """
    import pandas as pd

    t = prepare(model, x, target)
    check_seed(layer_seed, "layer_seed")
    original = explain(model, x, t, method, **options)
    rows = []
    for step, (name, net) in enumerate(randomised_models(model, order, layer_seed), start=1):
        attr = explain(net, x, t, method, **options)
        values = {s: similarity(original, attr, s).tolist() for s in similarities}
        for i in range(x.shape[0]):
            rows.append({"step": step, "layer": name, "image": i,
                         **{s: v[i] for s, v in values.items()}})
    return pd.DataFrame(rows)


def random_logit(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor,
                 method: str, *, class_seed: int = 0, similarity_name: str = "ssim",
                 attr: torch.Tensor | None = None, **options: Any) -> torch.Tensor:
    """Similarity of the explanation of ``target`` to that of a random other class, ``(N,)``.

    Parameters
    ----------
    model, x, target, method, **options
        As for :func:`xaikit.explain`.
    class_seed : int
        Draws the other class per image, uniformly among the classes != target, from a private
        generator.
    similarity_name : str
        One of :data:`~xaikit.evaluation.similarity.SIMILARITIES` (default 2-D SSIM).
    attr : torch.Tensor, optional
        The explanation of ``target`` if already computed (saves one explanation call).

    Returns
    -------
    torch.Tensor
        ``(N,)``; **lower is better** (a class-sensitive explanation changes with the class).

    Notes
    -----
    Quantus's ``RandomLogit`` defaults to ``num_classes=1000`` (it fails on a 6-class model:
    pass ``num_classes``), draws the class from numpy's *global* generator
    (``np.random.seed``), normalises by the batch maximum and runs SSIM on *flattened* maps.

    References
    ----------
    Sixt, Granz, Landgraf (2020), ICML. Introduced in notebook ``13_evaluation_sanity_localisation``.
    """
    t = prepare(model, x, target)
    check_seed(class_seed, "class_seed")
    classes = num_outputs(model, x)
    if classes < 2:
        raise ValueError("random_logit needs a model with at least 2 outputs")
    generator = torch.Generator().manual_seed(class_seed)
    offset = torch.randint(1, classes, (x.shape[0],), generator=generator).to(x.device)
    other = (t + offset) % classes
    a = explain(model, x, t, method, **options) if attr is None else attr
    b = explain(model, x, other, method, **options)
    return similarity(a, b, similarity_name)

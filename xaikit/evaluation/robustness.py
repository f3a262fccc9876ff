"""Robustness: how much can the explanation change when the input moves a little at random?

Two Monte Carlo estimates over ``K = perturbations`` random copies ``x'_k = x + delta_k`` of
each image, on the channel-summed heatmaps ``h = sum_c R_c`` (as every heatmap metric of
:mod:`xaikit.evaluation`), both **lower is better**:

    max_sensitivity(x) = max_k ||h(x'_k) - h(x)||_2 / ||h(x)||_2
                         delta_k uniform in the L-inf ball of ``radius``   (Yeh et al. 2019)
    local_lipschitz(x) = max_k ||h(x'_k) - h(x)||_2 / ||x'_k - x||_2
                         delta_k ~ N(0, radius^2) per input value  (Alvarez-Melis, Jaakkola 2018)

These are Quantus's ``MaxSensitivity`` (``batch_uniform_noise``, ``lower_bound=radius``,
Frobenius norms of the flattened difference and of the unperturbed map) and
``LocalLipschitzEstimate`` (``batch_gaussian_noise``, ``perturb_std=radius``, Euclidean
distances, ``lipschitz_constant``) definitions and default radii. The maximum over ``K`` draws
is a lower bound of the supremum the papers define; it grows with ``K``, so compare methods at
the same ``K``, ``radius``, model and images only.

All ``N K`` perturbed copies (and ``x`` itself, unless its explanation ``attr`` is given) are
explained by :func:`xaikit.explain` in as few calls as memory allows (``chunk_size`` images per
call, draw-major order), instead of Quantus's one call of the batch per draw. The draws come
from a private ``torch.Generator`` seeded with ``noise_seed`` on the CPU (the global RNG is
untouched, and CPU and GPU runs use the same perturbations): draw ``k`` is one tensor shaped
like ``x`` in ``x``'s dtype, ``torch.empty(x.shape).uniform_(-radius, radius)``
(max-sensitivity) or ``.normal_(0, radius)`` (local Lipschitz), drawn in the order ``k = 0, 1,
...`` whatever ``chunk_size``.

Quantus's quirks (tests/test_evaluation_robustness.py): its noise comes from numpy's global
generator (no seed argument; a run changes ``np.random``'s state, two runs differ); its
``LocalLipschitzEstimate`` normalises by default (``normalise=True``: every explanation divided
by the largest ``|R|`` of its whole batch, so an image's score depends on the other images of
its batch); ``MaxSensitivity`` divides by ``||R(x)||`` unguarded (NaN, or ``inf`` if the
perturbed map is not zero, for an all-zero map; NaN here), ``LocalLipschitzEstimate`` adds
``1e-10`` to ``||x - x'||``; ``nanmax`` drops NaN draws. Given the same perturbations (a
replayed ``perturb_func``), Quantus and xaikit agree to float32 precision.

``bounds=(low, high)`` clamps every perturbed copy into the box ``[low, high]`` (e.g. the
normalised pixel range ``(spec.low, spec.high)`` of :func:`xaikit.model_spec`), after the noise
is added and before the copy is explained; ``||x'_k - x||`` is measured after clamping. The
copies then stay images, and an LRP composite with the z^B rule, which refuses an input outside
its box, can be scored. Quantus does not clamp (``bounds=None``, the default).

A map that ignores the input (the ``random`` control) is perfectly robust (both scores 0): a
robustness score means something only next to a faithfulness score (notebook
``11_evaluation_properties``, claim G3).

References
----------
Yeh, Hsieh, Suggala, Inouye, Ravikumar (2019), "On the (In)fidelity and Sensitivity of
Explanations", NeurIPS (max-sensitivity, eq. 2). Alvarez-Melis, Jaakkola (2018), "On the
Robustness of Interpretability Methods", ICML Workshop on Human Interpretability (local
Lipschitz estimate, eq. 1). Bhatt, Weller, Moura (2020), IJCAI. Hedström et al. (2023),
"Quantus", JMLR 24.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from .._checks import check_choice, check_int, check_real, check_seed, prepare
from ..explain import explain
from ._inputs import as_heatmap

__all__ = ["local_lipschitz", "max_sensitivity", "robustness_ratios"]

_VALUES_PER_CALL = 2 ** 22
"""Default ``chunk_size``: about this many input values per explanation call (341 perturbed
64 x 64 RGB images, 27 at 224 x 224), at least the batch."""


def _draw(kind: str, x: torch.Tensor, radius: float, generator: torch.Generator) -> torch.Tensor:
    """One perturbation of the whole batch, shaped like ``x`` (see the module docstring)."""
    noise = torch.empty(x.shape, dtype=x.dtype)
    if kind == "uniform":
        noise.uniform_(-radius, radius, generator=generator)
    else:
        noise.normal_(0.0, radius, generator=generator)
    return noise.to(x.device)


Bounds = tuple[float | torch.Tensor, float | torch.Tensor]
"""``(low, high)``: numbers or tensors broadcastable to one image ``(1, C, H, W)``."""


def _bounds(bounds: Bounds | None, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``bounds`` as two tensors broadcastable to ``x``; ValueError unless ``x`` lies inside."""
    if bounds is None:
        return None
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise TypeError(f"bounds must be a pair (low, high), got {bounds!r}")
    box = []
    for label, value in zip(("low", "high"), bounds):
        if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
            raise TypeError(f"bounds: {label} must be a number or a tensor, got {value!r}")
        bound = torch.as_tensor(value, dtype=x.dtype, device=x.device)
        while bound.dim() > 1 and bound.dim() >= x.dim() and bound.shape[0] == 1:
            bound = bound[0]  # a leading batch axis of 1
        try:
            fits = torch.broadcast_shapes(bound.shape, x.shape[1:]) == x.shape[1:]
        except RuntimeError:
            fits = False
        if not fits or not torch.isfinite(bound).all():
            raise ValueError(f"bounds: {label} of shape {tuple(bound.shape)} must be finite and "
                             f"broadcastable to one image {tuple(x.shape[1:])}")
        box.append(bound)
    low, high = box
    if (low > high).any():
        raise ValueError("bounds: low > high somewhere")
    if ((x < low - 1e-4) | (x > high + 1e-4)).any():
        raise ValueError("x lies outside bounds=(low, high)")
    return low, high


def robustness_ratios(model: nn.Module, x: torch.Tensor,
                      target: int | Sequence[int] | torch.Tensor, method: str, *,
                      distribution: str, radius: float, perturbations: int = 10,
                      noise_seed: int = 0, chunk_size: int | None = None,
                      attr: torch.Tensor | None = None, bounds: Bounds | None = None,
                      **options: Any) -> dict[str, torch.Tensor]:
    """Explanation and input change for every random perturbation, each ``(N, K)``.

    Parameters
    ----------
    model, x, target, method, **options
        As for :func:`xaikit.explain` (a stochastic method gets its ``seed`` at every call, so
        its noise depends on a copy's place in its chunk).
    distribution : {"uniform", "gaussian"}
        ``delta`` uniform in ``[-radius, radius]`` or Gaussian with standard deviation
        ``radius``, independently per input value.
    radius : float
        Size of the perturbation, in input (preprocessed) units: ``>= 0`` for ``"uniform"``
        (0 leaves ``x`` unchanged), ``> 0`` for ``"gaussian"``.
    perturbations : int
        ``K``, the number of random copies per image.
    noise_seed : int
        Seed of the private generator of the perturbations.
    chunk_size : int, optional
        Most images per explanation call (the perturbed copies, and ``x`` itself in the
        first call); default about ``2**22`` input values per call, at least ``N``. Lower it
        for a large model if memory runs out.
    attr : torch.Tensor, optional
        The explanation of ``x`` if already computed (saves one explanation call).
    bounds : (low, high), optional
        Clamp every perturbed copy into ``[low, high]`` (numbers or tensors broadcastable to one
        image, e.g. ``(spec.low, spec.high)``, the normalised pixel range); ``x`` must lie
        inside. Default: no clamping, as Quantus.

    Returns
    -------
    dict
        ``"explanation"``: ``||h(x'_k) - h(x)||_2``; ``"input"``: ``||x'_k - x||_2`` (over all
        input values); ``"reference"``: ``||h(x)||_2``, ``(N,)``.
    """
    t = prepare(model, x, target)
    check_choice("distribution", distribution, ("uniform", "gaussian"))
    radius = check_real("radius", radius, low=0, low_open=distribution == "gaussian")
    k = check_int("perturbations", perturbations)
    generator = torch.Generator().manual_seed(check_seed(noise_seed, "noise_seed"))
    x = x.detach()
    box = _bounds(bounds, x)
    n = x.shape[0]
    if chunk_size is None:
        chunk_size = max(n, _VALUES_PER_CALL // x[0].numel())
    chunk_size = check_int("chunk_size", chunk_size)
    # rows (draw, image), draw-major; draw -1 is x itself, explained in the first chunk when
    # attr is not given
    heat0 = None if attr is None else as_heatmap(attr, x).flatten(1)
    start = 0 if attr is None else n
    change = torch.empty(k * n, dtype=x.dtype, device=x.device)
    moved = torch.empty(k * n, dtype=x.dtype, device=x.device)
    drawn, delta = -1, x  # delta: the current draw (set before its first use)
    for first in range(start, (k + 1) * n, chunk_size):
        last = min(first + chunk_size, (k + 1) * n)
        perturbed = torch.empty((last - first, *x.shape[1:]), dtype=x.dtype, device=x.device)
        row = first
        while row < last:
            draw, image = divmod(row - n, n)
            if draw > drawn:
                delta, drawn = _draw(distribution, x, radius, generator), draw
            stop = min(n, image + last - row)
            out = perturbed[row - first:row - first + stop - image]
            if draw < 0:
                out.copy_(x[image:stop])
            else:
                torch.add(x[image:stop], delta[image:stop], out=out)
                if box is not None:
                    torch.clamp(out, box[0], box[1], out=out)
            row += stop - image
        images = torch.arange(first, last, device=x.device) % n
        heat = as_heatmap(explain(model, perturbed, t[images], method, **options),
                          perturbed).flatten(1)
        if first < n:  # the explanation of x itself
            if heat0 is None:
                heat0 = torch.empty((n, heat.shape[1]), dtype=heat.dtype, device=x.device)
            own = min(last, n) - first
            heat0[first:first + own] = heat[:own]
            heat, perturbed, images, first = heat[own:], perturbed[own:], images[own:], first + own
        if first < last:
            change[first - n:last - n] = (heat - heat0[images]).norm(dim=1).to(change.dtype)
            moved[first - n:last - n] = (perturbed - x[images]).flatten(1).norm(dim=1)
    return {"explanation": change.view(k, n).T, "input": moved.view(k, n).T,
            "reference": heat0.norm(dim=1)}


def max_sensitivity(model: nn.Module, x: torch.Tensor,
                    target: int | Sequence[int] | torch.Tensor, method: str, *,
                    radius: float = 0.2, perturbations: int = 10, noise_seed: int = 0,
                    chunk_size: int | None = None, attr: torch.Tensor | None = None,
                    bounds: Bounds | None = None, **options: Any) -> torch.Tensor:
    """Max-sensitivity ``max_k ||h(x + delta_k) - h(x)||_2 / ||h(x)||_2``, ``(N,)``.

    ``delta_k`` uniform in the L-inf ball of ``radius`` (Yeh et al. 2019, as Quantus's
    ``MaxSensitivity``; its ``lower_bound`` is ``radius``, default 0.2). **Lower is better**;
    relative, so free of the map's scale. NaN for an all-zero ``h(x)``.

    Parameters
    ----------
    model, x, target, method, **options
        As for :func:`xaikit.explain`.
    radius : float
        Half-width of the uniform noise, ``>= 0`` (0: a deterministic method scores 0).
    perturbations, noise_seed, chunk_size, attr, bounds
        See :func:`robustness_ratios`. ``perturbations`` is Quantus's ``nr_samples`` (default
        200 there): ``N (K + 1)`` explanations (``N K`` given ``attr``), in
        ``ceil(N (K + 1) / chunk_size)`` calls.

    Returns
    -------
    torch.Tensor
        ``(N,)``; **lower is better**.

    References
    ----------
    Yeh et al. (2019), NeurIPS, eq. (2); Bhatt, Weller, Moura (2020), IJCAI.
    """
    r = robustness_ratios(model, x, target, method, distribution="uniform", radius=radius,
                          perturbations=perturbations, noise_seed=noise_seed,
                          chunk_size=chunk_size, attr=attr, bounds=bounds, **options)
    reference = r["reference"][:, None]
    ratio = r["explanation"] / torch.where(reference > 0, reference, torch.ones_like(reference))
    return torch.where(r["reference"] > 0, ratio.amax(1),
                       torch.full_like(r["reference"], float("nan")))


def local_lipschitz(model: nn.Module, x: torch.Tensor,
                    target: int | Sequence[int] | torch.Tensor, method: str, *,
                    radius: float = 0.1, perturbations: int = 10, noise_seed: int = 0,
                    chunk_size: int | None = None, attr: torch.Tensor | None = None,
                    bounds: Bounds | None = None, **options: Any) -> torch.Tensor:
    """Local Lipschitz estimate ``max_k ||h(x + delta_k) - h(x)||_2 / ||delta_k||_2``, ``(N,)``.

    ``delta_k ~ N(0, radius^2)`` per input value (Quantus's ``LocalLipschitzEstimate``:
    ``perturb_std`` is ``radius``, default 0.1; Alvarez-Melis and Jaakkola 2018 take the
    maximum over a ball, which Quantus samples with Gaussian noise). **Lower is better**; in
    relevance (logit) units per input unit, so compare methods on one model only.

    Parameters
    ----------
    model, x, target, method, **options
        As for :func:`xaikit.explain`.
    radius : float
        Standard deviation of the noise, ``> 0``.
    perturbations, noise_seed, chunk_size, attr, bounds
        See :func:`robustness_ratios`. ``perturbations`` is Quantus's ``nr_samples`` (default
        200 there).

    Returns
    -------
    torch.Tensor
        ``(N,)``; **lower is better**.

    Notes
    -----
    Equals Quantus's ``LocalLipschitzEstimate(normalise=False)`` on the same perturbations
    (its default ``normalise=True`` divides each map by its batch's largest ``|R|``).

    References
    ----------
    Alvarez-Melis, Jaakkola (2018), arXiv:1806.08049, eq. (1).
    """
    r = robustness_ratios(model, x, target, method, distribution="gaussian", radius=radius,
                          perturbations=perturbations, noise_seed=noise_seed,
                          chunk_size=chunk_size, attr=attr, bounds=bounds, **options)
    return (r["explanation"] / r["input"]).amax(1)

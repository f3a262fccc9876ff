"""Shapley values: exact, permutation-sampled, KernelSHAP and DeepSHAP.

The input is split into ``d`` *players* (single features, the cells of a patch grid, or SLIC
superpixels) and a coalition ``S`` of players is the input with every player outside ``S``
replaced by a baseline ``x0``. The cooperative game is the explained logit,

    v(S) = f_t(x_S, x0_(not S)),      v(all) = f_t(x),      v({}) = f_t(x0),

and the Shapley value of player ``i`` is its marginal contribution averaged over all orders in
which the players can join (Shapley 1953):

    phi_i = sum_{S not containing i} |S|! (d - |S| - 1)! / d!  [ v(S + {i}) - v(S) ].

It is the only attribution with efficiency (``sum_i phi_i = f_t(x) - f_t(x0)``), symmetry
(interchangeable players get equal values), dummy (a player that never changes ``v`` gets 0)
and linearity. Unlike occlusion, which removes one player at a time from the full input,
it sees interactions: for ``f = max(x1, x2)`` at ``(3, 3)`` with baseline 0 occlusion gives
``(0, 0)`` (removing either input alone changes nothing) and Shapley ``(1.5, 1.5)``.

    shapley      all 2^d coalitions (d <= 16), or permutation sampling (Strumbelj & Kononenko)
    kernel_shap  Shapley-kernel weighted linear regression with the efficiency constraint
    deep_shap    DeepLIFT (Rescale) averaged over a set of references (Lundberg & Lee)

Each player's value is spread equally over its pixels and channels, so each map sums to
``f_t(x) - f_t(x0)`` (exactly for ``shapley`` and ``kernel_shap``, by construction; for
``deep_shap`` with the mean over the references, up to rounding).

References
----------
Shapley (1953), "A Value for n-Person Games", Contributions to the Theory of Games II.
Strumbelj, Kononenko (2014), "Explaining prediction models and individual predictions with
feature contributions", Knowledge and Information Systems 41.
Lundberg, Lee (2017), "A Unified Approach to Interpreting Model Predictions", NeurIPS.

Introduced in notebook (planned) Shapley values.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .._checks import check_choice, check_int, check_seed
from ..references import Baseline, resolve_baseline
from ._registry import register
from .deeplift import deeplift
from .perturbation import superpixels

__all__ = ["MAX_EXACT_PLAYERS", "PLAYERS", "deep_shap", "kernel_shap", "player_labels",
           "shapley"]

PLAYERS = ("features", "patches", "superpixels")
"""What a player is: one input feature, a cell of a ``grid x grid`` patch grid, or a SLIC
superpixel (:func:`xaikit.methods.perturbation.superpixels`)."""

MAX_EXACT_PLAYERS = 16
"""Most players for the exact enumeration (``samples=None``): 2^16 = 65536 forward passes."""

_Value = Callable[[Callable[[int, int], torch.Tensor], int], torch.Tensor]


# ----------------------------------------------------------------------------- players
def player_labels(model: nn.Module, x: torch.Tensor, players: str | None = None,
                  grid: int = 3, segments: int = 12) -> torch.Tensor:
    """The player of every input element: a long tensor shaped like ``x``, values ``0 .. d_k-1``.

    ``players=None`` takes ``"patches"`` for images ``(N, C, H, W)`` and ``"features"``
    otherwise. ``"features"``: every element of ``x[k]`` is its own player (``d = x[k].numel()``);
    ``"patches"``: row ``r`` and column ``c`` fall into cell ``(r * grid // H, c * grid // W)``
    of a ``grid x grid`` grid (``d = grid^2``, cells differ by at most one pixel when ``grid``
    does not divide the side), all channels of a pixel together; ``"superpixels"``: SLIC
    superpixels with about ``segments`` segments (:func:`~xaikit.methods.perturbation.superpixels`;
    ``d`` may differ between the images of a batch).
    """
    check_int("grid", grid)
    check_int("segments", segments)
    if players is None:
        players = "patches" if x.dim() == 4 else "features"
    check_choice("players", players, PLAYERS)
    n, shape = x.shape[0], x.shape[1:]
    if players == "features":
        labels = torch.arange(math.prod(shape), device=x.device).view(shape)
        return labels.expand(n, *shape).clone()
    if x.dim() != 4:
        raise ValueError(f"players={players!r} needs images (N, C, H, W), got shape "
                         f"{tuple(x.shape)}; use players='features'")
    h, w = x.shape[-2:]
    if players == "patches":
        check_int("grid", grid, 1, min(h, w))
        rows = torch.arange(h, device=x.device) * grid // h
        cols = torch.arange(w, device=x.device) * grid // w
        cells = rows[:, None] * grid + cols[None, :]
        return cells.expand(x.shape).clone()
    return superpixels(model, x, segments).unsqueeze(1).expand(x.shape).clone()


def _values(model: nn.Module, x: torch.Tensor, x0: torch.Tensor, target: int,
            labels: torch.Tensor, batch_size: int) -> _Value:
    """``value(masks, total)``: ``v`` of ``total`` coalitions as a float64 CPU ``(total,)``.

    ``masks(start, stop)`` returns the coalitions ``start .. stop-1`` as ``(stop - start, d)``
    0/1 rows; they are built and evaluated ``batch_size`` at a time. A player in the
    coalition keeps ``x``, the others take ``x0`` (``torch.where``: no rounding of kept values).
    """

    def value(masks: Callable[[int, int], torch.Tensor], total: int) -> torch.Tensor:
        out = []
        with torch.no_grad():
            for start in range(0, total, batch_size):
                keep = masks(start, min(start + batch_size, total)).to(x.device).bool()
                inputs = torch.where(keep[:, labels], x, x0)
                out.append(model(inputs)[:, target].detach().double().cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    return value


def _spread(phi: torch.Tensor, labels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Each player's value divided equally over its elements, shaped like ``labels``."""
    flat = labels.reshape(-1).cpu()
    counts = torch.bincount(flat, minlength=len(phi)).double()
    per_element = phi / counts
    return per_element[flat].view(labels.shape).to(dtype=like.dtype, device=like.device)


def _check_common(samples: int | None, seed: int, batch_size: int) -> None:
    if samples is not None:
        check_int("samples", samples)
    check_seed(seed)
    check_int("batch_size", batch_size)


def _too_many(method: str, d: int) -> ValueError:
    return ValueError(
        f"{method} with samples=None enumerates all 2^d coalitions, which is limited to "
        f"{MAX_EXACT_PLAYERS} players, but this input has {d}; pass samples=<int> to sample, "
        "or use fewer players (a smaller grid or fewer segments)")


def _bits(start: int, stop: int, d: int) -> torch.Tensor:
    """Coalitions ``start .. stop-1`` as rows of bits (player ``i`` is bit ``i``)."""
    return (torch.arange(start, stop)[:, None] >> torch.arange(d)) & 1


# ----------------------------------------------------------------------------- shapley
def _exact_shapley(value: _Value, d: int) -> torch.Tensor:
    v = value(lambda a, b: _bits(a, b, d), 2 ** d)                          # (2^d,)
    masks = torch.arange(2 ** d)
    size = _bits(0, 2 ** d, d).sum(1)
    weight = torch.tensor([1 / (d * math.comb(d - 1, s)) for s in range(d)],
                          dtype=torch.float64)                            # s!(d-s-1)!/d!
    phi = torch.empty(d, dtype=torch.float64)
    for i in range(d):
        without = masks[(masks >> i) & 1 == 0]
        phi[i] = (weight[size[without]] * (v[without | (1 << i)] - v[without])).sum()
    return phi


def _sampled_shapley(value: _Value, d: int, samples: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(d, generator=generator) for _ in range(samples)])
    rank = order.argsort(1)                           # rank[m, i]: position of player i
    inner = d - 1                                      # coalitions of 1 .. d-1 players

    def masks(start: int, stop: int) -> torch.Tensor:
        row = torch.arange(start, stop)
        return (rank[row // inner] < (row % inner + 1)[:, None]).long()

    ends = value(lambda a, b: torch.tensor([[0] * d, [1] * d])[a:b], 2)  # v({}), v(all)
    middle = value(masks, samples * inner).view(samples, inner)
    chain = torch.cat([ends[0].expand(samples, 1), middle, ends[1].expand(samples, 1)], 1)
    gains = chain[:, 1:] - chain[:, :-1]               # gain of the player at position j
    return gains.gather(1, rank).mean(0)


@register("shapley", gradients=False)
def shapley(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
            players: str | None = None, grid: int = 3, segments: int = 12,
            baseline: Baseline = None, samples: int | None = None, seed: int = 0,
            batch_size: int = 64) -> torch.Tensor:
    """Shapley values of the target logit: exact over all coalitions, or by sampled permutations.

    With players ``1 .. d`` and ``v(S)`` the target logit of ``x`` with the players outside
    ``S`` set to the baseline ``x0`` (module docstring),

        phi_i = sum_{S not containing i} |S|! (d - |S| - 1)! / d!  [ v(S + {i}) - v(S) ].

    ``samples=None`` evaluates all ``2^d`` coalitions (``d <= 16``, :data:`MAX_EXACT_PLAYERS`)
    and sums the formula exactly. With ``samples=M`` it uses permutation sampling (Strumbelj
    and Kononenko 2014): ``M`` random orders ``pi`` of the players from a private
    ``torch.Generator`` seeded with ``seed``, and

        phi_i ~ (1/M) sum_pi [ v(Pre_pi(i) + {i}) - v(Pre_pi(i)) ],

    ``Pre_pi(i)`` the players before ``i`` in ``pi``; unbiased, with error ~ ``1/sqrt(M)``,
    ``M (d - 1) + 2`` forward passes. Each sampled order telescopes from ``v({})`` to
    ``v(all)``, so efficiency holds exactly for the estimate too.

    Written by hand rather than with captum (0.9): its ``ShapleyValues`` enumerates all ``d!``
    permutations (``d * d!`` forward passes; 16! is 2e13, where the ``2^d`` coalitions here
    are 65536), ``ShapleyValueSampling`` draws its permutations from torch's global generator
    (``torch.randperm`` without a generator), and both accumulate the attributions in a
    float32 tensor (``dtype=torch.float``), which breaks float64 identities such as efficiency.

    Parameters
    ----------
    model, x, target
        Classifier, ``(N, C, H, W)`` (or ``(N, D)``) input and ``(N,)`` long targets.
    players : {"features", "patches", "superpixels"}, optional
        The players (:func:`player_labels`); default ``"patches"`` for images, ``"features"``
        (each input feature) otherwise.
    grid : int
        ``players="patches"``: the grid is ``grid x grid`` cells (default 3: 9 players; 4 gives
        the 16 that exact enumeration allows), at most the shorter image side; ``grid`` need not
        divide it.
    segments : int
        ``players="superpixels"``: about this many SLIC superpixels (default 12; exact
        enumeration refuses an image that gets more than 16).
    baseline : None, str, float or torch.Tensor
        What an absent player's elements take, as for Integrated Gradients and DeepLIFT
        (:func:`xaikit.references.resolve_baseline`; default zeros, the data set's mean colour
        for a normalised image).
    samples : int, optional
        ``None`` (default): exact, all ``2^d`` coalitions; an int: that many sampled
        permutations.
    seed : int
        Seed of the permutations (``samples`` given); a batch equals single calls.
    batch_size : int
        Most perturbed inputs per forward pass.

    Returns
    -------
    torch.Tensor
        Shaped like ``x``: each player's Shapley value divided equally over its elements
        (pixels and channels), so ``attr[k].sum() = f(x)[k, t_k] - f(x0)[k, t_k]`` (logit
        units).

    References
    ----------
    Shapley (1953); Strumbelj, Kononenko (2014), Knowl. Inf. Syst.; Lundberg, Lee (2017),
    NeurIPS. Introduced in notebook (planned) Shapley values.
    """
    _check_common(samples, seed, batch_size)

    def estimate(value: Callable, d: int) -> torch.Tensor:
        return (_exact_shapley(value, d) if samples is None
                else _sampled_shapley(value, d, samples, seed))

    return _per_image("shapley", estimate, model, x, target, samples, players, grid, segments,
                      baseline, batch_size)


def _per_image(name: str, estimate: Callable, model: nn.Module, x: torch.Tensor,
               target: torch.Tensor, samples: int | None, players: str | None, grid: int,
               segments: int, baseline: Baseline, batch_size: int) -> torch.Tensor:
    """``estimate(value, d) -> (d,)`` player values for each image, spread over the pixels."""
    x = x.detach()
    labels = player_labels(model, x, players, grid, segments)
    x0 = resolve_baseline(model, x, baseline)
    maps = []
    for k in range(x.shape[0]):
        d = int(labels[k].max()) + 1
        if samples is None and d > MAX_EXACT_PLAYERS:
            raise _too_many(name, d)
        value = _values(model, x[k], x0[k], int(target[k]), labels[k], batch_size)
        maps.append(_spread(estimate(value, d), labels[k], x))
    return torch.stack(maps)


# ----------------------------------------------------------------------------- kernel_shap
def _kernel_weight(d: int, size: torch.Tensor) -> torch.Tensor:
    """The Shapley kernel ``(d - 1) / (C(d, s) s (d - s))`` for ``0 < s < d``."""
    comb = torch.tensor([float(math.comb(d, s)) for s in range(d + 1)], dtype=torch.float64)
    s = size.double()
    return (d - 1) / (comb[size] * s * (d - s))


def _solve_kernel_shap(z: torch.Tensor, v: torch.Tensor, weight: torch.Tensor,
                       v_empty: float, v_full: float) -> torch.Tensor:
    """``argmin sum_z w(z) (v(z) - v({}) - z . phi)^2`` subject to ``sum phi = v(all) - v({})``.

    The constraint eliminates the last player: ``phi_d = delta - sum_{i<d} phi_i``, leaving a
    weighted least-squares problem in ``d - 1`` unknowns (``torch.linalg.lstsq``, minimum norm
    when the coalitions do not determine it).
    """
    d, delta = z.shape[1], v_full - v_empty
    if d == 1:
        return torch.tensor([delta], dtype=torch.float64)
    z = z.double()
    a = z[:, :-1] - z[:, -1:]
    b = v - v_empty - z[:, -1] * delta
    root = weight.sqrt()
    rest = torch.linalg.lstsq(a * root[:, None], (b * root)[:, None], driver="gelsd").solution[:, 0]
    return torch.cat([rest, (delta - rest.sum()).view(1)])


def _kernel_shap_one(value: _Value, d: int, samples: int | None, seed: int) -> torch.Tensor:
    ends = value(lambda a, b: torch.tensor([[0] * d, [1] * d])[a:b], 2)  # v({}), v(all)
    if d == 1:
        return _solve_kernel_shap(torch.ones(1, 1), ends[1:], torch.ones(1), *ends.tolist())
    if samples is None or 2 ** d - 2 <= samples:       # every proper coalition, exact weights
        z = _bits(1, 2 ** d - 1, d)
        weight = _kernel_weight(d, z.sum(1))
    else:  # sizes from the kernel's total weight per size, then a uniform subset; in pairs
        generator = torch.Generator().manual_seed(seed)
        sizes = torch.arange(1, d)
        p = (d - 1) / (sizes * (d - sizes)).double()
        draws = (samples + 1) // 2
        size = sizes[torch.multinomial(p / p.sum(), draws, replacement=True,
                                       generator=generator)]
        rank = torch.rand((draws, d), generator=generator, dtype=torch.float64).argsort(1).argsort(1)
        first = (rank < size[:, None]).long()
        z = torch.stack([first, 1 - first], 1).view(2 * draws, d)[:samples]
        weight = torch.ones(samples, dtype=torch.float64)  # drawn with the kernel's probability
    v = value(lambda a, b: z[a:b], len(z))
    return _solve_kernel_shap(z, v, weight, float(ends[0]), float(ends[1]))


@register("kernel_shap", gradients=False)
def kernel_shap(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
                players: str | None = None, grid: int = 3, segments: int = 12,
                baseline: Baseline = None, samples: int | None = 512, seed: int = 0,
                batch_size: int = 64) -> torch.Tensor:
    """KernelSHAP: Shapley values as a weighted linear regression on coalitions.

    With ``z`` in ``{0, 1}^d`` a coalition of the players and ``v(z)`` the target logit of
    ``x`` with the players outside ``z`` set to the baseline (module docstring), KernelSHAP
    (Lundberg and Lee 2017, theorem 2) solves

        min_phi  sum_z pi(z) [ v(z) - v(0) - sum_i z_i phi_i ]^2
        subject to  sum_i phi_i = v(1) - v(0),
        pi(z) = (d - 1) / ( C(d, |z|) |z| (d - |z|) )     (the Shapley kernel, 0 < |z| < d),

    the empty and the full coalition entering through the constraint (their weight is
    infinite). Over all ``2^d - 2`` proper coalitions the solution is exactly the Shapley value;
    on a game linear in ``z`` (a linear model, any baseline) every full-rank sample of
    coalitions gives it exactly as well.

    ``samples=None`` uses every coalition (``d <= 16``); so does an int ``samples >= 2^d - 2``,
    as in the ``shap`` package (the default 512 enumerates up to 9 players). Otherwise
    ``samples`` coalitions are drawn, in
    complementary pairs (``z`` and ``1 - z``): a size ``s`` with probability proportional to
    the kernel's total weight ``(d - 1) / (s (d - s))`` of that size, then a uniformly random
    subset of ``s`` players, and the draws are weighted equally. The draws come from a private
    ``torch.Generator`` seeded with ``seed``; written by hand because captum's ``KernelShap``
    samples from torch's global generator (``Categorical.sample`` and ``torch.randn``). The
    constraint is imposed by eliminating one player; the regression is solved in float64
    (``torch.linalg.lstsq``; with fewer than ``d - 1`` independent coalitions it returns the
    minimum-norm solution, not the Shapley value).

    Parameters
    ----------
    model, x, target
        Classifier, ``(N, C, H, W)`` (or ``(N, D)``) input and ``(N,)`` long targets.
    players, grid, segments
        The players, as for :func:`shapley` (default a 4 x 4 patch grid for images, each
        feature of a flat input).
    baseline : None, str, float or torch.Tensor
        Value of an absent player (:func:`xaikit.references.resolve_baseline`; default zeros).
    samples : int, optional
        Number of sampled coalitions (forward passes, plus two for ``v(0)`` and ``v(1)``;
        default 512, every coalition when that is no fewer than ``2^d - 2``); ``None``: all
        ``2^d - 2`` coalitions, exact (at most 16 players).
    seed : int
        Seed of the sampling; a batch equals single calls.
    batch_size : int
        Most perturbed inputs per forward pass.

    Returns
    -------
    torch.Tensor
        Shaped like ``x``: each player's coefficient divided equally over its elements, so
        ``attr[k].sum() = f(x)[k, t_k] - f(x0)[k, t_k]`` (logit units).

    References
    ----------
    Lundberg, Lee (2017), NeurIPS; Shapley (1953). Introduced in notebook (planned) Shapley
    values.
    """
    _check_common(samples, seed, batch_size)
    return _per_image("kernel_shap", lambda value, d: _kernel_shap_one(value, d, samples, seed),
                      model, x, target, samples, players, grid, segments, baseline, batch_size)


# ----------------------------------------------------------------------------- deep_shap
def _check_references(baselines: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """``baselines`` as ``(B, *x.shape[1:])`` in ``x``'s dtype and device."""
    if baselines is None:
        raise TypeError("deep_shap needs the option baselines: a tensor of reference inputs, one "
                        f"per row, shaped (B, {', '.join(map(str, x.shape[1:]))}) (e.g. a few "
                        "training images)")
    if not isinstance(baselines, torch.Tensor):
        raise TypeError(f"baselines must be a torch.Tensor, got {type(baselines).__name__}")
    if baselines.dtype == torch.bool or baselines.is_complex():
        raise TypeError(f"baselines must hold real numbers, got dtype {baselines.dtype}")
    if baselines.dim() != x.dim() or baselines.shape[0] == 0:
        raise ValueError(f"baselines must be a non-empty batch of references (B, "
                         f"{', '.join(map(str, x.shape[1:]))}), one per row, got shape "
                         f"{tuple(baselines.shape)}")
    refs = baselines.detach().to(dtype=x.dtype, device=x.device)
    try:
        refs = torch.broadcast_to(refs, (refs.shape[0], *x.shape[1:]))
    except RuntimeError:
        raise ValueError(f"baselines of shape {tuple(baselines.shape)} do not fit x of shape "
                         f"{tuple(x.shape)}: each row must broadcast to "
                         f"{tuple(x.shape[1:])}") from None
    if not torch.isfinite(refs).all():
        raise ValueError("baselines contain NaN or infinite values")
    return refs


@register("deep_shap", propagation=True)
def deep_shap(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
              baselines: torch.Tensor | None = None, batch_size: int = 64) -> torch.Tensor:
    """DeepSHAP: DeepLIFT (Rescale) contributions averaged over a set of references.

    With references ``x0_1 .. x0_B`` (e.g. a sample of the training data: the "background"),

        phi = (1/B) sum_b  DeepLIFT(x; x0_b),    sum phi = f_t(x) - (1/B) sum_b f_t(x0_b),

    an approximation of the Shapley values of the features with the expectation over the
    reference distribution as the value of absent features (Lundberg and Lee 2017, section
    4.2). Each term is the workbook's DeepLIFT Rescale (:func:`xaikit.methods.deeplift.deeplift`,
    captum on the copy repaired for captum issue #1104), run on ``x`` repeated once per
    reference. captum's ``DeepLiftShap`` does the same but lacks that repair, refuses a
    single reference and runs all ``N x B`` pairs in one batch.

    Parameters
    ----------
    model, x, target
        Classifier in eval mode (every layer supported by DeepLIFT), ``(N, C, H, W)`` (or
        ``(N, D)``) input and ``(N,)`` long targets.
    baselines : torch.Tensor
        Required: the references, one per row, ``(B, C, H, W)`` (or ``(B, D)``); each row must
        broadcast to one input (``(B, C, 1, 1)``: ``B`` constant colours). Converted to ``x``'s
        dtype and device.
    batch_size : int
        Most (input, reference) pairs per DeepLIFT pass.

    Returns
    -------
    torch.Tensor
        Shaped like ``x``, logit units: ``attr[k].sum() = f(x)[k, t_k] - mean_b f(x0_b)[t_k]``
        up to rounding.

    References
    ----------
    Lundberg, Lee (2017), NeurIPS; Shrikumar, Greenside, Kundaje (2017), ICML. Introduced in
    notebook (planned) Shapley values.
    """
    check_int("batch_size", batch_size)
    x = x.detach()
    refs = _check_references(baselines, x)
    n, count = x.shape[0], refs.shape[0]
    step = max(1, batch_size // n)
    total = torch.zeros_like(x)
    for first in range(0, count, step):
        part = refs[first:first + step]
        r = part.shape[0]
        x_rep = x.repeat(r, *([1] * (x.dim() - 1)))
        x0_rep = part.repeat_interleave(n, dim=0)
        attr = deeplift(model, x_rep, target.repeat(r), baseline=x0_rep)
        total += attr.view(r, *x.shape).sum(0)
    return total / count

"""Selectivity: pixel-flipping / region perturbation curves and their AOPC.

Remove the input in patches, most relevant first, and follow the explained logit: a selective
explanation makes it fall fast. With ``order="least_relevant"`` (it should fall slowly) and
``order="random"`` as controls.

    curve_k = f_c(x^(k)),  x^(k) = x with the floor(k P / L) top-ranked patches filled,  k = 0..L
    AOPC    = 1/(L + 1) sum_k (f_c(x^(0)) - f_c(x^(k)))

Written by hand, batched: Quantus's ``PixelFlipping``/``RegionPerturbation`` run one forward pass
of the batch per step too, but rebuild every perturbed image in numpy between passes; here all
``(L + 1) N`` perturbed images are built from one rank map and sent through the model in chunks
(benchmarks/bench_evaluation.py measures both against the bare forward passes).

References
----------
Bach et al. (2015), "On pixel-wise explanations ... by layer-wise relevance propagation",
PLOS ONE. Samek et al. (2017), "Evaluating the visualization of what a deep neural network has
learned", IEEE TNNLS (region perturbation, AOPC).

Introduced in notebook ``12_evaluation_selectivity``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .._checks import check_int, prepare
from .._progress import show_progress
from ..references import fill_values, score_function
from ._inputs import as_heatmap, tie_broken_order

__all__ = ["FLIP_ORDERS", "PROGRESS_MIN_FORWARDS", "ROAD_NOISE", "aopc", "patch_ranks",
           "pixel_flipping", "road_fill"]

FLIP_ORDERS = ("most_relevant", "least_relevant", "random")
"""The order in which pixel flipping removes patches."""
ROAD_NOISE = 0.01
"""Standard deviation of the noise ROAD adds to each imputed value (Rong et al. 2022; Quantus's
default), in the units of the input."""
PROGRESS_MIN_FORWARDS = 4096
"""With ``progress=None`` a tqdm bar appears from this many perturbed images on, and only when
stderr is a terminal (so never in an executed notebook)."""


def patch_ranks(heatmap: torch.Tensor, patch: int, order: str = "most_relevant",
                seed: int = 0) -> torch.Tensor:
    """Removal rank of every pixel's patch, ``(N, H, W)`` long (0 = removed first).

    Patches are the cells of a ``patch`` x ``patch`` grid from the top-left corner (cut off at
    the right and bottom border when the side is not a multiple); a patch's score is the sum
    of ``heatmap`` ``(N, H, W)`` over it, in float64. Ties (and ``order="random"``) are broken by a random
    permutation from ``seed`` (:func:`~xaikit.evaluation._inputs.tie_broken_order`).
    """
    if order not in FLIP_ORDERS:
        raise ValueError(f"order must be one of {FLIP_ORDERS}, got {order!r}")
    n, h, w = heatmap.shape
    cols = math.ceil(w / patch)
    rows_id = torch.arange(h, device=heatmap.device) // patch
    cols_id = torch.arange(w, device=heatmap.device) // patch
    pid = (rows_id[:, None] * cols + cols_id[None, :]).flatten()                 # (H W,)
    count = math.ceil(h / patch) * cols
    # summed in float64: exact for float32 maps whose values in a patch span less than 2**29,
    # so equal patches (a symmetric map) tie exactly, whatever the order of summation
    sums = torch.zeros((n, count), dtype=torch.float64, device=heatmap.device)
    sums.index_add_(1, pid, heatmap.flatten(1).double())
    if order == "random":
        sums = torch.zeros_like(sums)
    ranking = tie_broken_order(sums, order != "least_relevant", seed)            # (N, P)
    rank = torch.empty_like(ranking)
    rank.scatter_(1, ranking, torch.arange(count, device=ranking.device).expand(n, -1))
    return rank[:, pid].view(n, h, w)


def pixel_flipping(model: nn.Module, x: torch.Tensor, attr: torch.Tensor,
                   target: int | Sequence[int] | torch.Tensor, *, steps: int = 16,
                   patch: int | None = None, fill: float | str = 0.0,
                   order: str = "most_relevant", seed: int = 0, measure: str = "logit",
                   batch_size: int | None = None, progress: bool | None = None) -> torch.Tensor:
    """Pixel-flipping / region-perturbation curves of the explained score.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier in eval mode.
    x : torch.Tensor
        ``(N, C, H, W)`` input.
    attr : torch.Tensor
        ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)`` explanation; its channel sum ranks
        the patches (relevance summed over each patch, all channels removed together).
    target : int, sequence of int or 1-D tensor
        Explained class per sample.
    steps : int
        ``L``: number of perturbation steps, spread evenly over the ``P`` patches (step ``k``
        has removed ``floor(k P / L)``), ``1 <= L <= P``. Default 16.
    patch : int, optional
        Side of the square patches in pixels; default ``max(1, min(H, W) // 16)`` (4 at 64,
        14 at 224); 1 is pixel-flipping proper.
    fill : float or {"zero", "mean", "blur", "noise", "road"}
        Value of a removed pixel (:func:`xaikit.methods.perturbation.fill_values`; a number is a
        constant in normalised units, 0 = the data set's mean colour). Default 0. ``"road"``:
        ROAD's noisy linear imputation (Rong et al. 2022), see :func:`road_fill`: the removed
        pixels are interpolated from the remaining ones, so the perturbed image stays closer
        to the data than a constant patch; slower (one sparse solve per image and step).
    order : {"most_relevant", "least_relevant", "random"}
        Removal order (MoRF, LeRF, or a random permutation from ``seed`` as a control).
    seed : int
        Breaks ties between equal patch scores (and draws the random order and the noise
        fill) from a private generator: maps with many ties (Grad-CAM, occlusion) depend on
        it, so average a few seeds there.
    measure : {"logit", "probability"}
        Score followed (default the logit, in which relevance is expressed).
    batch_size : int, optional
        Perturbed images per forward pass; default ``max(N, 64)``.
    progress : bool, optional
        tqdm bar; ``None``: only from :data:`PROGRESS_MIN_FORWARDS` perturbed images on and
        only when stderr is a terminal.

    Returns
    -------
    torch.Tensor
        ``(N, steps + 1)``: ``curve[:, 0]`` is the unperturbed score, ``curve[:, -1]`` the
        score with every patch filled. Most relevant first: lower is better (see :func:`aopc`).

    Notes
    -----
    Quantus's ``PixelFlipping`` differs by default: ``normalise=True`` (divides by the batch
    maximum; harmless for the order), ``softmax=True`` in ``__call__`` (probabilities, not
    logits), ``perturb_baseline="black"`` (the minimum of each image over all channels, not 0
    per channel), ``features_in_step=1`` counts *channel values*, not pixels, an ``(N, 1, H, W)``
    map is broadcast over channels, ties follow numpy's unstable ``argsort``, and its curve omits
    the unperturbed score. With ``normalise=False, softmax=False, perturb_baseline=0.0,
    features_in_step=C * pixels`` its curve equals ``curve[:, 1:]`` here for ``patch=1``, and
    ``RegionPerturbation(patch_size=patch, regions_evaluation=P, ...)`` (one patch per step,
    ``steps = P``) returns ``curve[:, :1] - curve[:, 1:]`` (tests/test_evaluation_quantus.py,
    benchmarks/bench_evaluation.py). RegionPerturbation's ``order="random"`` draws from numpy's
    global generator.

    References
    ----------
    Bach et al. (2015), PLOS ONE; Samek et al. (2017), IEEE TNNLS. Introduced in notebook
    ``12_evaluation_selectivity``.
    """
    from tqdm.auto import tqdm

    t = prepare(model, x, target)
    n, _, h, w = x.shape
    heat = as_heatmap(attr, x)
    patch = max(1, min(h, w) // 16) if patch is None else patch
    check_int("patch", patch, 1, min(h, w))
    count = math.ceil(h / patch) * math.ceil(w / patch)
    check_int("steps", steps, 1, count)
    check_int("seed", seed, 0)
    batch_size = max(n, 64) if batch_size is None else check_int("batch_size", batch_size)
    score, x = score_function(model, measure), x.detach()
    rank = patch_ranks(heat, patch, order, seed)                                  # (N, H, W)
    road = fill == "road"
    base = None if road else fill_values(x, fill, seed)
    if road:
        generator = torch.Generator().manual_seed(seed)
    removed = torch.tensor([k * count // steps for k in range(steps + 1)], device=x.device)
    total = (steps + 1) * n
    show = show_progress(progress, total, PROGRESS_MIN_FORWARDS)
    out = torch.empty(total, dtype=x.dtype, device=x.device)
    with torch.no_grad(), tqdm(total=total, disable=not show, desc="pixel flipping") as bar:
        for first in range(0, total, batch_size):
            job = torch.arange(first, min(first + batch_size, total), device=x.device)
            k, i = job // n, job % n                          # step-major: (k, i) -> k n + i
            flipped = (rank[i] < removed[k].view(-1, 1, 1)).unsqueeze(1)
            if road:
                inputs = torch.stack([road_fill(x[ii], f[0], generator)
                                      for ii, f in zip(i.tolist(), flipped)])
            else:
                inputs = torch.where(flipped, base[i], x[i])
            out[job] = score(inputs).gather(1, t[i].view(-1, 1))[:, 0].to(x.dtype)
            bar.update(len(job))
    return out.view(steps + 1, n).T.contiguous()


def road_fill(x: torch.Tensor, removed: torch.Tensor,
              generator: torch.Generator | None = None, noise: float = ROAD_NOISE) -> torch.Tensor:
    """ROAD's noisy linear imputation of one image ``x`` ``(C, H, W)`` where ``removed`` ``(H, W)``.

    Every removed pixel becomes the weighted mean of its eight neighbours (1/6 for the four
    direct, 1/12 for the diagonal ones), removed neighbours included: one sparse linear system
    per image, solved by Quantus's ``noisy_linear_imputation`` (the ROAD authors' code), plus
    Gaussian noise of std ``noise`` drawn here from ``generator`` (Quantus draws from numpy's
    global generator). Linear images are reproduced exactly (tests/test_evaluation_selectivity.py).
    With nothing removed ``x`` is returned; with every pixel removed there is nothing to
    interpolate from (the system is singular) and the image is filled with 0, the mean colour.

    References
    ----------
    Rong, Leemann, Borisov, Kasneci, Kasneci (2022), "A consistent and efficient evaluation
    strategy for attribution methods", ICML.
    """
    if not removed.any():
        return x
    if removed.all():
        return torch.zeros_like(x)
    from ._quantus import import_quantus

    import_quantus()                                                    # numpy-2 shim first
    from quantus.functions.perturb_func import noisy_linear_imputation

    idx = torch.nonzero(removed.flatten())[:, 0].cpu().numpy()
    filled = noisy_linear_imputation(x.detach().double().cpu().numpy(), idx, noise=0.0)
    out = torch.from_numpy(filled).to(x.dtype).to(x.device)
    eps = torch.randn((x.shape[0], len(idx)), generator=generator, dtype=torch.float64)
    out.view(x.shape[0], -1)[:, torch.from_numpy(idx)] += (noise * eps).to(x.dtype).to(x.device)
    return out


def aopc(curves: torch.Tensor) -> torch.Tensor:
    """Area over the perturbation curve, ``(N,)``: ``mean_k (curve_0 - curve_k)``, k = 0..L.

    Parameters
    ----------
    curves : torch.Tensor
        ``(N, L + 1)`` from :func:`pixel_flipping` (the first column unperturbed).

    Returns
    -------
    torch.Tensor
        ``(N,)`` in the units of the curve. For the most-relevant-first order **higher is
        better** (the score falls early); for least-relevant-first lower is better.

    References
    ----------
    Samek et al. (2017), IEEE TNNLS, eq. (12) (the average over the L + 1 points includes the
    zero at k = 0). Introduced in notebook ``12_evaluation_selectivity``.
    """
    if not isinstance(curves, torch.Tensor) or curves.dim() != 2 or curves.shape[1] < 2:
        raise ValueError("curves must be an (N, steps + 1) tensor with steps >= 1, got "
                         f"{getattr(curves, 'shape', type(curves).__name__)}")
    if not torch.isfinite(curves).all():
        raise ValueError("curves contain NaN or infinite values")
    return (curves[:, :1] - curves).mean(1)

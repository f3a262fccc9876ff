"""Continuity: does the explanation change little when the input changes little?

Montavon, Samek and Müller (2018) ask for explanations that are continuous in the input: for
nearly equal inputs, nearly equal heatmaps. Measured over a set of small shifts ``x -> x_s``,

    continuity(x) = max_s ||R(x) - R(x_s)||_1 / ||x - x_s||_2        (lower is better)

with ``x_s`` the image translated by ``s`` pixels along the width (the new column filled), as
Quantus's ``Continuity``. :func:`continuity_profile` also returns the output change
``|f_c(x) - f_c(x_s)|``, to set the explanation change against the change of the function
(a method can only be as continuous as the model). All shifted copies of all images are
explained in one batched call of :func:`xaikit.explain`.

Quantus's ``Continuity`` ignores a given ``a_batch`` (it explains again), explains one shift
per call, normalises by the batch maximum and takes absolute values by default, and its shift
grid (``nr_steps=28``: translations from ``-W + dx`` in steps ``dx = (2W + 1) // 28``) contains
the zero shift, whose ``||x - x_s|| = 0`` turns any randomness of a stochastic explainer
(SmoothGrad) into ``noise / 1e-9``. Here the zero shift is rejected.

References
----------
Montavon, Samek, Müller (2018), "Methods for interpreting and understanding deep neural
networks", Digital Signal Processing 73, section 7 (explanation continuity).

Introduced in notebook ``11_evaluation_properties``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Sequence

import torch
from torch import nn

from .._checks import check_int, prepare
from ..explain import explain
from ..references import fill_values
from ._inputs import as_heatmap

__all__ = ["continuity", "continuity_profile", "max_toy_model", "shift"]


def shift(x: torch.Tensor, dx: int, fill: float | str = 0.0) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` translated by ``dx`` pixels to the right (left if negative).

    The uncovered columns take ``fill`` (:func:`xaikit.methods.perturbation.fill_values`); Quantus's
    ``batched_translation`` fills with its ``"black"`` baseline, the image minimum.
    """
    if isinstance(dx, bool) or not isinstance(dx, int) or abs(dx) >= x.shape[-1]:
        raise ValueError(f"shift must be an int with |shift| < width {x.shape[-1]}, got {dx!r}")
    base = fill_values(x, fill)
    out = base.clone()
    if dx >= 0:
        out[..., dx:] = x[..., :x.shape[-1] - dx]
    else:
        out[..., :dx] = x[..., -dx:]
    return out


def continuity_profile(model: nn.Module, x: torch.Tensor,
                       target: int | Sequence[int] | torch.Tensor, method: str, *,
                       shifts: Sequence[int] = (-2, -1, 1, 2), fill: float | str = 0.0,
                       attr: torch.Tensor | None = None, aligned: bool = False,
                       **options: Any) -> dict[str, torch.Tensor]:
    """Explanation, input and output change under each shift, all ``(N, S)``.

    Parameters
    ----------
    model, x, target, method, **options
        As for :func:`xaikit.explain` (stochastic methods need a fixed ``seed``).
    shifts : sequence of int
        Non-zero translations in pixels (see :func:`shift`).
    fill : float or str
        Value of the uncovered columns.
    attr : torch.Tensor, optional
        The explanation of ``x`` if already computed (saves one explanation call).
    aligned : bool
        ``False`` (default, Montavon et al. 2018 and Quantus): compare ``R(x_s)`` with ``R(x)``
        pixel by pixel, so that a map that moves with its object counts as changed, and blur
        (which changes little under a small shift) is rewarded. ``True``: compare ``R(x_s)``
        with ``R(x)`` shifted by the same ``s`` (the columns the shift uncovers left out of
        both): the change of the explanation *beyond* following the object.

    Returns
    -------
    dict
        ``"explanation"``: ``||R(x) - R(x_s)||_1`` of the heatmaps (channel sums; with
        ``aligned=True``, ``||shift(R(x), s) - R(x_s)||_1`` over the covered columns);
        ``"input"``: ``||x - x_s||_2``; ``"output"``: ``|f_c(x) - f_c(x_s)|``; ``"shifts"``:
        ``(S,)``.
    """
    t = prepare(model, x, target)
    if isinstance(shifts, (str, bytes)) or not isinstance(shifts, Iterable):
        raise TypeError(f"shifts must be a sequence of non-zero ints, got {shifts!r}")
    shifts = [check_int("shift", s, low=None) for s in shifts]
    if not shifts or 0 in shifts:
        raise ValueError(f"shifts must be a non-empty sequence of non-zero ints, got {shifts}")
    n, s = x.shape[0], len(shifts)
    moved = torch.cat([shift(x.detach(), dx, fill) for dx in shifts])              # (S N, ...)
    both = torch.cat([x.detach(), moved])
    tt = t.repeat(s + 1)
    if attr is None:
        heat = as_heatmap(explain(model, both, tt, method, **options), both)
        heat0, heats = heat[:n], heat[n:].view(s, n, -1)
    else:
        heat0 = as_heatmap(attr, x)
        heats = as_heatmap(explain(model, moved, t.repeat(s), method, **options), moved)
        heats = heats.view(s, n, -1)
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")
    heat0 = heat0.reshape(n, *x.shape[2:])
    if aligned:      # R(x) moved with the image; the uncovered columns compared nowhere
        width = x.shape[-1]
        covered = torch.stack([(torch.arange(width, device=x.device) >= dx) if dx > 0 else
                               (torch.arange(width, device=x.device) < width + dx)
                               for dx in shifts])                               # (S, W)
        ref = torch.stack([shift(heat0[:, None], dx)[:, 0] for dx in shifts])   # (S, N, H, W)
        ref = (ref * covered[:, None, None, :]).flatten(2)
        heats = heats * covered[:, None, None, :].expand(s, n, *x.shape[2:]).flatten(2)
    else:
        ref = heat0.flatten(1).expand(s, n, -1)
    with torch.no_grad():
        logit = model(both).gather(1, tt.view(-1, 1))[:, 0]
    return {
        "explanation": (heats - ref).abs().sum(2).T,
        "input": (moved.view(s, n, -1) - x.detach().flatten(1)).norm(dim=2).T,
        "output": (logit[n:].view(s, n) - logit[:n]).abs().T,
        "shifts": torch.tensor(shifts),
    }


def continuity(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor,
               method: str, *, shifts: Sequence[int] = (-2, -1, 1, 2), fill: float | str = 0.0,
               attr: torch.Tensor | None = None, **options: Any) -> torch.Tensor:
    """Continuity ``max_s ||R(x) - R(x_s)||_1 / ||x - x_s||_2``, ``(N,)`` (lower is better).

    Parameters
    ----------
    model, x, target, method, **options
        As for :func:`xaikit.explain`.
    shifts, fill, attr
        See :func:`continuity_profile`.

    Returns
    -------
    torch.Tensor
        ``(N,)``, in relevance (logit) units per input unit; **lower is better**. Compare
        methods on the same model and images only.

    Notes
    -----
    Equals Quantus's ``Continuity(normalise=False, abs=False)`` over the same shifts when its
    ``"black"`` baseline (the image minimum) equals ``fill`` (tests/test_evaluation_quantus.py).

    References
    ----------
    Montavon, Samek, Müller (2018), Digital Signal Processing 73. Introduced in notebook
    ``11_evaluation_properties``.
    """
    profile = continuity_profile(model, x, target, method, shifts=shifts, fill=fill, attr=attr,
                                 **options)
    return (profile["explanation"] / profile["input"]).max(1).values


def max_toy_model(dtype: torch.dtype = torch.float64) -> nn.Module:
    """``f(x) = max(x1, x2)`` for ``x >= 0`` as a bias-free ReLU net, ``(N, 2) -> (N, 1)``.

    ``max(x1, x2) = (relu(x1 - x2) + relu(x2 - x1) + relu(x1 + x2)) / 2``: the toy case of
    Montavon et al. (2018), where Gradient x Input jumps from ``(x1, 0)`` to ``(0, x2)`` as the
    input crosses ``x1 = x2`` while the function stays continuous. Works with
    :func:`xaikit.explain` (2-D inputs) and :func:`continuity_profile`'s formula by hand.
    """
    net = nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU(), nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]]))
        net[2].weight.copy_(torch.tensor([[0.5, 0.5, 0.5]]))
    return net.to(dtype).eval().requires_grad_(False)

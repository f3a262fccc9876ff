"""95 % intervals for the numbers a notebook asserts about a trained model.

A claim about trained behaviour ("the star's recall drops without the mark") is measured on a
sample of images; these two functions give the interval that goes with it, so that a notebook
asserts a difference only where the intervals separate. Both are thin wrappers around SciPy:
:func:`proportion_interval` is ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``
(the Wilson score interval, sensible also near 0 and 1), :func:`mean_interval` the Student-t
interval of ``scipy.stats.t``. They exist only to give every notebook the same two-line call
and the same printed form.

Introduced in notebook ``14_clever_hans``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .._checks import check_real

__all__ = ["mean_interval", "proportion_interval"]


def proportion_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` of a proportion ``successes / n``.

    Raises
    ------
    ValueError
        ``n < 1`` or ``successes`` outside ``[0, n]``, or ``confidence`` not in (0, 1).
    """
    from scipy.stats import binomtest

    successes, n = int(successes), int(n)
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    check_real("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def mean_interval(values: torch.Tensor | Sequence[float],
                  confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its Student-t interval
    ``mean -+ t_{(1+confidence)/2, n-1} * std / sqrt(n)`` (computed in float64).

    Raises
    ------
    ValueError
        Fewer than two values, or a value that is NaN or infinite.
    """
    from scipy.stats import t

    v = torch.as_tensor(values).detach().double().flatten().cpu()
    if len(v) < 2:
        raise ValueError(f"need at least two values for an interval, got {len(v)}")
    if not torch.isfinite(v).all():
        raise ValueError("values contain NaN or infinite entries")
    check_real("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    mean = v.mean().item()
    half = float(t.ppf((1 + confidence) / 2, len(v) - 1)) * v.std().item() / math.sqrt(len(v))
    return mean, mean - half, mean + half

"""95 % intervals: Wilson score interval and Student-t interval, against hand computations."""
import math

import pytest
import torch

from xaikit.evaluation import mean_interval, proportion_interval


def _wilson(k, n, z=1.959963984540054):  # the textbook formula, written out
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k, n", [(8, 10), (0, 20), (20, 20), (57, 103)])
def test_wilson_matches_the_formula(k, n):
    low, high = proportion_interval(k, n)
    ref_low, ref_high = _wilson(k, n)
    assert low == pytest.approx(ref_low, abs=1e-9) and high == pytest.approx(ref_high, abs=1e-9)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_mean_interval_by_hand():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    mean, low, high = mean_interval(values)
    # t_{0.975, 3} = 3.182446305284263, std = sqrt(5/3)
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert mean == 2.5 and low == pytest.approx(2.5 - half) and high == pytest.approx(2.5 + half)
    assert mean_interval([5.0, 5.0, 5.0]) == (5.0, 5.0, 5.0)


@pytest.mark.parametrize("call", [
    lambda: proportion_interval(3, 2), lambda: proportion_interval(0, 0),
    lambda: proportion_interval(-1, 5), lambda: proportion_interval(1, 5, confidence=1.0),
    lambda: mean_interval([1.0]), lambda: mean_interval([1.0, float("nan")]),
    lambda: mean_interval([1.0, 2.0], confidence=0.0),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()

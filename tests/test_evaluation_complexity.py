"""Roughness, path variation and autocorrelation against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

import xaikit.evaluation as ev


def test_roughness_closed_forms():
    constant = torch.full((1, 3, 4, 4), 2.0)
    checker = torch.tensor([[(-1.0) ** (i + j) for j in range(4)] for i in range(4)])[None]
    ramp = torch.arange(4.0).repeat(4, 1)[None]                 # columns 0 1 2 3
    r = ev.roughness(torch.cat([constant.sum(1), checker, ramp]))
    # constant: no difference; checkerboard: every neighbour differs by 2, mean |h| = 1;
    # ramp: rows identical (0), columns step 1, mean |h| = 1.5 -> (0 + 1) / 3
    assert r.tolist() == pytest.approx([0.0, 2.0, 1 / 3])
    assert torch.equal(ev.roughness(7 * checker), ev.roughness(checker))      # scale-free
    assert math.isnan(ev.roughness(torch.zeros(1, 4, 4)).item())


def test_path_variation_and_autocorrelation():
    assert ev.path_variation(torch.linspace(0, 1, 11)) == pytest.approx(1.0)
    zigzag = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])
    assert ev.path_variation(zigzag) == pytest.approx(4.0)
    # lag-1 autocorrelation of the zigzag: deviations -0.4, 0.6, ... -> -0.96 / 1.2 = -0.8
    assert ev.autocorrelation(zigzag) == pytest.approx(-0.8)
    with pytest.raises(ValueError, match="1-D float series"):
        ev.path_variation(torch.zeros(2, 2))

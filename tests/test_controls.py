"""The control methods (``random``, ``uniform``, ``center``) against closed forms."""
from __future__ import annotations

import math

import torch
from reference_gradients import conv_net, inputs, logit

import xaikit as xk


def test_uniform_and_center_spread_the_logit():
    net, x, t = conv_net(), inputs(2), [0, 1]      # logits -17.4 and +15.0
    f = logit(net, x, t).detach()
    uniform = xk.explain(net, x, t, "uniform")
    assert torch.allclose(uniform, f.view(-1, 1, 1, 1).expand_as(x) / (3 * 8 * 8), rtol=1e-12)
    center = xk.explain(net, x, t, "center", width=0.25)
    assert (f < 0).any() and (f > 0).any()                       # both signs are covered
    assert torch.allclose(center.flatten(1).sum(1), f.abs(), rtol=1e-12)
    # a Gaussian of std 2 pixels around (3.5, 3.5), written out pixel by pixel
    g = torch.tensor([[math.exp(-((i - 3.5) ** 2 + (j - 3.5) ** 2) / (2 * 2.0 ** 2))
                       for j in range(8)] for i in range(8)], dtype=torch.float64)
    expected = f.abs().view(-1, 1, 1, 1) * (g / g.sum() / 3).expand(2, 3, 8, 8)
    assert torch.allclose(center, expected, rtol=1e-12)
    for heat in center.sum(1):
        assert heat[3:5, 3:5].min() == heat.max()                # the four central pixels


def test_random_ignores_model_input_and_target():
    a = xk.explain(conv_net(seed=0), inputs(2, seed=1), [0, 1], "random", seed=3)
    b = xk.explain(conv_net(seed=5), inputs(1, seed=9), 2, "random", seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[0])
    assert not torch.equal(a, xk.explain(conv_net(), inputs(2), 0, "random", seed=4))
    assert abs(float(a.mean())) < 0.3 and 0.7 < float(a.std()) < 1.3

"""Occlusion, LIME and Meaningful Perturbation on tiny float64 models."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_gradients import conv_net, inputs, lime_least_squares, logit, occlusion_loop, single_thread  # noqa: F401
from torch import nn

import xaikit as xk
from xaikit.methods.perturbation import superpixels
from xaikit.models import SHAPES_SPEC
from xaikit.references import fill_values, gaussian_blur

TIGHT = dict(rtol=0, atol=1e-12)


@pytest.mark.parametrize("fill", [0.0, -1.5, "mean", "blur", "noise"])
def test_one_pixel_occlusion_is_the_pixel_effect(fill):
    net, x = conv_net(), inputs(2)
    # the map is spread over the channels
    attr = xk.explain(net, x, [1, 2], "occlusion", window=1, fill=fill) * x.shape[1]
    base = fill_values(x, fill)
    for k, t in enumerate([1, 2]):
        for i, j in [(0, 0), (3, 5), (7, 7)]:
            filled = x[k:k + 1].clone()
            filled[:, :, i, j] = base[k:k + 1, :, i, j]
            effect = logit(net, x[k:k + 1], t) - logit(net, filled, t)
            assert torch.allclose(attr[k, :, i, j], effect.expand(3), **TIGHT)


@pytest.mark.parametrize("window, stride, fill", [(3, 2, "blur"), (4, 4, "mean"), (5, 3, 0.0)])
def test_occlusion_matches_the_window_loop(window, stride, fill):
    net, x = conv_net(), inputs(2)
    attr = xk.explain(net, x, [0, 2], "occlusion", window=window, stride=stride, fill=fill,
                      batch_size=3) * x.shape[1]  # the map is spread over the channels
    for k, t in enumerate([0, 2]):
        expected = occlusion_loop(net, x[k:k + 1], t, window, stride, fill_values(x, fill)[k:k + 1])
        assert expected.abs().max() > 1e-3
        assert torch.allclose(attr[k:k + 1], expected, **TIGHT)


def test_occlusion_probability_measure():
    net, x = conv_net(), inputs(1)
    # the map is spread over the channels
    attr = xk.explain(net, x, 1, "occlusion", window=4, measure="probability") * x.shape[1]
    expected = occlusion_loop(net, x, 1, 4, 4, torch.zeros_like(x),
                              score=lambda inp: torch.softmax(net(inp), 1)[:, 1])
    assert torch.allclose(attr, expected, **TIGHT)
    assert attr.abs().max() <= 1


def test_occlusion_fill_changes_the_map():
    net, x = conv_net(), inputs(1)
    zero, blur = (xk.explain(net, x, 0, "occlusion", window=2, fill=f) for f in (0.0, "blur"))
    assert (zero - blur).abs().max() > 1e-3


def test_occlusion_default_window_and_no_progress_bar(capsys):
    net, x = conv_net(), inputs(1)
    default = xk.explain(net, x, 0, "occlusion")  # 8 // 8 = 1-pixel windows
    assert torch.equal(default, xk.explain(net, x, 0, "occlusion", window=1, stride=1))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("options, match", [
    (dict(window=9), "window"), (dict(window=0), "window"), (dict(window=2, stride=3), "stride"),
    (dict(fill="grey"), "fill"), (dict(measure="softmax"), "measure"),
    (dict(batch_size=0), "batch_size")])
def test_occlusion_rejects_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        xk.explain(conv_net(), inputs(1), 0, "occlusion", **options)


def test_fill_values():
    x = inputs(2)
    assert torch.allclose(fill_values(x, "mean"), x.mean((2, 3), keepdim=True).expand_as(x))
    assert torch.equal(fill_values(x, "blur"), gaussian_blur(x))
    assert torch.equal(fill_values(x, "zero"), torch.zeros_like(x))
    noise = fill_values(x, "noise", seed=1)
    assert torch.equal(noise, fill_values(x, "noise", seed=1))
    assert not torch.equal(noise, fill_values(x, "noise", seed=2))
    assert torch.allclose(noise.mean((2, 3)), x.mean((2, 3)), atol=0.5)
    with pytest.raises(TypeError):
        fill_values(x, True)


def test_noise_fill_leaves_global_rng_alone(rng_state_guard):
    xk.explain(conv_net(), inputs(1), 0, "occlusion", window=4, fill="noise", seed=3)


# ----------------------------------------------------------------------------- LIME
def _linear_net(seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)).double()
    return net.eval().requires_grad_(False)


def test_lime_recovers_a_model_linear_in_the_superpixels():
    net, x = _linear_net(), inputs(1)
    labels = superpixels(net, x, segments=6)[0]
    w = net[1].weight[1].view(3, 8, 8)
    contributions = (w * x[0]).sum(0)       # fill 0: switching a superpixel off removes w x
    expected = torch.zeros_like(contributions)
    for s in labels.unique():
        expected[labels == s] = contributions[labels == s].sum()
    # the map is spread over the channels
    attr = xk.explain(net, x, 1, "lime", segments=6, samples=64, alpha=0.0) * x.shape[1]
    assert len(labels.unique()) >= 3
    assert torch.allclose(attr[0], expected.expand(3, 8, 8), rtol=1e-8, atol=1e-9)
    sparse = xk.explain(net, x, 1, "lime", segments=6, samples=64)  # Lasso, alpha 0.01
    assert np.corrcoef(sparse[0, 0].flatten(), expected.flatten())[0, 1] > 0.95


def test_lime_is_kernel_weighted_least_squares_on_a_nonlinear_model():
    net, x = conv_net(), inputs(1)
    labels = superpixels(net, x, segments=8)[0]
    s = int(labels.max()) + 1
    z = (torch.rand((40, s), generator=torch.Generator().manual_seed(4)) < 0.5).double()
    z[0] = 1                                     # LIME's first sample is the image itself
    expected = lime_least_squares(net, x, 2, labels, z, fill_values(x, "mean"), 0.5)
    attr = xk.explain(net, x, 2, "lime", segments=8, samples=40, seed=4, alpha=0.0,
                      kernel_width=0.5, fill="mean") * x.shape[1]  # the map is spread over the channels
    assert expected.abs().max() > 1e-2
    assert torch.allclose(attr[0, 1], expected, rtol=1e-8, atol=1e-10)


def test_lime_is_constant_on_superpixels_and_seeded(rng_state_guard):
    net, x = conv_net(), inputs(1)
    a = xk.explain(net, x, 2, "lime", segments=8, samples=48, seed=1)
    b = xk.explain(net, x, 2, "lime", segments=8, samples=48, seed=1)
    c = xk.explain(net, x, 2, "lime", segments=8, samples=48, seed=2)
    labels = superpixels(net, x, 8)[0]
    assert torch.equal(a, b) and (a - c).abs().max() > 1e-4
    for s in labels.unique():
        assert a[0, :, labels == s].unique().numel() == 1


def test_superpixels_use_the_denormalised_image():
    from skimage.segmentation import slic

    net, x = conv_net(), inputs(1, shape=(3, 16, 16))
    net.xaikit_spec = SHAPES_SPEC
    image = xk.denormalize(x, net)[0].permute(1, 2, 0).numpy()
    expected = slic(image, n_segments=10, slic_zero=True, start_label=0, channel_axis=-1)
    labels = superpixels(net, x, 10)[0].numpy()
    assert labels.min() == 0 and labels.max() == len(np.unique(labels)) - 1
    same = [len(np.unique(expected[labels == s])) == 1 for s in np.unique(labels)]
    assert all(same) and len(np.unique(labels)) == len(np.unique(expected))


# ----------------------------------------------------------------------------- Fong & Vedaldi
REGION = (slice(2, 8), slice(2, 8))


def _region_net_and_input():
    """16x16 input; class 0's logit is the match of a checkerboard in the 6x6 ``REGION``."""
    pattern = torch.zeros(3, 16, 16, dtype=torch.float64)
    checker = (torch.arange(6).view(-1, 1) + torch.arange(6)) % 2 * 2.0 - 1
    pattern[:, REGION[0], REGION[1]] = checker
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 2, device="meta")).to_empty(
        device="cpu").double()                      # no initialisation, no global RNG used
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].weight[0] = pattern.flatten() / 36    # logit 0 = 3 on the pattern
        net[1].bias.zero_()
    x = pattern.unsqueeze(0) + 0.3 * inputs(1, seed=5, shape=(3, 16, 16))
    return net.eval().requires_grad_(False), x


def test_meaningful_perturbation_deletes_the_deciding_region():
    net, x = _region_net_and_input()
    # the map is spread over the channels
    attr = xk.explain(net, x, 0, "meaningful_perturbation", mask_size=8, iterations=150,
                      measure="logit") * x.shape[1]
    assert attr.shape == x.shape and attr.min() >= 0 and attr.max() <= 1
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[REGION] = True
    assert attr[0, 0][inside].mean() > 0.5 > 2 * attr[0, 0][~inside].mean()
    keep = 1 - attr
    phi = keep * x + (1 - keep) * gaussian_blur(x)
    before, after = net(x)[0, 0], net(phi)[0, 0]
    assert after < 0.5 * before, (before, after)


def test_meaningful_perturbation_probability_is_the_default():
    """The paper's score: the default deletes the same region, judged by the softmax."""
    net, x = _region_net_and_input()
    options = dict(mask_size=8, iterations=150)
    attr = xk.explain(net, x, 0, "meaningful_perturbation", **options)
    assert torch.equal(attr, xk.explain(net, x, 0, "meaningful_perturbation", measure="probability",
                                        **options))
    assert not torch.equal(attr, xk.explain(net, x, 0, "meaningful_perturbation", measure="logit",
                                            **options))
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[REGION] = True
    attr = attr * x.shape[1]
    # a weaker area penalty (the paper's) than the logit's: more is deleted outside, twice less
    assert attr[0, 0][inside].mean() > max(0.5, 2 * attr[0, 0][~inside].mean())
    keep = 1 - attr
    phi = keep * x + (1 - keep) * gaussian_blur(x)
    p_before, p_after = (net(v).softmax(1)[0, 0] for v in (x, phi))
    # two classes: p -> 1/2 as the evidence goes, while the logit goes to 0
    assert p_after < p_before - 0.5 * (p_before - 0.5), (p_before, p_after)
    assert net(phi)[0, 0] < 0.5 * net(x)[0, 0]


def test_meaningful_perturbation_seeded(rng_state_guard):
    net, x = _region_net_and_input()
    options = dict(mask_size=4, iterations=20, jitter=2)
    a = xk.explain(net, x, 0, "meaningful_perturbation", seed=0, **options)
    b = xk.explain(net, x, 0, "meaningful_perturbation", seed=0, **options)
    c = xk.explain(net, x, 0, "meaningful_perturbation", seed=1, **options)
    assert torch.equal(a, b) and (a - c).abs().max() > 1e-4


def test_meaningful_perturbation_bad_options():
    net, x = _region_net_and_input()
    for options in (dict(iterations=0), dict(mask_size=17), dict(measure="loss"), dict(sigma=0)):
        with pytest.raises(ValueError):
            xk.explain(net, x, 0, "meaningful_perturbation", **options)

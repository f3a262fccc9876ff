"""Gradient, Gradient x Input, Integrated Gradients, SmoothGrad, Deconvnet, Guided Backprop
against the slow references of ``reference_gradients.py`` (float64 tiny models)."""
from __future__ import annotations

import warnings

import pytest
import torch
from reference_gradients import (
    conv_net,
    finite_difference_gradient,
    inputs,
    integrated_gradients_riemann,
    logit,
    mlp,
    mlp_gradient,
    modified_backward,  # noqa: F401
    smooth_net,
)
from torch import nn

import xaikit as xk
from xaikit.models import SHAPES_SPEC, shapes_architecture
from xaikit.references import resolve_baseline

TIGHT = dict(rtol=0, atol=1e-10)


def test_gradient_matches_finite_differences():
    net, x = conv_net(), inputs(1)
    attr = xk.explain(net, x, 2, "gradient")
    assert torch.allclose(attr, finite_difference_gradient(net, x, 2), rtol=1e-6, atol=1e-8)


def test_gradient_matches_explicit_matrix_product():
    net, x = mlp(), inputs(1, shape=(6,))
    for target in range(3):
        expected = mlp_gradient(net, x, target)
        assert expected.abs().max() > 0
        assert torch.allclose(xk.explain(net, x, target, "gradient"), expected, **TIGHT)


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_gradient_is_signed_unlike_captum_saliency_default():
    from captum.attr import Saliency

    net, x = conv_net(), inputs(2)
    attr = xk.explain(net, x, [0, 1], "gradient")
    assert (attr < 0).any() and (attr > 0).any()
    signed = Saliency(net).attribute(x, target=torch.tensor([0, 1]), abs=False)
    assert torch.allclose(attr, signed, **TIGHT)
    assert not torch.allclose(attr, Saliency(net).attribute(x, target=torch.tensor([0, 1])))


def test_gradient_x_input():
    net, x = conv_net(), inputs(1)
    expected = x * finite_difference_gradient(net, x, 1)
    assert torch.allclose(xk.explain(net, x, 1, "gradient_x_input"), expected, rtol=1e-6,
                          atol=1e-8)


def test_ig_equals_gradient_x_input_for_bias_free_relu_net():
    net, x = conv_net(bias=False), inputs(3)
    ig = xk.explain(net, x, [0, 1, 2], "integrated_gradients", steps=5)
    gxi = xk.explain(net, x, [0, 1, 2], "gradient_x_input")
    assert gxi.abs().max() > 1e-3
    assert torch.allclose(ig, gxi, rtol=1e-10, atol=1e-12)


def test_ig_is_exact_on_a_linear_model_even_with_two_steps():
    # captum's riemann_trapezoid would give 0.5 of the value here (weights sum to 1 - 1/n)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).double()
    x = inputs(2, shape=(3, 2, 2))
    expected = x * net[1].weight[1].view(1, 3, 2, 2)
    ig = xk.explain(net, x, 1, "integrated_gradients", steps=2)
    assert torch.allclose(ig, expected, **TIGHT)


def _completeness_error(net, x, target, steps, baseline=None):
    ig = xk.explain(net, x, target, "integrated_gradients", steps=steps, baseline=baseline)
    x0 = resolve_baseline(net, x, baseline)
    delta = logit(net, x, target) - logit(net, x0, target)
    return ((ig.sum(dim=(1, 2, 3)) - delta).abs() / delta.abs()).max().item()


def test_ig_completeness_error_decreases_with_steps_on_a_smooth_net():
    net, x = smooth_net(), inputs(2)
    errors = [_completeness_error(net, x, [0, 2], steps) for steps in (1, 2, 4, 8, 16)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-8


def test_ig_completeness_on_a_relu_net_with_biases():
    net, x = conv_net(), inputs(2)
    coarse, fine = (_completeness_error(net, x, [0, 2], s) for s in (2, 256))
    assert fine < coarse and fine < 1e-2, (coarse, fine)


def test_ig_matches_explicit_riemann_sum():
    net, x = smooth_net(), inputs(1)
    x0 = torch.full_like(x, 0.3)
    expected = integrated_gradients_riemann(net, x, x0, 1, steps=2000)
    ig = xk.explain(net, x, 1, "integrated_gradients", baseline=0.3, steps=64)
    assert torch.allclose(ig, expected, rtol=1e-5, atol=1e-8 * expected.abs().max())


@pytest.mark.parametrize("baseline", [None, 0.5, "black", "blur", "tensor"])
def test_ig_baselines_satisfy_completeness(baseline):
    net, x = smooth_net(), inputs(2)
    net.xaikit_spec = SHAPES_SPEC
    if baseline == "tensor":
        baseline = inputs(1, seed=7)
    assert _completeness_error(net, x, [1, 0], 64, baseline) < 1e-7


def test_ig_black_baseline_is_the_model_spec_low():
    net, x = smooth_net(), inputs(1)
    net.xaikit_spec = SHAPES_SPEC
    black = xk.explain(net, x, 0, "integrated_gradients", baseline="black")
    explicit = xk.explain(net, x, 0, "integrated_gradients",
                          baseline=SHAPES_SPEC.low.double())
    assert torch.allclose(black, explicit, **TIGHT)
    with pytest.raises(ValueError, match="baseline"):
        xk.explain(net, x, 0, "integrated_gradients", baseline="white")


def test_ig_batch_size_does_not_change_the_result():
    net, x = conv_net(), inputs(3)
    a = xk.explain(net, x, [0, 1, 2], "integrated_gradients", steps=16, batch_size=3)
    b = xk.explain(net, x, [0, 1, 2], "integrated_gradients", steps=16, batch_size=1000)
    assert torch.allclose(a, b, **TIGHT)


def _smoothgrad_by_hand(net, x, target, noise, samples, seed, unit="range"):
    # sigma per the docstring: noise x (max - min), or noise x the population std of x's values
    values = x.flatten().tolist()
    mean = sum(values) / len(values)
    scale = (max(values) - min(values) if unit == "range"
             else (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5)
    sigma = noise * scale
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros_like(x)
    for _ in range(samples):
        noisy = x + sigma * torch.randn(x.shape[1:], generator=generator, dtype=x.dtype)
        total += finite_difference_gradient(net, noisy, target)
    return total / samples


def test_smoothgrad_is_the_mean_gradient_over_noisy_copies():
    net, x = conv_net(), inputs(1)
    attr = xk.explain(net, x, 0, "smoothgrad", noise=0.2, samples=5, seed=3)
    expected = _smoothgrad_by_hand(net, x, 0, 0.2, 5, 3)
    assert torch.allclose(attr, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_smoothgrad_batching_does_not_change_the_result(batch_size):
    net, x = conv_net(), inputs(2)
    expected = torch.stack([_smoothgrad_by_hand(net, x[k:k + 1], k, 0.2, 5, 3)[0] for k in range(2)])
    attr = xk.explain(net, x, [0, 1], "smoothgrad", noise=0.2, samples=5, seed=3,
                      batch_size=batch_size)
    assert torch.allclose(attr, expected, rtol=1e-6, atol=1e-8)


def test_smoothgrad_seeds_and_global_rng(rng_state_guard):
    net, x = conv_net(), inputs(2)
    a = xk.explain(net, x, [0, 1], "smoothgrad", samples=4, seed=1)
    b = xk.explain(net, x, [0, 1], "smoothgrad", samples=4, seed=1)
    c = xk.explain(net, x, [0, 1], "smoothgrad", samples=4, seed=2)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_smoothgrad_without_noise_is_the_base_method():
    net, x = conv_net(), inputs(2)
    for base in ("gradient", "gradient_x_input", "guided_backprop"):
        smooth = xk.explain(net, x, [2, 0], "smoothgrad", base=base, noise=0.0, samples=2)
        assert torch.allclose(smooth, xk.explain(net, x, [2, 0], base), **TIGHT)


def test_smoothgrad_passes_base_options():
    net, x = smooth_net(), inputs(1)
    smooth = xk.explain(net, x, 1, "smoothgrad", base="integrated_gradients", noise=0.0,
                        samples=1, base_options={"baseline": 0.5, "steps": 3})
    direct = xk.explain(net, x, 1, "integrated_gradients", baseline=0.5, steps=3)
    assert torch.allclose(smooth, direct, **TIGHT)
    with pytest.raises(TypeError, match="stepz"):
        xk.explain(net, x, 1, "smoothgrad", base="integrated_gradients",
                   base_options={"stepz": 3})


def test_smoothgrad_noise_in_std_units_is_the_mean_over_noisy_copies():
    # smooth_net: the gradient changes with the noise scale everywhere, so a wrong sigma (the
    # range instead of the std, or the sample std's n - 1: 0.26 % larger on 192 values) shows
    net, x = smooth_net(), inputs(1)
    attr = xk.explain(net, x, 1, "smoothgrad", noise=0.5, noise_unit="std", samples=5, seed=3)
    expected = _smoothgrad_by_hand(net, x, 1, 0.5, 5, 3, unit="std")
    assert torch.allclose(attr, expected, rtol=1e-6, atol=1e-8)
    sample_std = _smoothgrad_by_hand(net, x, 1, 0.5 * (192 / 191) ** 0.5, 5, 3, unit="std")
    assert not torch.allclose(attr, sample_std, rtol=1e-6, atol=1e-8)
    in_range = xk.explain(net, x, 1, "smoothgrad", noise=0.5, samples=5, seed=3)
    assert (attr - in_range).abs().max() > 1e-3


def test_smoothgrad_noise_units_convert_per_sample():
    # two inputs with different std / range ratios: "std" is each one's own std, in a batch too
    net = smooth_net()
    x = inputs(2)
    x[1] = 3 * x[1] + 1
    x[1, 0, 0, 0] = 40.0                      # one outlier: the range grows far more than the std
    flat = x.flatten(1)
    ratio = flat.std(1, correction=0) / (flat.max(1).values - flat.min(1).values)
    assert (ratio[0] - ratio[1]).abs() > 0.05
    in_std = xk.explain(net, x, [0, 2], "smoothgrad", noise=0.3, noise_unit="std", samples=3,
                        seed=4, batch_size=2)
    for k, t in enumerate((0, 2)):
        in_range = xk.explain(net, x[k:k + 1], t, "smoothgrad", noise=0.3 * ratio[k].item(),
                              noise_unit="range", samples=3, seed=4)
        assert torch.allclose(in_std[k:k + 1], in_range, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("unit, error, match", [
    ("percent", ValueError, "noise_unit must be 'range'.*'std'.*got 'percent'"),
    ("STD", ValueError, "noise_unit"),
    (None, TypeError, "noise_unit must be 'range' or 'std', got None"),
    (1.0, TypeError, "noise_unit")])
def test_smoothgrad_rejects_bad_noise_unit(unit, error, match):
    with pytest.raises(error, match=match):
        xk.explain(conv_net(), inputs(1), 0, "smoothgrad", noise=0.5, noise_unit=unit, samples=1)


@pytest.mark.parametrize("base", ["smoothgrad", "no_such_method", 3])
def test_smoothgrad_rejects_bad_base(base):
    with pytest.raises(ValueError):
        xk.explain(conv_net(), inputs(1), 0, "smoothgrad", base=base)


@pytest.mark.parametrize("method, rule", [("deconvnet", "deconvnet"),
                                          ("guided_backprop", "guided")])
def test_modified_relu_backward_matches_explicit_rules(method, rule):
    net, x = conv_net(), inputs(3)
    attr = xk.explain(net, x, [0, 1, 2], method)
    expected = modified_backward(net, x, torch.tensor([0, 1, 2]), rule)
    assert expected.abs().max() > 1e-3
    assert torch.allclose(attr, expected, **TIGHT)
    plain = xk.explain(net, x, [0, 1, 2], "gradient")
    assert not torch.allclose(attr, plain)  # the rule changes something


def test_guided_backprop_on_vgg_layout_with_inplace_relus():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = shapes_architecture().double().eval().requires_grad_(False)
    x = inputs(1, shape=(3, 64, 64))
    attr = xk.explain(net, x, 3, "guided_backprop")
    expected = modified_backward(net, x, 3, "guided")
    assert torch.allclose(attr, expected, rtol=1e-9, atol=1e-12 * expected.abs().max())


@pytest.mark.parametrize("method", ["gradient", "integrated_gradients", "guided_backprop"])
def test_parameters_that_require_grad_get_no_grad(method):
    net, x = conv_net(), inputs(2)
    expected = xk.explain(net, x, [0, 1], method)
    net.requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about it either
        attr = xk.explain(net, x, [0, 1], method)
    assert torch.allclose(attr, expected, **TIGHT)
    assert all(p.grad is None for p in net.parameters())

"""Conservation (also per LRP layer), positivity and continuity: closed forms and bad input."""
from __future__ import annotations

import pytest
import torch
from evaluation_nets import images, linear_net, random_maps, tiny_conv_net
from torch import nn

import xaikit as xk

ev = xk.evaluation


def bias_free(net: nn.Module) -> nn.Module:
    for module in net.modules():
        if getattr(module, "bias", None) is not None:
            module.bias.zero_()
    return net


def test_conservation_closed_forms():
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn((3, 6, 6), generator=gen, dtype=torch.float64)
    x = torch.randn((4, 3, 6, 6), generator=gen, dtype=torch.float64)
    net = linear_net(weight)
    logit = (weight * x).sum(dim=(1, 2, 3))
    exact = ev.conservation(net, x, weight * x, 0)
    assert exact.shape == (4,) and (exact < 1e-12).all()
    gradient = weight.expand_as(x)  # sums to sum(w), not to the logit
    expected = (weight.sum() - logit).abs() / logit.abs()
    torch.testing.assert_close(ev.conservation(net, x, gradient, 0), expected)
    biased = linear_net(weight, bias=2.0)
    baseline = torch.zeros_like(x[:1])  # f(x) - f(0) = <w, x>: what IG/DeepLIFT conserve
    assert (ev.conservation(biased, x, weight * x, 0, baseline=baseline) < 1e-12).all()
    torch.testing.assert_close(ev.conservation(biased, x, weight * x, 0),
                               2.0 / (logit + 2.0).abs())


def test_conservation_of_methods_on_a_bias_free_net():
    net = bias_free(tiny_conv_net(dtype=torch.float64))
    x, t = images(dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    for method, options in (("gradient_x_input", {}), ("lrp", {"rule": "0"})):
        attr = xk.explain(net, x, t, method, **options)
        # LRP-0's stabiliser (1e-9 on activations of ~1e-3 here) leaves ~1e-7
        assert (ev.conservation(net, x, attr, t) < 1e-6).all(), method


def test_lrp_layer_sums_are_conserved_without_bias():
    net = tiny_conv_net(dtype=torch.float64)  # with biases
    x, t = images(dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    sums = ev.lrp_layer_sums(net, x, t, rule="0", bias=False)
    assert list(sums) == ["output", "6", "3", "0", "input"]
    for name, total in sums.items():
        torch.testing.assert_close(total, sums["output"], rtol=1e-5, atol=0, msg=name)
    attr = xk.explain(net, x, t, "lrp", rule="0", bias=False)
    torch.testing.assert_close(sums["input"], attr.flatten(1).sum(1))
    with_bias = ev.lrp_layer_sums(net, x, t, rule="0")  # biases absorb relevance
    drift = max(float(((v - with_bias["output"]) / with_bias["output"]).abs().max())
                for v in with_bias.values())
    assert drift > 1e-2
    # the first layer's incoming relevance is what reaches the input (the conv's own rule
    # moves it to the pixels): R at the input of layer "0" is the relevance of x itself
    torch.testing.assert_close(with_bias["0"], with_bias["input"], rtol=1e-9, atol=1e-12)


def test_positivity_hand_cases():
    attr = torch.tensor([[[1.0, -1.0], [2.0, 0.0]], [[1.0, 2.0], [0.0, 3.0]],
                         [[-1.0, -2.0], [0.0, 0.0]]])
    torch.testing.assert_close(ev.positivity(attr), torch.tensor([0.25, 0.0, 1.0]))
    assert torch.isnan(ev.positivity(torch.zeros(1, 3, 2, 2))).all()
    # channel sum first: +1 and -1 in two channels of one pixel cancel
    assert torch.isnan(ev.positivity(torch.tensor([[[[1.0]], [[-1.0]]]])))
    with pytest.raises(ValueError, match="NaN"):
        ev.positivity(torch.tensor([[[float("nan")]]]))
    with pytest.raises(TypeError):
        ev.positivity(torch.ones(1, 2, 2, dtype=torch.long))


def shift_by_hand(x: torch.Tensor, dx: int) -> torch.Tensor:
    out = torch.zeros_like(x)
    width = x.shape[-1]
    for j in range(width):
        if 0 <= j - dx < width:
            out[..., j] = x[..., j - dx]
    return out


def test_shift_and_continuity_closed_form():
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn((3, 5, 7), generator=gen, dtype=torch.float64)
    x = torch.randn((2, 3, 5, 7), generator=gen, dtype=torch.float64)
    for dx in (-3, -1, 2, 6):
        assert torch.equal(ev.shift(x, dx), shift_by_hand(x, dx))
    net = linear_net(weight)
    # The gradient of a linear model does not depend on x: perfectly continuous.
    assert torch.equal(ev.continuity(net, x, 0, "gradient"), torch.zeros(2, dtype=x.dtype))
    shifts = (-2, 1, 3)
    profile = ev.continuity_profile(net, x, 0, "gradient_x_input", shifts=shifts)
    for k, dx in enumerate(shifts):
        delta = shift_by_hand(x, dx) - x
        torch.testing.assert_close(profile["explanation"][:, k],
                                   (weight * delta).sum(1).abs().sum(dim=(1, 2)))
        torch.testing.assert_close(profile["input"][:, k], delta.flatten(1).norm(dim=1))
        torch.testing.assert_close(profile["output"][:, k],
                                   (weight * delta).sum(dim=(1, 2, 3)).abs())
    value = ev.continuity(net, x, 0, "gradient_x_input", shifts=shifts)
    torch.testing.assert_close(value, (profile["explanation"] / profile["input"]).max(1).values)
    given = xk.explain(net, x, 0, "gradient_x_input")  # a precomputed explanation is reused
    torch.testing.assert_close(ev.continuity(net, x, 0, "gradient_x_input", shifts=shifts,
                                             attr=given), value)


def test_continuity_errors_and_seeded_methods(rng_state_guard):
    net, x = tiny_conv_net(), images(n=2)
    for shifts in ((), (0, 1), (12,)):
        with pytest.raises(ValueError):
            ev.continuity(net, x, 0, "gradient", shifts=shifts)
    a = ev.continuity(net, x, 0, "smoothgrad", samples=4, seed=3)
    assert torch.equal(a, ev.continuity(net, x, 0, "smoothgrad", samples=4, seed=3))


def test_conservation_bad_input():
    net, x = tiny_conv_net(), images(n=2)
    with pytest.raises(ValueError, match="does not match"):
        ev.conservation(net, x, random_maps(2, side=10), 0)
    with pytest.raises(ValueError, match="NaN"):
        ev.conservation(net, x, torch.full_like(x, float("nan")), 0)
    with pytest.raises(ValueError, match="out of range"):
        ev.conservation(net, x, x, 5)


def test_max_toy_model_and_the_gradient_x_input_jump():
    net = ev.max_toy_model()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((50, 2), generator=gen, dtype=torch.float64)
    torch.testing.assert_close(net(x)[:, 0], x.max(1).values)
    eps = 1e-6
    below = torch.tensor([[1.0 - eps, 1.0]], dtype=torch.float64)
    above = torch.tensor([[1.0 + eps, 1.0]], dtype=torch.float64)
    r_below = xk.explain(net, below, 0, "gradient_x_input")
    r_above = xk.explain(net, above, 0, "gradient_x_input")
    torch.testing.assert_close(r_below, torch.tensor([[0.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(r_above, torch.tensor([[1.0 + eps, 0.0]], dtype=torch.float64))
    # a jump of ~1 in the explanation for a 2e-6 change of the input (and of the output)
    assert float((r_above - r_below).abs().sum()) / float((above - below).norm()) > 1e5


def test_aligned_continuity_compares_the_map_moved_with_the_image():
    # f = c <1, x>: Gradient x Input is R = c x, so R(x_s) is R(x) moved by s exactly. Aligned,
    # nothing changes over the covered columns; unaligned, the change is the L1 distance of
    # c x to c x_s, written out here column by column
    c = 2.0
    x = images(n=3, side=8, dtype=torch.float64)
    lin = linear_net(torch.full((3, 8, 8), c, dtype=torch.float64))
    for dx in (-2, 1):
        aligned = ev.continuity_profile(lin, x, 0, "gradient_x_input", shifts=(dx,), aligned=True)
        assert aligned["explanation"].abs().max() < 1e-12
        plain = ev.continuity_profile(lin, x, 0, "gradient_x_input", shifts=(dx,))
        heat = c * x.sum(1)                                                    # (N, H, W)
        moved = torch.zeros_like(heat)
        if dx > 0:
            moved[..., dx:] = heat[..., :-dx]
        else:
            moved[..., :dx] = heat[..., -dx:]
        expected = (heat - moved).abs().flatten(1).sum(1)
        torch.testing.assert_close(plain["explanation"][:, 0], expected)
    with pytest.raises(TypeError, match="aligned"):
        ev.continuity_profile(lin, x, 0, "gradient", shifts=(1,), aligned=1)

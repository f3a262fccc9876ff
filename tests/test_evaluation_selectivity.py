"""Pixel flipping and AOPC: closed forms on a linear model, controls, seeds, bad input."""
from __future__ import annotations

import math

import pytest
import torch
from evaluation_nets import images, linear_net, random_maps, tiny_conv_net

import xaikit as xk

ev = xk.evaluation


def reference_curve(weight, x, heat, bias, patch, steps, descending=True):
    """Straight from the definition, one image, f(x) = <w, x> + b with 0 fill: removing a
    patch subtracts its contribution; patches ranked by their summed heatmap."""
    h, w = heat.shape
    patches = {}
    for i in range(h):
        for j in range(w):
            key = (i // patch, j // patch)
            patches.setdefault(key, [0.0, 0.0])
            patches[key][0] += float(heat[i, j])
            patches[key][1] += float((weight[:, i, j] * x[:, i, j]).sum())
    ranked = sorted(patches.values(), key=lambda v: v[0], reverse=descending)
    f = float((weight * x).sum()) + bias
    curve = []
    for k in range(steps + 1):
        removed = k * len(ranked) // steps
        curve.append(f - sum(v[1] for v in ranked[:removed]))
    return curve


@pytest.mark.parametrize("side,patch,steps", [(8, 2, 16), (8, 2, 4), (10, 4, 9), (6, 1, 5)])
def test_linear_model_matches_the_hand_computed_curve(side, patch, steps):
    gen = torch.Generator().manual_seed(side + patch)
    weight = torch.randn((3, side, side), generator=gen, dtype=torch.float64)
    net, bias = linear_net(weight, bias=0.7), 0.7
    x = torch.randn((3, 3, side, side), generator=gen, dtype=torch.float64)
    attr = weight * x  # the exact contributions (Gradient x Input of a linear model)
    for order, descending in (("most_relevant", True), ("least_relevant", False)):
        curves = ev.pixel_flipping(net, x, attr, 0, steps=steps, patch=patch, order=order)
        assert curves.shape == (3, steps + 1) and curves.dtype == torch.float64
        for i in range(3):
            expected = reference_curve(weight, x[i], attr[i].sum(0), bias, patch, steps,
                                       descending)
            torch.testing.assert_close(curves[i], torch.tensor(expected, dtype=torch.float64),
                                       rtol=1e-12, atol=1e-12)
    # the last point has every pixel filled with 0: only the bias is left
    torch.testing.assert_close(curves[:, -1], torch.full((3,), bias, dtype=torch.float64))


def test_perfect_heatmap_beats_random_and_least_relevant():
    gen = torch.Generator().manual_seed(5)
    weight = torch.randn((3, 8, 8), generator=gen, dtype=torch.float64)
    net = linear_net(weight)
    x = torch.randn((6, 3, 8, 8), generator=gen, dtype=torch.float64)
    perfect = weight * x
    best = ev.aopc(ev.pixel_flipping(net, x, perfect, 0, steps=16, patch=2))
    for seed in range(3):
        noise = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        rand = ev.aopc(ev.pixel_flipping(net, x, noise, 0, steps=16, patch=2, seed=seed))
        shuffled = ev.aopc(ev.pixel_flipping(net, x, perfect, 0, steps=16, patch=2,
                                             order="random", seed=seed))
        assert (best > rand).all() and (best > shuffled).all()
    worst = ev.aopc(ev.pixel_flipping(net, x, perfect, 0, steps=16, patch=2,
                                      order="least_relevant"))
    assert (worst < best).all()


def test_aopc_closed_form_and_errors():
    curves = torch.tensor([[3.0, 2.0, 1.0], [1.0, 1.0, 4.0]])
    torch.testing.assert_close(ev.aopc(curves), torch.tensor([1.0, -1.0]))
    for bad in (torch.ones(3), torch.ones(2, 1), torch.tensor([[1.0, float("nan")]])):
        with pytest.raises(ValueError):
            ev.aopc(bad)


def test_ties_are_broken_by_seed_and_the_global_rng_is_untouched(rng_state_guard):
    net, x = tiny_conv_net(), images(n=2)
    flat = torch.zeros(2, 1, 12, 12)  # every patch tied
    a = ev.pixel_flipping(net, x, flat, 1, steps=9, patch=4, seed=1)
    b = ev.pixel_flipping(net, x, flat, 1, steps=9, patch=4, seed=1)
    c = ev.pixel_flipping(net, x, flat, 1, steps=9, patch=4, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    noisy = ev.pixel_flipping(net, x, random_maps(2), [0, 1], steps=6, patch=2, fill="noise",
                              order="random", seed=3)
    assert torch.equal(noisy, ev.pixel_flipping(net, x, random_maps(2), [0, 1], steps=6,
                                                patch=2, fill="noise", order="random", seed=3))


def test_batching_does_not_change_the_curves():
    net, x, a = tiny_conv_net(), images(n=3), random_maps(3)
    full = ev.pixel_flipping(net, x, a, [0, 1, 2], steps=8, patch=3)
    for batch_size in (1, 5, 1000):
        chunked = ev.pixel_flipping(net, x, a, [0, 1, 2], steps=8, patch=3,
                                    batch_size=batch_size)
        torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-6)
    single = torch.cat([ev.pixel_flipping(net, x[i:i + 1], a[i:i + 1], i, steps=8, patch=3)
                        for i in range(3)])
    torch.testing.assert_close(single, full, rtol=1e-5, atol=1e-6)


def test_heatmap_shapes_and_fills():
    net, x, a = tiny_conv_net(), images(n=2), random_maps(2)
    by_map = ev.pixel_flipping(net, x, a, 0, steps=4, patch=3)
    assert torch.equal(by_map, ev.pixel_flipping(net, x, a[:, 0], 0, steps=4, patch=3))
    assert torch.equal(by_map, ev.pixel_flipping(net, x, a.expand_as(x) / 3, 0, steps=4,
                                                 patch=3))
    with torch.no_grad():
        start = net(x)[:, 0]
    for fill in (0.0, -1.5, "zero", "mean", "blur", "noise"):
        curves = ev.pixel_flipping(net, x, a, 0, steps=4, patch=3, fill=fill)
        torch.testing.assert_close(curves[:, 0], start)
    with torch.no_grad():
        mean = net(x.mean(dim=(2, 3), keepdim=True).expand_as(x))[:, 0]
    torch.testing.assert_close(ev.pixel_flipping(net, x, a, 0, steps=4, patch=3,
                                                 fill="mean")[:, -1], mean)
    probability = ev.pixel_flipping(net, x, a, 0, steps=4, patch=3, measure="probability")
    assert ((probability >= 0) & (probability <= 1)).all()


@pytest.mark.parametrize("change,error", [
    (dict(attr=torch.zeros(2, 1, 11, 12)), "does not match"),
    (dict(attr=torch.zeros(3, 1, 12, 12)), "does not match"),
    (dict(attr=torch.zeros(2, 2, 12, 12)), "does not match"),
    (dict(attr=torch.full((2, 1, 12, 12), float("nan"))), "NaN"),
    (dict(steps=0), "steps"), (dict(steps=10), "steps"), (dict(patch=0), "patch"),
    (dict(patch=13), "patch"), (dict(order="best"), "order"), (dict(fill="grey"), "fill"),
    (dict(target=7), "out of range"), (dict(batch_size=0), "batch_size"),
])
def test_bad_input(change, error):
    net, x = tiny_conv_net(), images(n=2)
    args = dict(attr=random_maps(2), target=0, steps=9, patch=4)
    args.update(change)
    with pytest.raises(ValueError, match=error):
        ev.pixel_flipping(net, x, args.pop("attr"), args.pop("target"), **args)
    with pytest.raises(TypeError):
        ev.pixel_flipping(net, x, torch.zeros(2, 1, 12, 12, dtype=torch.long), 0)


def test_default_patch_and_progress_flag(capsys):
    net, x, a = tiny_conv_net(side=32), images(n=1, side=32), random_maps(1, side=32)
    curves = ev.pixel_flipping(net, x, a, 0)  # default patch 2 -> 256 patches, 16 steps
    assert curves.shape == (1, 17) and math.isfinite(float(curves.sum()))
    ev.pixel_flipping(net, x, a, 0, steps=2, progress=True)
    assert "pixel flipping" in capsys.readouterr().err



def test_road_fill_reproduces_a_linear_image_and_adds_seeded_noise():
    # interpolation with weights summing to 1 over a symmetric neighbourhood is exact on a
    # linear image (its removed pixels are the mean of their neighbours' values)
    h = w = 10
    i, j = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                          indexing="ij")
    ramp = torch.stack([0.3 * i + 0.1 * j, -0.2 * i + 0.5 * j + 1, torch.full_like(i, 2.0)])
    removed = torch.zeros(h, w, dtype=torch.bool)
    removed[2:6, 3:8] = True
    exact = ev.road_fill(ramp, removed, noise=0.0)
    torch.testing.assert_close(exact, ramp, atol=1e-12, rtol=0)
    a = ev.road_fill(ramp, removed, torch.Generator().manual_seed(3))
    b = ev.road_fill(ramp, removed, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(a[:, ~removed], ramp[:, ~removed])
    assert 0.005 < (a - ramp)[:, removed].std() < 0.02                 # ROAD_NOISE = 0.01
    assert torch.equal(ev.road_fill(ramp, torch.zeros_like(removed)), ramp)
    assert torch.equal(ev.road_fill(ramp, torch.ones_like(removed)), torch.zeros_like(ramp))


def test_pixel_flipping_with_the_road_fill():
    net = tiny_conv_net()
    x, t = images(n=2), torch.tensor([0, 1])
    attr = random_maps(n=2)
    curve = ev.pixel_flipping(net, x, attr, t, steps=4, patch=3, fill="road", seed=1)
    assert curve.shape == (2, 5)
    with torch.no_grad():                      # step 0 is the image, the last step all mean colour
        logits = net(torch.cat([x, torch.zeros_like(x)]))
    torch.testing.assert_close(curve[:, 0], logits[[0, 1], [0, 1]])
    torch.testing.assert_close(curve[:, -1], logits[[2, 3], [0, 1]])
    # step 2 by hand: half the patches (the top-ranked) imputed
    rank = ev.patch_ranks(attr[:, 0], 3)
    gen = torch.Generator().manual_seed(1)
    by_hand = []
    for k in range(5):                          # the generator is consumed job by job, step-major
        for n in range(2):
            imputed = ev.road_fill(x[n], rank[n] < k * 16 // 4, gen)
            by_hand.append(imputed)
    with torch.no_grad():
        step2 = net(torch.stack(by_hand[4:6]))[[0, 1], [0, 1]]
    torch.testing.assert_close(curve[:, 2], step2)
    assert not torch.allclose(curve[:, 2], ev.pixel_flipping(net, x, attr, t, steps=4, patch=3)[:, 2])

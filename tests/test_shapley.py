"""Shapley values (``shapley``, ``kernel_shap``, ``deep_shap``) against references written here
from the definitions: a brute-force float64 sum over all coalitions (itertools), hand-built
games for the axioms, single-reference DeepLIFT calls for DeepSHAP."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from reference_gradients import conv_net, inputs, logit, mlp, single_thread  # noqa: F401
from torch import nn

import xaikit as xk
from xaikit.methods.shapley import player_labels


# ----------------------------------------------------------------------------- references
def brute_force_shapley(game, d: int) -> list[float]:
    """``phi_i = sum_{S not containing i} |S|!(d-|S|-1)!/d! (v(S + i) - v(S))`` by itertools."""
    value = {s: float(game(frozenset(s))) for r in range(d + 1)
             for s in itertools.combinations(range(d), r)}
    phi = []
    for i in range(d):
        others = [j for j in range(d) if j != i]
        total = 0.0
        for r in range(d):
            weight = math.factorial(r) * math.factorial(d - r - 1) / math.factorial(d)
            for s in itertools.combinations(others, r):
                total += weight * (value[tuple(sorted(s + (i,)))] - value[s])
        phi.append(total)
    return phi


def input_game(model: nn.Module, x: torch.Tensor, x0: torch.Tensor, target: int,
               masks: list[torch.Tensor]):
    """``v(S)``: the target logit of one input with the players outside ``S`` at ``x0``."""

    def game(coalition):
        keep = torch.zeros_like(x, dtype=torch.bool)
        for i in coalition:
            keep |= masks[i]
        with torch.no_grad():
            return model(torch.where(keep, x, x0).unsqueeze(0))[0, target]

    return game


def per_player(attr: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """Sum of a single map over each player's elements."""
    return torch.stack([attr[m].sum() for m in masks])


class Game(nn.Module):
    """A model computing ``fn`` of a flat input, as the single logit (``(N, D) -> (N, 1)``)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x).unsqueeze(1)


def feature_masks(d: int) -> list[torch.Tensor]:
    return [torch.arange(d) == i for i in range(d)]


# ----------------------------------------------------------------------------- exact shapley
@pytest.mark.parametrize("d, seed", [(5, 0), (6, 1), (8, 2)])
def test_exact_shapley_equals_the_definition_on_random_relu_networks(d, seed):
    net = mlp((d, 12, 8, 3), seed=seed)
    x = inputs(2, seed=seed + 10, shape=(d,))
    x0 = inputs(1, seed=seed + 20, shape=(d,))[0]
    attr = xk.explain(net, x, [1, 2], "shapley", baseline=x0)
    for k, t in enumerate([1, 2]):
        want = brute_force_shapley(input_game(net, x[k], x0, t, feature_masks(d)), d)
        assert torch.allclose(attr[k], torch.tensor(want, dtype=torch.float64), rtol=1e-10,
                              atol=1e-12)
    assert torch.allclose(attr.sum(1), logit(net, x, [1, 2]) - logit(net, x0.expand_as(x), [1, 2]),
                          rtol=1e-10, atol=1e-12)


def test_exact_shapley_on_a_conv_net_with_a_2x2_patch_grid():
    net, x = conv_net(), inputs(2)
    attr = xk.explain(net, x, [0, 2], "shapley", grid=2)
    quarters = [torch.zeros(3, 8, 8, dtype=torch.bool) for _ in range(4)]
    for i, (r, c) in enumerate(itertools.product((0, 4), (0, 4))):
        quarters[i][:, r:r + 4, c:c + 4] = True
    for k, t in enumerate([0, 2]):
        want = brute_force_shapley(input_game(net, x[k], torch.zeros_like(x[k]), t, quarters), 4)
        assert torch.allclose(per_player(attr[k], quarters), torch.tensor(want, dtype=x.dtype),
                              rtol=1e-10, atol=1e-12)
        for m in quarters:  # spread equally over the pixels and channels of the patch
            assert torch.allclose(attr[k][m], attr[k][m][0].expand(48), rtol=0, atol=1e-15)


def test_max_game_shapley_splits_and_occlusion_sees_nothing():
    game = Game(lambda x: x.max(1).values).double().eval()
    x = torch.tensor([[3.0, 3.0]], dtype=torch.float64)
    attr = xk.explain(game, x, 0, "shapley", baseline=0.0)
    assert torch.allclose(attr, torch.tensor([[1.5, 1.5]], dtype=torch.float64), rtol=0,
                          atol=1e-15)
    assert torch.allclose(xk.explain(game, x, 0, "kernel_shap"), attr, rtol=0, atol=1e-12)
    # occlusion (each feature removed alone from the full input) on the same game, as an image
    image = Game(lambda x: x.flatten(1).max(1).values).double().eval()
    occ = xk.explain(image, x.view(1, 1, 1, 2), 0, "occlusion", window=1)
    assert torch.equal(occ, torch.zeros(1, 1, 1, 2, dtype=torch.float64))
    pixels = xk.explain(image, x.view(1, 1, 1, 2), 0, "shapley", players="features")
    assert torch.allclose(pixels, torch.full((1, 1, 1, 2), 1.5, dtype=torch.float64))


def test_symmetry_and_dummy_axioms_on_a_hand_built_game():
    # x0 and x1 enter symmetrically (interacting), x2 alone, x3 never matters (dummy)
    game = Game(lambda x: x[:, 0] * x[:, 1] + torch.relu(x[:, 0] + x[:, 1])
                + 2 * x[:, 2] ** 2 + 0 * x[:, 3]).double().eval()
    x = torch.tensor([[1.5, 1.5, -1.0, 7.0]], dtype=torch.float64)
    for method in ("shapley", "kernel_shap"):
        phi = xk.explain(game, x, 0, method)[0]
        assert math.isclose(phi[0], phi[1], rel_tol=0, abs_tol=1e-12)      # symmetry
        assert abs(float(phi[3])) < 1e-12                                  # dummy
        assert math.isclose(phi[2], 2.0, abs_tol=1e-12)                    # additive part
        assert math.isclose(phi.sum(), float(game(x) - game(torch.zeros_like(x))), abs_tol=1e-12)


def test_efficiency_with_superpixel_players_and_a_blur_baseline():
    net, x = conv_net(), inputs(2, shape=(3, 12, 12))
    net = nn.Sequential(nn.AdaptiveAvgPool2d(8), *net).eval()
    attr = xk.explain(net, x, [1, 0], "shapley", players="superpixels", segments=6,
                      baseline="blur")
    x0 = xk.references.gaussian_blur(x)
    want = logit(net, x, [1, 0]) - logit(net, x0, [1, 0])
    assert torch.allclose(attr.sum((1, 2, 3)), want, rtol=1e-10, atol=1e-12)
    labels = player_labels(net, x, "superpixels", segments=6)
    for k in range(2):  # constant on each superpixel
        for s in labels[k].unique():
            values = attr[k][labels[k] == s]
            assert torch.allclose(values, values[0].expand_as(values), rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------- sampling
def test_sampled_shapley_converges_reproducibly_and_leaves_the_global_rng(rng_state_guard):
    d = 7
    net, x = mlp((d, 12, 8, 3), seed=3), inputs(1, seed=4, shape=(d,))
    exact = xk.explain(net, x, 2, "shapley")
    errors = []
    for samples in (4, 64, 1024):
        est = [xk.explain(net, x, 2, "shapley", samples=samples, seed=s) for s in range(4)]
        errors.append(sum(float((e - exact).norm()) for e in est) / len(est))
        for e in est:  # every sampled order telescopes: efficiency holds exactly
            assert math.isclose(e.sum(), exact.sum(), rel_tol=1e-12, abs_tol=1e-12)
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.05 * float(exact.norm())
    again = xk.explain(net, x, 2, "shapley", samples=64, seed=1)
    assert torch.equal(again, xk.explain(net, x, 2, "shapley", samples=64, seed=1))
    assert not torch.equal(again, xk.explain(net, x, 2, "shapley", samples=64, seed=2))


def test_sampled_methods_handle_many_players(rng_state_guard):
    net, x = conv_net(), inputs(1)  # 192 features: only sampling
    for method in ("shapley", "kernel_shap"):
        attr = xk.explain(net, x, 0, method, players="features", samples=3)
        assert torch.allclose(attr.sum(), logit(net, x, 0) - logit(net, 0 * x, 0), rtol=1e-10)


# ----------------------------------------------------------------------------- kernel shap
def test_kernel_shap_is_exact_on_a_linear_model(rng_state_guard):
    d = 20  # too many players to enumerate: 60 sampled coalitions determine the answer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        net = nn.Linear(d, 3).double().eval()
    x, x0 = inputs(2, seed=6, shape=(d,)), inputs(1, seed=7, shape=(d,))
    attr = xk.explain(net, x, [0, 2], "kernel_shap", samples=60, baseline=x0, seed=3)
    want = net.weight[[0, 2]].detach() * (x - x0)    # the Shapley value of a linear model
    assert torch.allclose(attr, want, rtol=1e-9, atol=1e-11)


def test_kernel_shap_over_all_coalitions_equals_exact_shapley():
    net, x = mlp((6, 12, 8, 3), seed=8), inputs(2, seed=9, shape=(6,))
    exact = xk.explain(net, x, [0, 1], "shapley")
    assert torch.allclose(xk.explain(net, x, [0, 1], "kernel_shap", samples=None), exact,
                          rtol=1e-9, atol=1e-11)
    # samples >= 2^d - 2 enumerates every coalition too (as the shap package does)
    assert torch.allclose(xk.explain(net, x, [0, 1], "kernel_shap", samples=62), exact,
                          rtol=1e-9, atol=1e-11)
    sampled = xk.explain(net, x, [0, 1], "kernel_shap", samples=40, seed=1)
    assert torch.allclose(sampled.sum(1), exact.sum(1), rtol=1e-10, atol=1e-12)


def test_sampled_kernel_shap_converges_to_exact_shapley(rng_state_guard):
    d = 12  # 4094 proper coalitions: 64 .. 1024 samples are sampled
    net, x = mlp((d, 16, 8, 3), seed=13), inputs(1, seed=14, shape=(d,))
    exact = xk.explain(net, x, 0, "shapley")
    errors = [sum(float((xk.explain(net, x, 0, "kernel_shap", samples=m, seed=s) - exact).norm())
                  for s in range(3)) / 3 for m in (64, 256, 1024)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.1 * float(exact.norm())
    default = xk.explain(net, x, 0, "kernel_shap")
    assert torch.equal(default, xk.explain(net, x, 0, "kernel_shap", samples=512, seed=0))


# ----------------------------------------------------------------------------- deep shap
def test_deep_shap_is_the_mean_of_single_reference_deeplift():
    net, x = conv_net(), inputs(2)
    refs = inputs(5, seed=11)
    attr = xk.explain(net, x, [0, 1], "deep_shap", baselines=refs, batch_size=4)
    singles = torch.stack([xk.explain(net, x, [0, 1], "deeplift", baseline=r) for r in refs])
    assert torch.allclose(attr, singles.mean(0), rtol=1e-10, atol=1e-12)
    want = logit(net, x, [0, 1]) - torch.stack([logit(net, refs, t) for t in (0, 1)]).mean(1)
    assert torch.allclose(attr.sum((1, 2, 3)), want, rtol=1e-9, atol=1e-10)
    one = xk.explain(net, x, [0, 1], "deep_shap", baselines=refs[:1])
    assert torch.allclose(one, singles[0], rtol=1e-12, atol=1e-14)
    colours = xk.explain(net, x, 0, "deep_shap", baselines=torch.tensor([[0.5, 0.0, -0.5]]).view(
        1, 3, 1, 1))
    assert torch.allclose(colours, xk.explain(net, x, 0, "deeplift", baseline=torch.tensor(
        [0.5, 0.0, -0.5], dtype=torch.float64).view(1, 3, 1, 1)), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- batches
@pytest.mark.parametrize("method, options", [
    ("shapley", dict(grid=2)), ("shapley", dict(samples=3, seed=4)),
    ("shapley", dict(players="superpixels", segments=5)),
    ("kernel_shap", dict(grid=3, samples=20, seed=2)),
    ("deep_shap", dict(baselines=inputs(3, seed=12), batch_size=5)),
])
def test_batch_equals_single_calls(method, options, rng_state_guard):
    net, x = conv_net(), inputs(3)
    attr = xk.explain(net, x, [2, 0, 1], method, **options)
    singles = torch.cat([xk.explain(net, x[k:k + 1], t, method, **options)
                         for k, t in enumerate([2, 0, 1])])
    assert attr.shape == x.shape and attr.dtype == x.dtype
    assert torch.allclose(attr, singles, rtol=1e-9, atol=1e-12)


def test_float32_model_and_uneven_grid():
    net, x = conv_net().float(), inputs(1, shape=(3, 8, 8)).float()
    attr = xk.explain(net, x, 1, "shapley", grid=3)
    assert attr.dtype == torch.float32 and len(attr[0, 0].unique()) <= 9
    assert math.isclose(attr.sum(), logit(net, x, 1) - logit(net, 0 * x, 1), rel_tol=1e-4)


# ----------------------------------------------------------------------------- bad options
@pytest.mark.parametrize("method, options, error, match", [
    ("shapley", dict(players="pixels"), ValueError, "players must be one of"),
    ("shapley", dict(grid=0), ValueError, "grid must be an int >= 1"),
    ("shapley", dict(grid=9), ValueError, r"grid must be an int in \[1, 8\]"),
    ("shapley", dict(grid=2.0), TypeError, "grid must be an int"),
    ("shapley", dict(samples=0), ValueError, "samples must be an int >= 1"),
    ("shapley", dict(samples=1.5), TypeError, "samples must be an int"),
    ("shapley", dict(seed=-1), ValueError, "seed must be an int >= 0"),
    ("shapley", dict(seed=0.5), TypeError, "seed must be an int"),
    ("shapley", dict(batch_size=0), ValueError, "batch_size must be an int >= 1"),
    ("shapley", dict(segments=True), TypeError, "segments must be an int"),
    ("shapley", dict(baseline="grey"), ValueError, "unknown baseline 'grey'"),
    ("shapley", dict(baseline=float("nan")), ValueError, "baseline contains NaN"),
    ("shapley", dict(grid=5), ValueError, "limited to 16 players, but this input has 25"),
    ("shapley", dict(players="features"), ValueError, "has 192; pass samples="),
    ("kernel_shap", dict(players="features", samples=None), ValueError,
     "kernel_shap with samples=None"),
    ("kernel_shap", dict(samples=-3), ValueError, "samples must be an int >= 1"),
    ("kernel_shap", dict(players=3), ValueError, "players must be one of"),
    ("deep_shap", {}, TypeError, "deep_shap needs the option baselines"),
    ("deep_shap", dict(baselines=[[0.0]]), TypeError, "baselines must be a torch.Tensor"),
    ("deep_shap", dict(baselines=torch.zeros(3, 8, 8)), ValueError,
     r"one per row, got shape \(3, 8, 8\)"),
    ("deep_shap", dict(baselines=torch.zeros(2, 3, 4, 4)), ValueError, "do not fit x"),
    ("deep_shap", dict(baselines=torch.zeros(2, 3, 8, 8, dtype=torch.bool)), TypeError,
     "real numbers"),
    ("deep_shap", dict(baselines=torch.full((1, 3, 1, 1), float("inf"))), ValueError,
     "NaN or infinite"),
    ("deep_shap", dict(baselines=torch.zeros(1, 3, 8, 8), batch_size=0), ValueError,
     "batch_size must be an int >= 1"),
])
def test_bad_options_raise(method, options, error, match):
    with pytest.raises(error, match=match):
        xk.explain(conv_net(), inputs(1), 0, method, **options)


def test_patches_and_superpixels_need_images():
    net = mlp((6, 8, 3))
    for players in ("patches", "superpixels"):
        with pytest.raises(ValueError, match=f"players='{players}' needs images"):
            xk.explain(net, inputs(1, shape=(6,)), 0, "shapley", players=players)


def test_shapley_runs_in_inference_mode_and_deep_shap_refuses():
    net, x = conv_net(), inputs(1)
    with torch.inference_mode():
        inside = xk.explain(net, x, 0, "kernel_shap", grid=2)
        with pytest.raises(RuntimeError, match="inference_mode"):
            xk.explain(net, x, 0, "deep_shap", baselines=torch.zeros(1, 3, 8, 8))
    assert torch.equal(inside, xk.explain(net, x, 0, "kernel_shap", grid=2))

"""Max-sensitivity and the local Lipschitz estimate: closed forms, batching, and Quantus 0.6.0.

The cross-checks give Quantus the very perturbations xaikit draws (a ``perturb_func`` that
replays the documented draws of :mod:`xaikit.evaluation.robustness`), so the two agree to
float32 precision; Quantus's own noise comes from numpy's global generator, so with it only
noise-free quantities (a linear model's local Lipschitz constant) or concentrated ones
(``||delta||`` of many uniform values) are compared. Its quirks are asserted too.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from evaluation_nets import images, tiny_conv_net
from evaluation_nets import linear_net as _linear_net
from reference_gradients import single_thread  # noqa: F401  (autouse, module scope: one thread)

import xaikit as xk

ev = xk.evaluation
T = torch.tensor([0, 1, 2, 0])
ZB = {"0": "zb", "3": "epsilon", "6": "epsilon"}  # tiny_conv_net: z^B on the pixels



@pytest.fixture(scope="module")
def q():
    return ev.import_quantus()


@pytest.fixture(scope="module")
def net():
    return tiny_conv_net()


def linear_net(weight):
    with torch.random.fork_rng(devices=[]):  # nn.Linear's initialisation draws
        return _linear_net(weight)


def draws(x, distribution, radius, count, seed=0):
    """The perturbations xaikit draws, by the recipe of the robustness module's docstring."""
    generator = torch.Generator().manual_seed(seed)
    if distribution == "uniform":
        return [torch.empty(x.shape, dtype=x.dtype).uniform_(-radius, radius, generator=generator)
                for _ in range(count)]
    return [torch.empty(x.shape, dtype=x.dtype).normal_(0, radius, generator=generator)
            for _ in range(count)]


def replay(noise):
    """A Quantus ``perturb_func`` adding ``noise[k]`` at its k-th call (arrays are (N, D))."""
    calls = iter(noise)

    def perturb(arr, indices, **kwargs):
        return arr + next(calls).reshape(arr.shape).numpy()

    return perturb


def heatmap_explainer(method):
    def explain(model, inputs, targets, **kwargs):
        x = torch.as_tensor(inputs, dtype=next(model.parameters()).dtype)
        attr = xk.explain(model, x, torch.as_tensor(targets), method)
        return attr.sum(1, keepdim=True).numpy()
    return explain


def test_linear_model_closed_forms(rng_state_guard):
    x = images(n=3, side=6, dtype=torch.float64)[:, :1]
    c = -1.5
    net = linear_net(torch.full((1, 6, 6), c, dtype=torch.float64))
    # a constant gradient: nothing moves
    assert ev.max_sensitivity(net, x, 0, "gradient").abs().max() == 0
    assert ev.local_lipschitz(net, x, 0, "gradient").abs().max() == 0
    # gradient x input of f = c <1, x> is c x: ||c delta|| / ||delta|| = |c| for every draw
    lip = ev.local_lipschitz(net, x, 0, "gradient_x_input", radius=0.3, perturbations=4)
    torch.testing.assert_close(lip, torch.full((3,), abs(c), dtype=torch.float64))
    # ... and ||c delta|| / ||c x|| = ||delta|| / ||x||, maximised over the replayed draws
    noise = torch.stack(draws(x, "uniform", 0.2, 5))                     # (K, N, 1, 6, 6)
    expected = (noise.flatten(2).norm(dim=2) / x.flatten(1).norm(dim=1)).amax(0)
    sens = ev.max_sensitivity(net, x, 0, "gradient_x_input", radius=0.2, perturbations=5)
    torch.testing.assert_close(sens, expected)
    # the other logit of linear_net is 0 everywhere: an all-zero map has no relative change
    assert torch.isnan(ev.max_sensitivity(net, x, 1, "gradient")).all()


def test_batching_seed_and_attr(net, rng_state_guard):
    x = images()
    for fn in (ev.max_sensitivity, ev.local_lipschitz):
        ref = fn(net, x, T, "gradient", perturbations=5)
        assert ref.shape == (4,) and (ref > 0).all()
        for chunk in (1, 3, 5, 7, 20):
            torch.testing.assert_close(fn(net, x, T, "gradient", perturbations=5,
                                          chunk_size=chunk), ref, rtol=1e-5, atol=0)
        attr = xk.explain(net, x, T, "gradient")
        torch.testing.assert_close(fn(net, x, T, "gradient", perturbations=5, attr=attr), ref)
        assert not torch.equal(fn(net, x, T, "gradient", perturbations=5, noise_seed=1), ref)
        # more draws can only raise a maximum (the first 5 draws are the same)
        assert (fn(net, x, T, "gradient", perturbations=9) >= ref).all()
    # radius 0: a deterministic explanation does not move at all
    assert ev.max_sensitivity(net, x, T, "gradient", radius=0, perturbations=2).max() == 0
    ratios = ev.robustness_ratios(net, x, T, "gradient", distribution="gaussian", radius=0.1,
                                  perturbations=3)
    assert {k: tuple(v.shape) for k, v in ratios.items()} == {
        "explanation": (4, 3), "input": (4, 3), "reference": (4,)}
    torch.testing.assert_close((ratios["explanation"] / ratios["input"]).amax(1),
                               ev.local_lipschitz(net, x, T, "gradient", perturbations=3))


def test_explanation_calls(net, monkeypatch):
    import xaikit.evaluation.robustness as module

    sizes = []

    def counting(model, x, target, method, **options):
        sizes.append(len(x))
        return xk.explain(model, x, target, method, **options)

    monkeypatch.setattr(module, "explain", counting)
    x = images()
    ev.local_lipschitz(net, x, T, "gradient", perturbations=5)
    assert sizes == [24]                       # x and its 5 x 4 copies in one call
    sizes.clear()
    ev.max_sensitivity(net, x, T, "gradient", perturbations=5, chunk_size=10,
                       attr=xk.explain(net, x, T, "gradient"))
    assert sizes == [10, 10]                   # 20 copies; x's map was given


def test_controls_and_stochastic_methods(net, rng_state_guard):
    x = images()
    # a map that ignores the input is perfectly robust: robustness needs a faithfulness score
    assert ev.max_sensitivity(net, x, T, "random", perturbations=3).max() == 0
    assert ev.local_lipschitz(net, x, T, "random", perturbations=3).max() == 0
    # uniform and center are the logit times a fixed pattern: the same relative change
    torch.testing.assert_close(ev.max_sensitivity(net, x, T, "uniform", perturbations=3),
                               ev.max_sensitivity(net, x, T, "center", perturbations=3))
    # the method's own samples/seed pass through untouched by the metric's keywords
    smooth = ev.max_sensitivity(net, x, T, "smoothgrad", samples=3, seed=2, perturbations=2)
    assert smooth.shape == (4,) and torch.isfinite(smooth).all()


def test_bounds_clamp_the_copies(net, rng_state_guard):
    # f = c <1, x> on [0, 1) images: gradient x input moves by c (x' - x) exactly, so with the
    # copies clamped into [0, 1] the ratios follow the clamped draws
    x = images(n=3, side=6, dtype=torch.float64)[:, :1]
    c = -1.5
    lin = linear_net(torch.full((1, 6, 6), c, dtype=torch.float64))
    noise = torch.stack(draws(x, "uniform", 0.2, 5))                     # (K, N, 1, 6, 6)
    outside = ((x + noise < 0) | (x + noise > 1)).any()
    moved = (torch.clamp(x + noise, 0, 1) - x).flatten(2).norm(dim=2)     # (K, N)
    sens = ev.max_sensitivity(lin, x, 0, "gradient_x_input", radius=0.2, perturbations=5,
                              bounds=(0, 1))
    assert outside and (moved < noise.flatten(2).norm(dim=2)).any()
    torch.testing.assert_close(sens, (moved / x.flatten(1).norm(dim=1)).amax(0))
    lip = ev.local_lipschitz(lin, x, 0, "gradient_x_input", radius=0.3, perturbations=4,
                             bounds=(torch.zeros(1, 1, 1, 1), torch.ones(1)))
    torch.testing.assert_close(lip, torch.full((3,), abs(c), dtype=torch.float64))
    # the z^B rule refuses a copy outside its box; clamped copies stay inside
    xb = images()
    with pytest.raises(ValueError, match="z\\^B box"):
        ev.max_sensitivity(net, xb, T, "lrp", composite=ZB, low=0.0, high=1.0, perturbations=2)
    zb = ev.max_sensitivity(net, xb, T, "lrp", composite=ZB, low=0.0, high=1.0, perturbations=2,
                            bounds=(0.0, 1.0))
    assert torch.isfinite(zb).all() and (zb > 0).all()
    # wide bounds change nothing
    torch.testing.assert_close(ev.local_lipschitz(net, xb, T, "gradient", perturbations=3,
                                                  bounds=(-10, 10)),
                               ev.local_lipschitz(net, xb, T, "gradient", perturbations=3))


def test_option_errors(net):
    x = images(n=2)
    t = [0, 1]
    with pytest.raises(ValueError, match="radius"):
        ev.max_sensitivity(net, x, t, "gradient", radius=-0.1)
    with pytest.raises(ValueError, match="radius"):
        ev.local_lipschitz(net, x, t, "gradient", radius=0)
    with pytest.raises(TypeError, match="radius"):
        ev.local_lipschitz(net, x, t, "gradient", radius="big")
    with pytest.raises(ValueError, match="perturbations"):
        ev.max_sensitivity(net, x, t, "gradient", perturbations=0)
    with pytest.raises(TypeError, match="noise_seed"):
        ev.max_sensitivity(net, x, t, "gradient", noise_seed=1.5)
    with pytest.raises(ValueError, match="chunk_size"):
        ev.local_lipschitz(net, x, t, "gradient", chunk_size=0)
    with pytest.raises(ValueError, match="distribution"):
        ev.robustness_ratios(net, x, t, "gradient", distribution="laplace", radius=0.1)
    with pytest.raises(ValueError, match="does not match"):
        ev.max_sensitivity(net, x, t, "gradient", attr=torch.zeros(3, 1, 12, 12))
    with pytest.raises(ValueError, match="out of range"):
        ev.max_sensitivity(net, x, 7, "gradient")
    with pytest.raises(TypeError):
        ev.local_lipschitz(net, x, t, "gradient", samples=3)  # not an option of gradient
    with pytest.raises(ValueError, match="low > high"):
        ev.max_sensitivity(net, x, t, "gradient", bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="outside bounds"):
        ev.max_sensitivity(net, x, t, "gradient", bounds=(0.5, 1.0))
    with pytest.raises(ValueError, match="broadcastable"):
        ev.local_lipschitz(net, x, t, "gradient", bounds=(torch.zeros(2), 1.0))
    with pytest.raises(TypeError, match="pair"):
        ev.local_lipschitz(net, x, t, "gradient", bounds=1.0)
    with pytest.raises(TypeError, match="high"):
        ev.local_lipschitz(net, x, t, "gradient", bounds=(0.0, "1"))


def test_registered_not_default_and_in_evaluate(net, rng_state_guard):
    x = images(n=2)
    t = torch.tensor([0, 2])
    for name in ("max_sensitivity", "local_lipschitz"):
        spec = ev.METRICS[name]
        assert not spec.higher_is_better and not spec.default and spec.reference
    assert {m for m, s in ev.METRICS.items() if not s.default} == {"max_sensitivity",
                                                                   "local_lipschitz"}
    methods = {"grad": "gradient", "random": "random",
               "sg": ("smoothgrad", {"samples": 2, "seed": 1})}
    table = ev.evaluate(net, x, t, methods, metrics=["max_sensitivity", "local_lipschitz"],
                        seed=3, per_image=True)
    table = table.set_index(["method", "metric", "image"]).sort_index()
    by_hand = ev.local_lipschitz(net, x, t, "smoothgrad", samples=2, seed=1, noise_seed=3)
    np.testing.assert_allclose(table.loc[("sg", "local_lipschitz"), "value"], by_hand.numpy())
    by_hand = ev.max_sensitivity(net, x, t, "gradient", noise_seed=3)
    np.testing.assert_allclose(table.loc[("grad", "max_sensitivity"), "value"], by_hand.numpy())
    assert (table.loc[("random", "max_sensitivity"), "value"] == 0).all()


def test_max_sensitivity_matches_quantus(q, net):
    x, k, radius = images(), 6, 0.2
    metric = q.MaxSensitivity(nr_samples=k, lower_bound=radius, disable_warnings=True,
                              perturb_func=replay(draws(x, "uniform", radius, k)))
    theirs = np.array(metric(model=net, x_batch=x.numpy(), y_batch=T.numpy(), a_batch=None,
                             explain_func=heatmap_explainer("gradient"), channel_first=True))
    ours = ev.max_sensitivity(net, x, T, "gradient", radius=radius, perturbations=k)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5)


def test_local_lipschitz_matches_quantus(q, net):
    x, k, radius = images(), 6, 0.1
    for method in ("gradient", "gradient_x_input"):
        metric = q.LocalLipschitzEstimate(nr_samples=k, perturb_std=radius, normalise=False,
                                          disable_warnings=True,
                                          perturb_func=replay(draws(x, "gaussian", radius, k)))
        theirs = np.array(metric(model=net, x_batch=x.numpy(), y_batch=T.numpy(), a_batch=None,
                                 explain_func=heatmap_explainer(method), channel_first=True))
        ours = ev.local_lipschitz(net, x, T, method, radius=radius, perturbations=k)
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5)


def test_quantus_own_noise_agrees_in_distribution(q):
    # float64 model: Quantus's float64 noise then needs no cast
    x = images(n=3, side=6, dtype=torch.float64)[:, :1]
    c = 0.7
    net = linear_net(torch.full((1, 6, 6), c, dtype=torch.float64))
    t = np.zeros(3, dtype=int)
    kwargs = dict(model=net, x_batch=x.numpy(), y_batch=t, a_batch=None, channel_first=True,
                  explain_func=heatmap_explainer("gradient_x_input"))
    state = np.random.get_state()
    try:
        np.random.seed(0)
        lip = np.array(q.LocalLipschitzEstimate(nr_samples=5, normalise=False,
                                                disable_warnings=True)(**kwargs))
        sens = np.array(q.MaxSensitivity(nr_samples=50, lower_bound=0.2,
                                         disable_warnings=True)(**kwargs))
    finally:
        np.random.set_state(state)
    # the Lipschitz constant of a linear map does not depend on the noise
    np.testing.assert_allclose(lip, c, rtol=1e-8)
    torch.testing.assert_close(ev.local_lipschitz(net, x, 0, "gradient_x_input"),
                               torch.full((3,), c, dtype=torch.float64))
    # ||delta|| of 36 uniform values concentrates below its maximum 0.2 * 6: the largest of
    # 50 draws lies within a few per cent of each other and under the hard bound
    ours = ev.max_sensitivity(net, x, 0, "gradient_x_input", radius=0.2, perturbations=50)
    bound = 0.2 * 6 / x.flatten(1).norm(dim=1).numpy()
    assert (sens < bound).all() and (ours.numpy() < bound).all()
    np.testing.assert_allclose(ours.numpy(), sens, rtol=0.1)
    # an all-zero map (the second logit of linear_net is constant): 0 / 0 on both sides
    kwargs["y_batch"] = np.array([1, 0, 0])
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        zero = np.array(q.MaxSensitivity(nr_samples=2, disable_warnings=True)(**kwargs))
    assert np.isnan(zero[0]) and np.isfinite(zero[1:]).all()
    assert torch.isnan(ev.max_sensitivity(net, x, [1, 0, 0], "gradient_x_input")[0])


def test_quantus_robustness_quirks(q, net):
    x, k = images(), 3
    kwargs = dict(model=net, x_batch=x.numpy(), y_batch=T.numpy(), a_batch=None,
                  channel_first=True, explain_func=heatmap_explainer("gradient"))
    metric = q.MaxSensitivity(nr_samples=k, disable_warnings=True)
    state = np.random.get_state()
    try:
        np.random.seed(0)
        first = np.array(metric(**kwargs))
        moved = not np.array_equal(np.random.get_state()[1], state[1])
        second = np.array(metric(**kwargs))
    finally:
        np.random.set_state(state)
    # numpy's global generator: no seed argument, the state moves, two runs differ
    assert moved and not np.allclose(first, second)
    # LocalLipschitzEstimate's default normalise=True divides each map by its whole batch's
    # largest |R|: an image's score depends on the other images of its batch
    noise = draws(x, "gaussian", 0.1, k)
    scores = {}
    for normalise in (True, False):
        for n in (2, 4):
            metric = q.LocalLipschitzEstimate(nr_samples=k, normalise=normalise,
                                              disable_warnings=True,
                                              perturb_func=replay([d[:n] for d in noise]))
            scores[normalise, n] = np.array(metric(
                model=net, x_batch=x[:n].numpy(), y_batch=T[:n].numpy(), a_batch=None,
                channel_first=True, explain_func=heatmap_explainer("gradient")))
    np.testing.assert_allclose(scores[False, 2], scores[False, 4][:2], rtol=1e-6)
    assert not np.allclose(scores[True, 2], scores[True, 4][:2], rtol=1e-3)
    assert math.isfinite(float(scores[True, 4].max()))


def test_evaluate_passes_bounds_to_the_robustness_metrics(net, rng_state_guard):
    # the z^B composite refuses noisy copies outside its box unless evaluate clamps them
    xb = images()
    lrp = {"zB": ("lrp", {"composite": ZB, "low": 0.0, "high": 1.0})}
    with pytest.raises(ValueError, match="z\\^B box"):
        ev.evaluate(net, xb, T, lrp, metrics=["max_sensitivity"])
    table = ev.evaluate(net, xb, T, lrp, metrics=["max_sensitivity", "local_lipschitz"],
                        bounds=(0.0, 1.0), seed=2, per_image=True).set_index(["metric", "image"])
    by_hand = ev.max_sensitivity(net, xb, T, "lrp", composite=ZB, low=0.0, high=1.0,
                                 bounds=(0.0, 1.0), noise_seed=2)
    np.testing.assert_allclose(table.loc["max_sensitivity", "value"], by_hand.numpy())
    assert np.isfinite(table.loc["local_lipschitz", "value"]).all()


def test_evaluate_passes_perturbations_to_the_robustness_metrics(net, rng_state_guard):
    # fewer noisy copies: the same draws as max_sensitivity's with that count, not the default 10
    x = images(n=2)
    t = torch.tensor([0, 2])
    table = ev.evaluate(net, x, t, {"grad": "gradient"}, metrics=["max_sensitivity"], seed=1,
                        perturbations=3, per_image=True)
    three = ev.max_sensitivity(net, x, t, "gradient", noise_seed=1, perturbations=3)
    ten = ev.max_sensitivity(net, x, t, "gradient", noise_seed=1)
    np.testing.assert_allclose(table["value"].to_numpy(), three.numpy())
    assert not np.allclose(three.numpy(), ten.numpy())
    with pytest.raises((ValueError, TypeError), match="perturbations"):
        ev.evaluate(net, x, t, {"grad": "gradient"}, metrics=["local_lipschitz"], perturbations=0)
    with pytest.raises(ValueError, match="perturbations"):    # checked even without those metrics
        ev.evaluate(net, x, t, {"grad": "gradient"}, metrics=["sparseness"], perturbations=0)

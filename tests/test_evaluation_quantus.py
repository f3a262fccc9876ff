"""Cross-check of ``xaikit.evaluation`` against Quantus 0.6.0 on the same inputs.

Where both compute the same quantity, the numbers agree to float32 precision (rtol 1e-5) once
Quantus's defaults are aligned (``normalise=False, abs=False``, a 0 baseline, logits); the
quirks that make Quantus's defaults differ are asserted too, so that a Quantus upgrade that
fixes one shows up here.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from evaluation_nets import box_masks, images, random_maps, tiny_conv_net

import xaikit as xk

ev = xk.evaluation


@pytest.fixture(scope="module")
def q():
    return ev.import_quantus()


@pytest.fixture(scope="module")
def setup():
    net, x, a = tiny_conv_net(), images(), random_maps()
    return net, x, a, torch.tensor([0, 1, 2, 0])


def gradient_explainer(model, inputs, targets, **kwargs):
    attr = xk.explain(model, torch.as_tensor(inputs), torch.as_tensor(targets), "gradient")
    return attr.sum(1, keepdim=True).numpy()


def test_shim_restores_numpy_names(q):
    assert np.trapz is np.trapezoid and np.NaN is np.nan
    assert q.__version__ == "0.6.0"


def test_pixel_flipping_matches_quantus(q, setup):
    net, x, a, t = setup
    # 144 pixels in 36 steps of 4 pixels = 12 channel values per Quantus step; logits; 0 fill.
    metric = q.PixelFlipping(features_in_step=12, normalise=False, abs=False,
                             perturb_baseline=0.0, disable_warnings=True)
    theirs = np.array(metric(model=net, x_batch=x.numpy(), y_batch=t.numpy(),
                             a_batch=a.numpy(), channel_first=True, softmax=False))
    ours = ev.pixel_flipping(net, x, a, t, steps=36, patch=1, fill=0.0)
    assert theirs.shape == (4, 36)
    np.testing.assert_allclose(ours[:, 1:].numpy(), theirs, rtol=1e-5, atol=1e-6)
    # Quantus's default "black" baseline is the image minimum over all channels, not 0.
    black = q.PixelFlipping(features_in_step=12, normalise=False, abs=False,
                            disable_warnings=True)
    theirs_black = np.array(black(model=net, x_batch=x.numpy() + 1, y_batch=t.numpy(),
                                  a_batch=a.numpy(), channel_first=True, softmax=False))
    low = float((x + 1).amin(dim=(1, 2, 3))[0])
    ours_black = ev.pixel_flipping(net, x[:1] + 1, a[:1], t[:1], steps=36, patch=1, fill=low)
    np.testing.assert_allclose(ours_black[0, 1:].numpy(), theirs_black[0], rtol=1e-5, atol=1e-6)


def test_region_perturbation_matches_quantus(q, setup):
    net, x, a, t = setup
    # 3 x 3 patches of 4 px, one patch per step; Quantus returns the drops f(x) - f(x^(k)).
    for order, theirs_order in (("most_relevant", "morf"), ("least_relevant", "lerf")):
        metric = q.RegionPerturbation(patch_size=4, regions_evaluation=9, order=theirs_order,
                                      normalise=False, abs=False, perturb_baseline=0.0,
                                      disable_warnings=True)
        drops = np.array(metric(model=net, x_batch=x.numpy(), y_batch=t.numpy(),
                                a_batch=a.numpy(), channel_first=True, softmax=False))
        ours = ev.pixel_flipping(net, x, a, t, steps=9, patch=4, order=order)
        np.testing.assert_allclose((ours[:, :1] - ours[:, 1:]).numpy(), drops, rtol=1e-5,
                                   atol=1e-6)


def test_continuity_matches_quantus_and_its_zero_shift(q, setup):
    net, x, _, t = setup
    x = x.clone()
    x[:, :, 0, 0] = 0  # Quantus pads with the image minimum: make it 0, our fill
    metric = q.Continuity(nr_steps=7, normalise=False, abs=False, disable_warnings=True)
    theirs = np.array(metric(model=net, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=None,
                             explain_func=gradient_explainer, channel_first=True))
    width = x.shape[-1]
    grid = [-width + (2 * width + 1) // 7 * (k + 1) for k in range(7)]
    assert 0 in grid  # Quantus's grid contains the zero shift ...
    ours = ev.continuity(net, x, t, "gradient", shifts=[s for s in grid if s], fill=0.0)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5)
    calls = iter(range(100))

    def smoothgrad(model, inputs, targets, **kwargs):  # a new noise draw per call
        attr = xk.explain(model, torch.as_tensor(inputs), torch.as_tensor(targets), "smoothgrad",
                          samples=4, seed=next(calls))
        return attr.sum(1, keepdim=True).numpy()

    exploded = np.array(metric(model=net, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=None,
                               explain_func=smoothgrad, channel_first=True))
    # ... where ||x - x_s|| = 0 turns SmoothGrad's noise into noise / 1e-9.
    assert (exploded > 1e6).all()
    with pytest.raises(ValueError, match="non-zero"):
        ev.continuity(net, x, t, "smoothgrad", shifts=grid, samples=4)


def test_mprt_matches_quantus_cascading(q, setup):
    net, x, _, t = setup
    metric = q.MPRT(seed=3, similarity_func=q.similarity_func.correlation_spearman, abs=False,
                    normalise=False, disable_warnings=True)
    with torch.random.fork_rng(devices=[]):  # Quantus reseeds the global generator
        theirs = metric(model=net, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=None,
                        explain_func=gradient_explainer, channel_first=True)
    ours = ev.randomisation_test(net, x, t, "gradient", layer_seed=3,
                                 similarities=("spearman",))
    assert list(theirs) == ["original", "6", "3", "0"]
    np.testing.assert_allclose(theirs["original"], 1.0)  # averaged in by return_average_...
    for layer in ("6", "3", "0"):
        mine = ours[ours.layer == layer].sort_values("image")["spearman"].to_numpy()
        np.testing.assert_allclose(mine, theirs[layer], rtol=1e-6, atol=1e-8)


def test_mprt_changes_the_global_seed(q, setup):
    net, x, _, t = setup
    metric = q.MPRT(seed=3, disable_warnings=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        metric(model=net, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=None,
               explain_func=gradient_explainer, channel_first=True)
        after_quantus = torch.rand(1)
        torch.manual_seed(123)
        ev.randomisation_test(net, x, t, "gradient", layer_seed=3,
                              similarities=("spearman",))
        after_ours = torch.rand(1)
        torch.manual_seed(123)
        untouched = torch.rand(1)
    assert not torch.equal(after_quantus, untouched) and torch.equal(after_ours, untouched)


def test_random_logit_matches_quantus_on_two_classes(q):
    net, x = tiny_conv_net(classes=2), images()
    t = torch.tensor([0, 1, 1, 0])  # two classes: the "random" other class is determined
    metric = q.RandomLogit(num_classes=2, similarity_func=q.similarity_func.correlation_spearman,
                           abs=False, normalise=False, disable_warnings=True)
    a = gradient_explainer(net, x.numpy(), t.numpy())
    theirs = np.array(metric(model=net, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=a,
                             explain_func=gradient_explainer, channel_first=True))
    ours = ev.random_logit(net, x, t, "gradient", similarity_name="spearman")
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-6)


def test_random_logit_default_num_classes_fails_on_a_small_model(q):
    net, x = tiny_conv_net(classes=6), images()
    t = np.array([0, 1, 2, 3])
    with pytest.raises(Exception):
        q.RandomLogit(disable_warnings=True)(
            model=net, x_batch=x.numpy(), y_batch=t, a_batch=gradient_explainer(net, x.numpy(), t),
            explain_func=gradient_explainer, channel_first=True)


def test_localisation_matches_quantus(q, setup):
    net, x, a, t = setup
    masks = box_masks()
    kwargs = dict(model=net, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=a.numpy(),
                  s_batch=masks[:, None].numpy(), channel_first=True)
    pg = np.array(q.PointingGame(disable_warnings=True)(**kwargs), dtype=float)
    rma = np.array(q.RelevanceMassAccuracy(disable_warnings=True)(**kwargs))
    rra = np.array(q.RelevanceRankAccuracy(disable_warnings=True)(**kwargs))
    np.testing.assert_array_equal(ev.pointing_game(a, masks).numpy(), pg)
    np.testing.assert_allclose(ev.relevance_mass(a, masks, part="signed").numpy(), rma,
                               rtol=1e-5)
    np.testing.assert_allclose(ev.relevance_rank(a, masks).numpy(), rra, rtol=1e-6)
    # Quantus's default RelevanceMassAccuracy uses signed sums (here it leaves [0, 1]) ...
    assert not ((rma >= 0) & (rma <= 1)).all()
    assert ((ev.relevance_mass(a, masks) >= 0) & (ev.relevance_mass(a, masks) <= 1)).all()


def test_quantus_localisation_quirks(q, setup):
    net, x, a, t = setup
    masks = box_masks()
    empty = masks.clone()
    empty[0] = False
    kwargs = dict(model=net, x_batch=x.numpy(), y_batch=t.numpy(), channel_first=True)
    a_miss = a.clone()
    a_miss[0, 0][masks[0]] = -10  # the maximum of image 0 lies outside its mask
    hits = q.PointingGame(disable_warnings=True)(a_batch=a_miss.numpy(),
                                                s_batch=empty[:, None].numpy(), **kwargs)
    assert hits[0]  # an empty mask counts as a hit (NaN written into a bool array)
    with pytest.raises(ValueError, match="empty mask"):
        ev.pointing_game(a_miss, empty)
    with pytest.raises(TypeError):
        q.PointingGame(weighted=True, disable_warnings=True)(
            a_batch=a.numpy(), s_batch=masks[:, None].numpy(), **kwargs)
    with pytest.raises(AssertionError):  # an all-negative batch is rejected
        q.RelevanceMassAccuracy(disable_warnings=True)(
            a_batch=-a.abs().numpy(), s_batch=masks[:, None].numpy(), **kwargs)
    assert torch.isnan(ev.relevance_mass(-a.abs(), masks)).all()  # no positive relevance
    # A constant map (image 0): Quantus's pointing game hits whenever the mask is non-empty
    # (a batch of constant maps is rejected by an assertion).
    flat = a.clone()
    flat[0] = 0.5
    hits = q.PointingGame(disable_warnings=True)(a_batch=flat.numpy(),
                                                s_batch=masks[:, None].numpy(), **kwargs)
    assert hits[0]
    share = masks[0].float().mean()
    torch.testing.assert_close(ev.pointing_game(flat, masks)[0], share)
    assert 0 < share < 0.2


def test_completeness_is_an_exact_float_equality(q):
    """Quantus's Completeness answers True/False by ``==``; ours is a relative error."""
    net = tiny_conv_net()
    for module in net.modules():
        if hasattr(module, "bias") and module.bias is not None:
            module.bias.zero_()
    x, t = images(), torch.tensor([0, 1, 2, 0])
    attr = xk.explain(net, x, t, "gradient_x_input")  # exact on a bias-free ReLU net
    ours = ev.conservation(net, x, attr, t)
    assert (ours < 1e-5).all()
    theirs = q.Completeness(perturb_baseline=0.0, normalise=False, abs=False,
                            disable_warnings=True)(
        model=net, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=attr.numpy(),
        channel_first=True, softmax=False)
    assert all(isinstance(v, (bool, np.bool_)) for v in theirs)
    assert not all(theirs)  # float sums are rarely bit-equal to the logit

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


# ------------------------------------------------------------------ sparseness and complexity
def test_sparseness_and_complexity_closed_forms():
    d = 16
    uniform = torch.full((1, 4, 4), 0.3)
    one_hot = torch.zeros(1, 4, 4)
    one_hot[0, 1, 2] = -5.0                                      # the sign does not matter
    two = torch.tensor([[[1.0, 3.0]]])                          # d = 2, shares 1/4 and 3/4
    gini = ev.sparseness(torch.cat([uniform, one_hot]))
    entropy = ev.complexity(torch.cat([uniform, one_hot]))
    assert gini.tolist() == pytest.approx([0.0, 1 - 1 / d], abs=1e-7)
    assert entropy.tolist() == pytest.approx([math.log(d), 0.0], abs=1e-6)
    # Gini: sorted (1, 3): ((2-3) 1 + (4-3) 3) / (2 * 4) = 1/4
    assert ev.sparseness(two).item() == pytest.approx(0.25)
    assert ev.complexity(two).item() == pytest.approx(-(0.25 * math.log(0.25)
                                                        + 0.75 * math.log(0.75)))
    # scale-free, sign-free, NaN for an all-zero map
    maps = torch.randn((3, 1, 5, 5), generator=torch.Generator().manual_seed(0))
    for fn in (ev.sparseness, ev.complexity):
        torch.testing.assert_close(fn(-7 * maps), fn(maps))
        assert math.isnan(fn(torch.zeros(1, 4, 4)).item())
    # the channel sum comes first: +2 and -2 in one pixel cancel, leaving a one-hot map
    cancel = torch.zeros(1, 2, 2, 2)
    cancel[0, :, 0, 0] = torch.tensor([2.0, -2.0])
    cancel[0, 0, 1, 1] = 1.0
    assert ev.sparseness(cancel).item() == pytest.approx(1 - 1 / 4)
    assert ev.complexity(cancel).item() == pytest.approx(0.0, abs=1e-7)
    # per value (Quantus's reading of a multi-channel map): 8 values, 3 non-zero
    per_value = ev.complexity(cancel.reshape(1, 1, 1, -1)).item()
    shares = torch.tensor([2.0, 2.0, 1.0]) / 5
    assert per_value == pytest.approx(float(-(shares * shares.log()).sum()))
    with pytest.raises(ValueError, match="NaN or infinite"):
        ev.sparseness(torch.full((1, 2, 2), float("nan")))


def test_sparseness_and_complexity_registered():
    for name, higher in (("sparseness", True), ("complexity", False)):
        spec = ev.METRICS[name]
        assert spec.higher_is_better is higher and spec.default and not spec.needs_masks
        assert "2020" in spec.reference
        maps = torch.randn((2, 3, 4, 4), generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(spec.fn(None, None, None, maps, None, "gradient", {}, None),
                                   getattr(ev, name)(maps))


@pytest.fixture(scope="module")
def quantus_setup():
    import numpy as np
    from evaluation_nets import images, random_maps, tiny_conv_net

    return (ev.import_quantus(), tiny_conv_net(), images(), np.array([0, 1, 2, 0]),
            random_maps())


def test_sparseness_and_complexity_match_quantus(quantus_setup):
    import numpy as np

    q, net, x, t, maps = quantus_setup
    kwargs = dict(model=net, x_batch=x.numpy(), y_batch=t, channel_first=True)
    for ours, theirs in ((ev.sparseness, q.Sparseness), (ev.complexity, q.Complexity)):
        # the same (N, 1, H, W) map, Quantus's abs on, its normalisation off and on (its
        # default: division by the batch's largest |R|, a scale that changes neither score)
        for normalise in (False, True):
            metric = theirs(normalise=normalise, abs=True, disable_warnings=True)
            result = np.array(metric(a_batch=maps.numpy().copy(), **kwargs))
            np.testing.assert_allclose(ours(maps).numpy(), result, rtol=1e-5)
        # an (N, C, H, W) attribution: Quantus scores every value, we the channel sum ...
        attr = torch.randn((4, 3, 12, 12), generator=torch.Generator().manual_seed(2))
        per_value = np.array(theirs(disable_warnings=True)(a_batch=attr.numpy(), **kwargs))
        np.testing.assert_allclose(ours(attr.reshape(4, 1, 1, -1)).numpy(), per_value, rtol=1e-5)
        assert not np.allclose(ours(attr).numpy(), per_value, rtol=1e-3)


def test_quantus_sparseness_and_complexity_quirks(quantus_setup):
    import numpy as np

    q, net, x, t, maps = quantus_setup
    kwargs = dict(model=net, x_batch=x.numpy(), y_batch=t, channel_first=True)
    # with abs=False both write into the caller's a_batch, and the entropy of signed shares
    # takes the log of negative numbers (NaN); the signed Gini leaves [0, 1]
    for metric, check in ((q.Sparseness, lambda s: (np.abs(s) > 1).any()),
                          (q.Complexity, lambda s: np.isnan(s).all())):
        a_batch = maps.numpy().copy()
        with np.errstate(invalid="ignore"):
            scores = np.array(metric(normalise=False, abs=False, disable_warnings=True)(
                a_batch=a_batch, **kwargs))
        assert check(scores)
        assert not np.array_equal(a_batch, maps.numpy())
    # an all-zero map (image 0): Quantus's +1e-7 makes it uniform (Gini 0); 0/0 in the entropy
    zero = maps.clone()
    zero[0] = 0
    gini = q.Sparseness(disable_warnings=True)(a_batch=zero.numpy(), **kwargs)
    with np.errstate(invalid="ignore"):
        entropy = q.Complexity(disable_warnings=True)(a_batch=zero.numpy(), **kwargs)
    assert gini[0] == pytest.approx(0.0, abs=1e-6) and np.isnan(entropy[0])
    assert torch.isnan(ev.sparseness(zero)[0]) and torch.isnan(ev.complexity(zero)[0])

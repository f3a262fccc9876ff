"""Layer randomisation, random logit and the similarity measures."""
from __future__ import annotations

import pytest
import torch
from evaluation_nets import images, random_maps, tiny_conv_net

import xaikit as xk

ev = xk.evaluation


def changed_layers(original, net) -> list[str]:
    return [name for name, m in original.named_modules()
            if hasattr(m, "weight") and not torch.equal(m.weight, net.get_submodule(name).weight)]


def test_cascading_and_independent_orders(rng_state_guard):
    net = tiny_conv_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    steps = [(name, changed_layers(net, copy)) for name, copy in ev.randomised_models(net)]
    assert steps == [("6", ["6"]), ("3", ["3", "6"]), ("0", ["0", "3", "6"])]
    steps = [(name, changed_layers(net, copy))
             for name, copy in ev.randomised_models(net, "independent")]
    assert steps == [("6", ["6"]), ("3", ["3"]), ("0", ["0"])]
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    a = [m.get_submodule(n).weight.clone() for n, m in ev.randomised_models(net, seed=4)]
    b = [m.get_submodule(n).weight.clone() for n, m in ev.randomised_models(net, seed=4)]
    c = [m.get_submodule(n).weight.clone() for n, m in ev.randomised_models(net, seed=5)]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not any(torch.equal(u, v) for u, v in zip(a, c))
    with pytest.raises(ValueError, match="order"):
        next(ev.randomised_models(net, "bottom_up"))


def test_similarity_closed_forms():
    a = random_maps(3)
    ones = torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(ev.spearman(a, a), ones)
    torch.testing.assert_close(ev.spearman(a, -a), -ones)
    torch.testing.assert_close(ev.spearman(a, -a, absolute=True), ones)
    torch.testing.assert_close(ev.spearman(a, a ** 3), ones)  # ranks only
    torch.testing.assert_close(ev.ssim(a, a), ones)
    # not -1: where the local mean is far from 0 the luminance and structure terms are both
    # negative and their product is positive
    assert (ev.ssim(a, -a) < 0.9).all() and (ev.ssim(a, -a) > -1).all()
    torch.testing.assert_close(ev.ssim(a, -a, absolute=True), ones)
    with pytest.raises(ValueError, match="differ"):
        ev.spearman(a, random_maps(2))
    with pytest.raises(ValueError, match="similarity"):
        ev.randomisation_test(tiny_conv_net(), images(n=1), 0, "gradient",
                              similarities=("pearson",))


def test_randomisation_test_table_and_gradient_changes():
    net, x, t = tiny_conv_net(), images(n=3), torch.tensor([0, 1, 2])
    table = ev.randomisation_test(net, x, t, "gradient", layer_seed=1)
    assert list(table.columns) == ["step", "layer", "image", "spearman", "spearman_abs",
                                   "ssim", "ssim_abs"]
    assert len(table) == 3 * 3 and table["step"].tolist() == [1] * 3 + [2] * 3 + [3] * 3
    # after randomising every layer the gradient no longer resembles the original
    last = table[table.step == 3]
    assert (last["spearman"].abs() < 0.9).all()
    again = ev.randomisation_test(net, x, t, "gradient", layer_seed=1)
    assert table.equals(again)


def test_random_logit(rng_state_guard):
    net, x = tiny_conv_net(classes=5), images(n=4)
    t = torch.tensor([0, 1, 2, 3])
    a = ev.random_logit(net, x, t, "gradient", class_seed=2)
    assert a.shape == (4,)
    assert torch.equal(a, ev.random_logit(net, x, t, "gradient", class_seed=2))
    assert (a < 1).all()  # another class, another map
    given = xk.explain(net, x, t, "gradient")
    assert torch.equal(a, ev.random_logit(net, x, t, "gradient", class_seed=2, attr=given))
    with pytest.raises(ValueError, match="similarity"):
        ev.random_logit(net, x, t, "gradient", similarity_name="cosine")

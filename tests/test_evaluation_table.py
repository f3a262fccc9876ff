"""``evaluate`` (many methods x metrics) and ``select`` (grid search), on small models."""
from __future__ import annotations

import math

import pytest
import torch
from evaluation_nets import box_masks, images, tiny_conv_net

import xaikit as xk

ev = xk.evaluation


def bias_free_net():
    net = tiny_conv_net(dtype=torch.float64)
    for module in net.modules():
        if getattr(module, "bias", None) is not None:
            module.bias.zero_()
    return net


def test_evaluate_table_controls_and_long_form(rng_state_guard):
    net, x, t, masks = tiny_conv_net(), images(), torch.tensor([0, 1, 2, 0]), box_masks()
    methods = {"grad x input": "gradient_x_input", "random": "random", "uniform": "uniform",
               "smoothgrad": ("smoothgrad", {"samples": 4, "seed": 1})}
    table = ev.evaluate(net, x, t, methods, masks=masks, flip_steps=9, patch=4)
    assert list(table.columns) == ["method", "metric", "mean", "std", "sem", "n",
                                   "higher_is_better"]
    defaults = [m for m, spec in ev.METRICS.items() if spec.default]
    assert len(table) == 4 * len(defaults)
    cell = table.set_index(["method", "metric"])
    # the uniform map: conservative, all positive, AOPC the same in both orders
    assert cell.loc[("uniform", "conservation"), "mean"] < 1e-6
    assert cell.loc[("uniform", "positivity"), "mean"] == 0
    assert math.isclose(cell.loc[("uniform", "aopc_most_relevant"), "mean"],
                        cell.loc[("uniform", "aopc_least_relevant"), "mean"], rel_tol=1e-6)
    assert cell.loc[("random", "randomisation_spearman"), "mean"] == 1  # ignores the model
    assert cell.loc[("random", "continuity"), "mean"] == 0  # ignores the input, too
    directions = dict(zip(table.metric, table.higher_is_better))
    assert directions == {m: ev.METRICS[m].higher_is_better for m in defaults}
    long = ev.evaluate(net, x, t, methods, masks=masks, flip_steps=9, patch=4, per_image=True)
    assert len(long) == 4 * len(defaults) * 4
    means = long.groupby(["method", "metric"])["value"].mean()
    for (method, metric), row in cell.iterrows():
        if row["n"]:
            assert math.isclose(means[(method, metric)], row["mean"], rel_tol=1e-12)


def test_evaluate_metric_choice_and_errors():
    net, x, t = tiny_conv_net(), images(n=2), torch.tensor([0, 1])
    table = ev.evaluate(net, x, t, ["gradient"], flip_steps=4, patch=4)
    assert set(table.metric) == {m for m, s in ev.METRICS.items()
                                 if s.default and not s.needs_masks}
    small = ev.evaluate(net, x, t, "gradient", metrics=["positivity"])
    assert len(small) == 1 and small.loc[0, "n"] == 2
    with pytest.raises(ValueError, match="unknown metric"):
        ev.evaluate(net, x, t, ["gradient"], metrics=["beauty"])
    with pytest.raises(ValueError, match="masks"):
        ev.evaluate(net, x, t, ["gradient"], metrics=["pointing_game"])
    with pytest.raises(ValueError, match="unknown method"):
        ev.evaluate(net, x, t, ["gradient", "telepathy"], metrics=["positivity"])
    with pytest.raises(TypeError, match="unknown option.*seed.*for method 'uniform'"):
        ev.evaluate(net, x, t, {"u": ("uniform", {"seed": 1})}, metrics=["positivity"])


def test_select_finds_the_conservative_epsilon():
    net, x, t = bias_free_net(), images(dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    result = ev.select(net, x, t, "lrp", {"epsilon": [1.0, 0.0, 0.1]}, score="conservation",
                       options={"rule": "epsilon"})
    assert result.best == {"epsilon": 0.0} and result.higher_is_better is False
    assert result.worst == {"epsilon": 1.0}                           # lower is better here
    assert list(result.table.columns) == ["epsilon", "mean", "std"] and len(result.table) == 3
    assert result.table["mean"].iloc[1] < 1e-6 < result.table["mean"].iloc[2]


def test_select_grid_over_two_options_maximises_aopc():
    net, x, t = tiny_conv_net(), images(n=2), torch.tensor([0, 1])
    grid = {"epsilon": [0.0, 1.0], "gamma": [0.0, 0.5]}
    result = ev.select(net, x, t, "lrp", grid, options={"rule": "gamma"}, flip_steps=4, patch=4)
    assert result.higher_is_better and result.score == "aopc_most_relevant"
    assert len(result.table) == 4 and list(result.table.columns)[:2] == ["epsilon", "gamma"]
    best = result.table["mean"].idxmax()
    assert result.best == {"epsilon": result.table.loc[best, "epsilon"],
                           "gamma": result.table.loc[best, "gamma"]}
    worst = result.table["mean"].idxmin()
    assert result.worst == {"epsilon": result.table.loc[worst, "epsilon"],
                            "gamma": result.table.loc[worst, "gamma"]}
    # the table is the score of each setting: recompute one cell by hand
    attr = xk.explain(net, x, t, "lrp", rule="gamma", epsilon=1.0, gamma=0.5)
    by_hand = ev.aopc(ev.pixel_flipping(net, x, attr, t, steps=4, patch=4)).mean()
    # float32 maps and logits: the two computations batch differently, so agree to float32 precision
    assert math.isclose(result.table["mean"].iloc[3], float(by_hand), rel_tol=1e-5)
    with pytest.raises(ValueError, match="grid"):
        ev.select(net, x, t, "lrp", {})
    with pytest.raises(ValueError, match="grid"):
        ev.select(net, x, t, "lrp", {"gamma": "0.25"})
    with pytest.raises(ValueError, match="score"):
        ev.select(net, x, t, "lrp", grid, score="beauty")
    with pytest.raises(ValueError, match="masks"):
        ev.select(net, x, t, "lrp", grid, score="relevance_mass")
    with pytest.raises(ValueError, match="both fixed"):
        ev.select(net, x, t, "lrp", grid, options={"gamma": 0.1})


def test_on_vgg16_shapes_lrp_localises_better_than_random(shapes_model):
    examples = xk.example_batch(shapes_model, n=4)
    table = ev.evaluate(shapes_model, examples.x, examples.labels,
                        {"LRP": ("lrp", {"composite": "vgg16"}), "random": "random"},
                        metrics=["relevance_mass", "aopc_most_relevant"],
                        masks=examples.masks, flip_steps=8)
    cell = table.set_index(["method", "metric"])["mean"]
    assert cell[("LRP", "relevance_mass")] > 2 * cell[("random", "relevance_mass")]
    assert cell[("LRP", "aopc_most_relevant")] > cell[("random", "aopc_most_relevant")]

"""``xk.explain``: input validation, targets, options, layer and reuse checks, and the
properties every registered method must have (shape, batching, dtype, no hooks left)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_gradients import DESIGN_CONTROLS, DESIGN_METHODS, conv_net, inputs, single_thread  # noqa: F401
from torch import nn

import xaikit as xk
from xaikit._checks import reused_modules
from xaikit.methods import method_info

MINE = ("occlusion", "gradient", "gradient_x_input", "integrated_gradients", "smoothgrad",
        "deconvnet", "guided_backprop", "gradcam", "guided_gradcam", "lime",
        "meaningful_perturbation")
FAST = {"smoothgrad": dict(samples=3), "integrated_gradients": dict(steps=8),
        "lime": dict(segments=6, samples=32), "meaningful_perturbation": dict(iterations=20),
        "occlusion": dict(window=4), "lrp": dict(low=-5.0, high=5.0),
        "deep_shap": dict(baselines=torch.linspace(-1.0, 1.0, 3).view(3, 1, 1, 1)),
        "crp": dict(layer="3", channels=[0, 1], low=-5.0, high=5.0)}
PROPAGATION = [name for name in xk.list_methods() if method_info(name).propagation]


# ----------------------------------------------------------------------------- method list
def test_list_methods_holds_only_design_names_and_all_of_mine():
    names = xk.list_methods()
    assert names == sorted(names) and len(set(names)) == len(names)
    assert set(names) <= set(DESIGN_METHODS) | set(DESIGN_CONTROLS)
    assert set(MINE) <= set(names)
    assert {"deconvnet", "guided_backprop", "guided_gradcam"} <= set(PROPAGATION)


def test_list_methods_is_exactly_the_design_methods_and_the_controls():
    # fails until every method module (lrp, deeplift included) has registered its method
    assert xk.list_methods(controls=False) == sorted(DESIGN_METHODS)
    assert xk.list_methods() == sorted(DESIGN_METHODS + DESIGN_CONTROLS)
    assert [m for m in xk.list_methods() if method_info(m).control] == list(DESIGN_CONTROLS)


# ----------------------------------------------------------------------------- properties
def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules())


@pytest.mark.parametrize("method", xk.list_methods())
def test_every_method_shape_batch_dtype_and_no_side_effects(method):
    net, x = conv_net(), inputs(3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x_before = x.clone()
    attr = xk.explain(net, x, [0, 1, 2], method, **FAST.get(method, {}))
    assert attr.shape == x.shape and attr.dtype == x.dtype and attr.device == x.device
    assert not attr.requires_grad and attr.grad_fn is None
    assert torch.isfinite(attr).all() and attr.abs().max() > 0
    singles = torch.cat([xk.explain(net, x[k:k + 1], k, method, **FAST.get(method, {}))
                         for k in range(3)])
    assert torch.allclose(attr, singles, rtol=1e-7, atol=1e-10)
    assert torch.equal(x, x_before) and _hooks(net) == 0 and not net.training
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("method", ["gradient", "occlusion", "gradcam"])
def test_float32_in_float32_out(method):
    attr = xk.explain(conv_net().float(), inputs(2).float(), 1, method)
    assert attr.dtype == torch.float32


# ----------------------------------------------------------------------------- targets
@pytest.mark.parametrize("target", [[2, 2], (2, 2), torch.tensor([2, 2]), torch.tensor(2),
                                    np.array([2, 2]), np.int64(2)])
def test_target_forms_agree_with_an_int(target):
    net, x = conv_net(), inputs(2)
    assert torch.equal(xk.explain(net, x, target, "gradient"), xk.explain(net, x, 2, "gradient"))


@pytest.mark.parametrize("target, error, match", [
    (3, ValueError, "out of range"), (-1, ValueError, "out of range"),
    ([0, 1, 2], ValueError, "batch of 2 inputs but 3 targets"),
    ([0], ValueError, "batch of 2 inputs but 1 targets"),
    (1.0, TypeError, "integers"), (True, TypeError, "bool"),
    ([[0, 1]], ValueError, "1-D"),
])
def test_bad_targets(target, error, match):
    with pytest.raises(error, match=match):
        xk.explain(conv_net(), inputs(2), target, "gradient")


# ----------------------------------------------------------------------------- inputs
@pytest.mark.parametrize("x, error, match", [
    (torch.zeros(3, 8, 8, dtype=torch.float64), ValueError, r"shape \(N, 3, H, W\)"),
    (torch.zeros(1, 1, 3, 8, 8, dtype=torch.float64), ValueError, r"shape \(N, 3, H, W\)"),
    (torch.zeros(1, 4, 8, 8, dtype=torch.float64), ValueError, r"\(1, 4, 8, 8\)"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), TypeError, "floating-point"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.int64), TypeError, "floating-point"),
    (torch.full((1, 3, 8, 8), float("nan"), dtype=torch.float64), ValueError, "NaN"),
    (torch.full((1, 3, 8, 8), float("inf"), dtype=torch.float64), ValueError, "infinite"),
    (torch.zeros(0, 3, 8, 8, dtype=torch.float64), ValueError, "empty"),
    (np.zeros((1, 3, 8, 8)), TypeError, "torch.Tensor"),
])
def test_bad_inputs(x, error, match):
    with pytest.raises(error, match=match):
        xk.explain(conv_net(), x, 0, "gradient")


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match="nn.Module"):
        xk.explain(lambda x: x, inputs(1), 0, "gradient")


# ----------------------------------------------------------------------------- method/options
def test_unknown_method_lists_the_choices():
    with pytest.raises(ValueError, match="unknown method 'saliency'.*gradient"):
        xk.explain(conv_net(), inputs(1), 0, "saliency")
    with pytest.raises(TypeError, match="method must be a string"):
        xk.explain(conv_net(), inputs(1), 0, xk.explain)


@pytest.mark.parametrize("method, option", [("gradient", "steps"),
                                            ("integrated_gradients", "n_steps"),
                                            ("occlusion", "sliding_window_shapes"),
                                            ("smoothgrad", "nt_samples")])
def test_unknown_option_is_named(method, option):
    with pytest.raises(TypeError, match=f"unknown option.*{option}.*{method}"):
        xk.explain(conv_net(), inputs(1), 0, method, **{option: 1})


# ----------------------------------------------------------------------------- unsupported layers
@pytest.mark.parametrize("layer", [nn.Sigmoid, nn.Tanh])
@pytest.mark.parametrize("method", PROPAGATION)
def test_propagation_methods_name_the_unsupported_layer(method, layer):
    net = conv_net(activation=layer)
    with pytest.raises(ValueError, match=f"layer 1 \\({layer.__name__}\\)"):
        xk.explain(net, inputs(1), 0, method)


@pytest.mark.parametrize("method, options", [("gradient", {}), ("integrated_gradients", {}),
                                             ("gradcam", dict(relu=False)), ("occlusion", {})])
def test_other_methods_accept_any_differentiable_layer(method, options):
    attr = xk.explain(conv_net(activation=nn.Tanh), inputs(1), 0, method, **options)
    assert attr.abs().max() > 0


# ----------------------------------------------------------------------------- reused modules
class SharedReLU(nn.Module):
    """One ``nn.ReLU`` object used after both convolutions."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 3))

    def forward(self, x):
        return self.head(self.act(self.conv2(self.act(self.conv1(x)))))


class ConvTwice(nn.Module):
    """One convolution applied twice."""

    def __init__(self):
        super().__init__()
        self.conv, self.act1, self.act2 = nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.ReLU()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))

    def forward(self, x):
        return self.head(self.act2(self.conv(self.act1(self.conv(x)))))


def _build(cls):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return cls().double().eval()


@pytest.mark.parametrize("cls, name", [(SharedReLU, "act"), (ConvTwice, "conv")])
@pytest.mark.parametrize("method", PROPAGATION)
def test_propagation_methods_reject_reused_modules(method, cls, name):
    with pytest.raises(ValueError, match=f"more than once in forward: {name};"):
        xk.explain(_build(cls), inputs(1), 0, method)


def test_gradient_methods_allow_reused_modules():
    attr = xk.explain(_build(SharedReLU), inputs(1), 0, "gradient")
    assert attr.abs().max() > 0


def test_reuse_check_is_cached_restores_modes_and_sees_replaced_modules():
    net, x = _build(SharedReLU).train(), inputs(1)
    calls = []
    net.conv1.register_forward_hook(lambda *args: calls.append(1))
    assert reused_modules(net, x) == ["act"] and len(calls) == 1
    assert reused_modules(net, x) == ["act"] and len(calls) == 1      # cached
    assert net.training and net.head.training                          # mode restored
    net.act = nn.ReLU()                                                 # still shared? no:
    net.forward = lambda inp: net.head(nn.functional.relu(net.conv2(net.act(net.conv1(inp)))))
    assert reused_modules(net, x) == [] and len(calls) == 2             # new module list
    assert reused_modules(conv_net(), inputs(1)) == []


def test_reuse_check_leaves_batchnorm_statistics_alone():
    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(2 * 8 * 8, 3)).double().train()
    stats = net[1].running_mean.clone()
    reused_modules(net, inputs(1))
    assert torch.equal(net[1].running_mean, stats) and net[1].num_batches_tracked == 0


class Boom(nn.Identity):
    """Fails in the forward pass of an explanation (grad enabled), not in the reuse check."""

    def forward(self, x):
        if torch.is_grad_enabled():
            raise RuntimeError("boom")
        return x


@pytest.mark.parametrize("method", ["gradient", "guided_backprop", "deconvnet", "gradcam",
                                    "guided_gradcam", "integrated_gradients"])
def test_no_hooks_left_behind_on_error(method):
    net = conv_net()
    net.insert(2, Boom())
    with pytest.raises(RuntimeError, match="boom"):
        xk.explain(net, inputs(1), 0, method)
    assert _hooks(net) == 0


@pytest.mark.parametrize("method", xk.list_methods())
def test_every_method_runs_on_the_shipped_vgg16_shapes(method, shapes_model):
    from xaikit.data import make_shapes
    from xaikit.methods.gradcam import default_layer

    spec = shapes_model.xaikit_spec
    x = (make_shapes(1).images - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(
        spec.std).view(1, 3, 1, 1)
    options = {**FAST, "occlusion": dict(window=16), "lrp": {},  # the spec has the z^B bounds
               "crp": dict(layer="features.28", channels=[0, 1])}.get(method, {})
    attr = xk.explain(shapes_model, x, 2, method, **options)
    assert attr.shape == x.shape and attr.dtype == x.dtype and torch.isfinite(attr).all()
    assert default_layer(shapes_model) == default_layer(shapes_model, x) == "features.29"

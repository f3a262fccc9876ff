"""Bad input to the methods and metrics: one clear error before any work, never a silent
wrong map. Each case here failed (wrong map, raw error or silent acceptance) before the checks
of ``xaikit.explain`` (training mode, forward trace, dtype, inference mode) and
``xaikit._checks`` (option values) existed."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from reference_gradients import conv_net, inputs
from torch import nn

import xaikit as xk
import xaikit.evaluation as ev
from xaikit.methods import method_info

FAST = {"smoothgrad": dict(samples=2), "integrated_gradients": dict(steps=4),
        "lime": dict(segments=4, samples=8), "meaningful_perturbation": dict(iterations=2),
        "occlusion": dict(window=4), "lrp": dict(low=-5.0, high=5.0),
        "deep_shap": dict(baselines=torch.linspace(-1.0, 1.0, 3).view(3, 1, 1, 1)),
        "crp": dict(layer="3", channels=[0, 1], low=-5.0, high=5.0)}
PROPAGATION = [name for name in xk.list_methods() if method_info(name).propagation]


# ------------------------------------------------------------------------------ training mode
def _batchnorm_dropout_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 4 * 4, 3)).double()


@pytest.mark.parametrize("method", xk.list_methods())
def test_every_method_refuses_a_model_in_training_mode_and_leaves_it_alone(method):
    net = _batchnorm_dropout_net().train()
    stats = (net[1].running_mean.clone(), net[1].running_var.clone())
    with pytest.raises(ValueError, match=r"training mode: 1 \(BatchNorm2d\), 5 \(Dropout\).*"
                                         r"model\.eval\(\)"):
        xk.explain(net, inputs(2), 0, method, **FAST.get(method, {}))
    assert torch.equal(net[1].running_mean, stats[0]) and torch.equal(net[1].running_var, stats[1])
    assert int(net[1].num_batches_tracked) == 0 and net.training
    net.eval()  # the same call in eval mode works and is deterministic
    first = xk.explain(net, inputs(2), 0, method, **FAST.get(method, {}))
    assert torch.equal(first, xk.explain(net, inputs(2), 0, method, **FAST.get(method, {})))


def test_metrics_refuse_a_model_in_training_mode():
    net, x = _batchnorm_dropout_net().train(), inputs(2)
    attr = torch.ones_like(x)
    for call in (lambda: ev.conservation(net, x, attr, 0), lambda: ev.explained_logit(net, x, 0),
                 lambda: ev.pixel_flipping(net, x, attr, 0, steps=2),
                 lambda: ev.continuity(net, x, 0, "gradient", shifts=(1,))):
        with pytest.raises(ValueError, match=r"model\.eval\(\)"):
            call()


# ------------------------------------------------------------- operations outside the modules
class FunctionalReLU(nn.Module):
    """conv -> F.relu -> pool -> linear: the ReLU is invisible to module hooks."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv, self.pool = nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2)
        self.flat, self.fc = nn.Flatten(), nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.flat(self.pool(F.relu(self.conv(x)))))


class FunctionalPool(nn.Module):
    """conv -> ReLU -> F.adaptive_avg_pool2d (4x4 -> 2x2) -> linear."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv, self.act = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU()
        self.flat, self.fc = nn.Flatten(), nn.Linear(4 * 2 * 2, 3, bias=False)

    def forward(self, x):
        return self.fc(self.flat(F.adaptive_avg_pool2d(self.act(self.conv(x)), 2)))


@pytest.mark.parametrize("method", PROPAGATION)
def test_propagation_methods_refuse_a_functional_relu(method):
    net, x = FunctionalReLU().double().eval(), inputs(1)
    with pytest.raises(ValueError, match="outside its modules between conv and pool"):
        xk.explain(net, x, 0, method, **FAST.get(method, {}))
    # what the check prevents: guided backprop equal to the plain gradient
    assert xk.explain(net, x, 0, "gradient").abs().max() > 0


def test_lrp_refuses_a_functional_pooling_that_the_module_version_explains():
    net, x = FunctionalPool().double().eval(), inputs(1, shape=(3, 4, 4))
    with pytest.raises(ValueError, match="outside its modules between act and flat"):
        xk.explain(net, x, 0, "lrp", rule="0")
    modular = nn.Sequential(net.conv, net.act, nn.AdaptiveAvgPool2d(2), net.flat, net.fc)
    attr = xk.explain(modular, x, 0, "lrp", rule="0")   # bias-free: conserves the logit
    # (up to the stabiliser of the rule's denominators)
    assert math.isclose(float(attr.sum()), float(modular(x)[0, 0].detach()), rel_tol=1e-6)


def test_reshapes_and_identity_steps_in_forward_are_allowed():
    net = conv_net()

    class Reshaping(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = net[:5], net[6]

        def forward(self, x):  # torch.flatten as in torchvision's VGG.forward
            return self.head(torch.flatten(self.body(x), 1))

    x = inputs(2)
    assert torch.allclose(xk.explain(Reshaping(), x, [0, 1], "lrp", rule="0"),
                          xk.explain(net, x, [0, 1], "lrp", rule="0"), rtol=0, atol=0)


# ----------------------------------------------------------------------------- option values
@pytest.mark.parametrize("method, options, error, match", [
    ("lrp", dict(rule="gamma", gamma=float("nan")), ValueError, "gamma must be finite"),
    ("lrp", dict(rule="epsilon", epsilon=float("inf")), ValueError, "epsilon must be finite"),
    ("lrp", dict(rule="epsilon", epsilon=-1.0), ValueError, "epsilon must be >= 0"),
    ("lrp", dict(rule="0", bias="no"), TypeError, "bias must be True or False"),
    ("lrp", dict(rule="0", maxpool="max"), ValueError, "maxpool must be one of"),
    ("lrp", dict(rule="zb", low=torch.zeros(2, 3, 1, 1), high=1.0), ValueError,
     r"low of shape \(2, 3, 1, 1\) does not broadcast to x of shape \(1, 3, 8, 8\)"),
    ("lrp", dict(rule="zb", low=-5.0, high=torch.zeros(5)), ValueError,
     r"high of shape \(5,\) does not broadcast"),
    ("lrp", dict(rule="zb", low=float("nan"), high=5.0), ValueError, "low contains NaN"),
    ("smoothgrad", dict(noise=float("inf")), ValueError, "noise must be finite"),
    ("smoothgrad", dict(noise=-0.1), ValueError, "noise must be >= 0"),
    ("smoothgrad", dict(seed=0.5), TypeError, "seed must be an int"),
    ("smoothgrad", dict(seed=-1), ValueError, "seed must be an int >= 0"),
    ("smoothgrad", dict(base="integrated_gradients", base_options="steps"), TypeError,
     "base_options must be a dict"),
    ("meaningful_perturbation", dict(l1=float("nan")), ValueError, "l1 must be finite"),
    ("meaningful_perturbation", dict(l1=-1.0), ValueError, "l1 must be >= 0"),
    ("meaningful_perturbation", dict(beta=-2.0), ValueError, "beta must be >= 1"),
    ("meaningful_perturbation", dict(jitter=1000), ValueError, r"jitter must be an int in \[0, 4\]"),
    ("meaningful_perturbation", dict(lr=0.0), ValueError, "lr must be > 0"),
    ("meaningful_perturbation", dict(sigma=float("inf")), ValueError, "sigma must be finite"),
    ("meaningful_perturbation", dict(seed=1.5), TypeError, "seed must be an int"),
    ("lime", dict(samples=1), ValueError, r"samples must be an int >= 2"),
    ("lime", dict(kernel_width="wide"), TypeError, "kernel_width must be a number"),
    ("lime", dict(kernel_width=0.0), ValueError, "kernel_width must be > 0"),
    ("lime", dict(alpha=float("nan")), ValueError, "alpha must be finite"),
    ("lime", dict(seed=2.0), TypeError, "seed must be an int"),
    ("occlusion", dict(window=2.5), TypeError, "window must be an int"),
    ("occlusion", dict(seed=0.5, fill="noise"), TypeError, "seed must be an int"),
    ("occlusion", dict(progress="yes"), TypeError, "progress must be True or False"),
    ("integrated_gradients", dict(steps=0), ValueError, "steps must be an int >= 1"),
    ("gradcam", dict(relu="no"), TypeError, "relu must be True or False"),
])
def test_option_values_are_checked(method, options, error, match):
    with pytest.raises(error, match=match):
        xk.explain(conv_net(), inputs(1), 0, method, **options)


def test_continuity_shifts_must_be_ints():
    with pytest.raises(TypeError, match="shift must be an int, got 1.7"):
        ev.continuity(conv_net(), inputs(1), 0, "gradient", shifts=(1.7,))
    with pytest.raises(TypeError, match="shifts must be a sequence"):
        ev.continuity(conv_net(), inputs(1), 0, "gradient", shifts=2)


@pytest.mark.parametrize("target, error, match", [
    (None, TypeError, "target is required"),
    ("3", TypeError, "got the string '3'"),
    ({"a": 1}, TypeError, "target must be an int or a sequence of ints"),
])
def test_target_none_or_string_is_a_clear_error(target, error, match):
    with pytest.raises(error, match=match):
        xk.explain(conv_net(), inputs(1), target, "gradient")


# ---------------------------------------------------------------------------------- dtypes
def test_dtype_mismatch_is_refused_before_any_work():
    net = conv_net().float()
    with pytest.raises(TypeError, match="float32 or float64"):
        xk.explain(net, inputs(1).half(), 0, "meaningful_perturbation")
    with pytest.raises(TypeError, match="x has dtype torch.float64 but the model's parameters "
                                        r"are torch.float32.*x.to\(torch.float32\)"):
        xk.explain(net, inputs(1), 0, "gradient")
    with pytest.raises(TypeError, match="the model's parameters are torch.float16"):
        xk.explain(net.half(), inputs(1).float(), 0, "lrp", rule="0")


def test_float32_model_and_input_work():
    net, x = conv_net().float(), inputs(1).float()
    assert xk.explain(net, x, 0, "integrated_gradients", steps=4).dtype == torch.float32


# -------------------------------------------------------------------------- number of outputs
class HeadFirst(nn.Module):
    """A 10-logit model whose head is registered before a 4-unit hidden layer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.head = nn.Linear(4, 10)
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.act, self.flat, self.hidden = nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8 * 8, 4)

    def forward(self, x):
        return self.head(self.hidden(self.flat(self.act(self.conv(x)))))


def test_outputs_and_channels_come_from_the_model_not_the_registration_order():
    net, x = HeadFirst().double().eval(), inputs(2)
    assert xk.explain(net, x, [7, 7], "gradient").shape == x.shape
    with pytest.raises(ValueError, match="out of range for 10 outputs"):
        xk.explain(net, x, 10, "gradient")

    class InputSecond(nn.Module):
        def __init__(self):
            super().__init__()
            self.late = nn.Conv2d(4, 3, 1)
            self.first = nn.Conv2d(1, 4, 3, padding=1)
            self.flat, self.fc = nn.Flatten(), nn.Linear(3 * 8 * 8, 2)

        def forward(self, x):
            return self.fc(self.flat(self.late(self.first(x))))

    gray = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    assert xk.explain(InputSecond().double(), gray, 1, "gradient").shape == gray.shape
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, H, W\)"):
        xk.explain(InputSecond().double(), inputs(1), 1, "gradient")


def test_models_without_linear_layers_get_the_range_check():
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten()).double()
    with pytest.raises(ValueError, match="out of range for 5 outputs"):
        xk.explain(net, inputs(1), 5, "gradient")
    with pytest.raises(ValueError, match=r"must return \(N, classes\) logits"):
        xk.explain(nn.Sequential(nn.Conv2d(3, 5, 3)).double(), inputs(1), 0, "gradient")


# ------------------------------------------------------------------------- inference mode
@pytest.mark.parametrize("method", xk.list_methods())
def test_inference_mode_gives_a_clear_error_or_works(method):
    net, x = conv_net(), inputs(1)
    with torch.inference_mode():
        if method_info(method).gradients:
            with pytest.raises(RuntimeError, match=r"inside torch\.inference_mode\(\)"):
                xk.explain(net, x, 0, method, **FAST.get(method, {}))
            return
        inside = xk.explain(net, x, 0, method, **FAST.get(method, {}))
    assert torch.equal(inside, xk.explain(net, x, 0, method, **FAST.get(method, {})))


# ------------------------------------------------------------------- smoothgrad with LRP base
def test_smoothgrad_with_lrp_base_works_on_the_default_composite(shapes_model):
    examples = xk.example_batch(shapes_model, n=2)
    x, t = examples.x, examples.labels
    attr = xk.explain(shapes_model, x, t, "smoothgrad", base="lrp", samples=2)
    assert attr.shape == x.shape and torch.isfinite(attr).all() and attr.abs().max() > 0
    # without noise the box is the pixel box, so SmoothGrad is LRP itself
    still = xk.explain(shapes_model, x, t, "smoothgrad", base="lrp", noise=0.0, samples=2)
    assert torch.allclose(still, xk.explain(shapes_model, x, t, "lrp"), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- evaluation
def test_select_with_every_setting_nan_says_so():
    # a network with zero weights gives all-zero maps, whose positivity is undefined (NaN)
    zero = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False), nn.Flatten(),
                         nn.Linear(64, 2, bias=False)).double().eval()
    for p in zero.parameters():
        nn.init.zeros_(p)
    with pytest.raises(ValueError, match="every setting of the grid scores NaN"):
        ev.select(zero, inputs(2), [0, 1], "lrp", {"epsilon": [0.5, 1.0]},
                  options={"rule": "epsilon"}, score="positivity")


def test_float_seeds_of_data_and_metrics_are_type_errors():
    net, x = conv_net(), inputs(2)
    for call, name in ((lambda: xk.data.make_shapes(2, seed=1.5), "seed"),
                       (lambda: ev.randomisation_test(net, x, 0, "gradient", layer_seed=0.5),
                        "layer_seed"),
                       (lambda: ev.random_logit(net, x, 0, "gradient", class_seed=1.0),
                        "class_seed"),
                       (lambda: ev.select(net, x, 0, "lrp", {"epsilon": [0.1]}, seed=0.5),
                        "seed")):
        with pytest.raises(TypeError, match=f"^{name} must be an int"):
            call()

"""Grad-CAM and Guided Grad-CAM against the formula (``reference_gradients.py``) and captum."""
from __future__ import annotations

import warnings

import pytest
import torch
from reference_gradients import (
    conv_net,
    gradcam_formula,
    inputs,
    modified_backward,
    single_thread,  # noqa: F401
    upsample,
)
from torch import nn
from torch.nn import functional as F

import xaikit as xk
from xaikit.methods.gradcam import default_layer, gradcam_map
from xaikit.models import shapes_architecture

TIGHT = dict(rtol=0, atol=1e-12)
TARGETS = [0, 1, 2]


def _captum_layer_gradcam(net, layer, x, relu):
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(net, layer).attribute(x, target=torch.tensor(TARGETS[:len(x)]),
                                             relu_attributions=relu)
    return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear").detach()


@pytest.mark.parametrize("layer", [None, "0", "3", "4"])
def test_gradcam_equals_the_formula(layer):
    net, x = conv_net(), inputs(3)
    # the default is the ReLU after the last convolution ("4"), as in the authors' code
    expected = upsample(gradcam_formula(net, layer or "4", x, torch.tensor(TARGETS)), x)
    # the map is spread over the channels
    attr = xk.explain(net, x, TARGETS, "gradcam", layer=layer) * x.shape[1]
    assert expected.abs().max() > 1e-3
    assert torch.allclose(attr, expected.expand_as(x), **TIGHT)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("layer, index", [(None, 4), ("3", 3)])
def test_gradcam_equals_captum_layer_gradcam(layer, index, relu):
    net, x = conv_net(), inputs(3)
    # the map is spread over the channels
    attr = xk.explain(net, x, TARGETS, "gradcam", layer=layer, relu=relu) * x.shape[1]
    expected = _captum_layer_gradcam(net, net[index], x, relu)
    assert expected.abs().max() > 1e-3
    assert torch.allclose(attr[:, :1], expected, **TIGHT)


def test_gradcam_default_is_the_rectified_maps_not_the_convolution():
    net, x = conv_net(), inputs(3)
    assert default_layer(net) == default_layer(net, x) == "4"
    default = xk.explain(net, x, TARGETS, "gradcam", relu=False)
    assert torch.equal(default, xk.explain(net, x, TARGETS, "gradcam", layer="4", relu=False))
    before = xk.explain(net, x, TARGETS, "gradcam", layer="3", relu=False)
    assert (default - before).abs().max() > 0.1 * default.abs().max()


def test_gradcam_relu_removes_the_negative_part():
    net, x = conv_net(), inputs(3)
    signed = gradcam_map(net, x, torch.tensor(TARGETS), relu=False)
    assert (signed < 0).any() and (signed > 0).any()
    assert torch.equal(gradcam_map(net, x, torch.tensor(TARGETS)), signed.clamp(min=0))


def test_gradcam_is_the_same_map_in_every_channel():
    net, x = conv_net(), inputs(2)
    # the map is spread over the channels
    attr = xk.explain(net, x, [0, 1], "gradcam") * x.shape[1]
    assert attr.shape == x.shape and attr.is_contiguous()
    assert torch.equal(attr, attr[:, :1].expand_as(attr))


def _vgg_layout():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return shapes_architecture().double().eval().requires_grad_(False)


@pytest.mark.parametrize("layer", [None, "features.29", "features.28"])
def test_gradcam_on_vgg_layout_with_inplace_relus(layer):
    # the default is the output of the in-place ReLU after the last convolution; the formula
    # runs on a copy whose ReLUs are not in-place
    net, x, t = _vgg_layout(), inputs(2, shape=(3, 64, 64)), torch.tensor([0, 5])
    assert net.features[28].__class__ is nn.Conv2d and net.features[29].inplace
    assert default_layer(net) == default_layer(net, x) == "features.29"
    # the map is spread over the channels
    attr = xk.explain(net, x, [0, 5], "gradcam", layer=layer, relu=False) * x.shape[1]
    expected = upsample(gradcam_formula(net, layer or "features.29", x, t, relu=False), x)
    assert expected.abs().max() > 0
    assert torch.allclose(attr[:, :1], expected, rtol=1e-9, atol=1e-9 * expected.abs().max())


def test_gradcam_default_on_vgg_layout_equals_features_29_and_captum_not_features_28():
    net, x = _vgg_layout(), inputs(2, shape=(3, 64, 64))
    default = xk.explain(net, x, [0, 1], "gradcam")
    assert torch.equal(default, xk.explain(net, x, [0, 1], "gradcam", layer="features.29"))
    captum = _captum_layer_gradcam(net, net.features[29], x, relu=True)
    assert captum.abs().max() > 0
    assert torch.allclose(default[:, :1] * x.shape[1], captum, rtol=1e-9, atol=1e-9 * captum.abs().max())
    old = xk.explain(net, x, [0, 1], "gradcam", layer="features.28") * x.shape[1]
    assert torch.allclose(old[:, :1], _captum_layer_gradcam(net, net.features[28], x, relu=True),
                          rtol=1e-9, atol=1e-9 * captum.abs().max())
    assert (old[:, :1] - captum).abs().max() > 0.1 * captum.abs().max()


class _Net(nn.Module):
    """conv1, conv2, [middle], relu2, relu1 in registration order; ``forward`` applies
    ``relu1`` after conv1 and ``relu2`` after conv2 (or ``F.relu``, or swapped)."""

    def __init__(self, middle: nn.Module | None = None, after_conv2: str = "relu2",
                 shared: bool = False):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 5, 3, padding=1)
            self.middle = middle
            self.relu2 = nn.ReLU()
            self.relu1 = self.relu2 if shared else nn.ReLU()
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(5 * 4 * 4, 3))
        self.after_conv2 = after_conv2

    def forward(self, x):
        after_conv1 = self.relu2 if self.after_conv2 == "relu1" else self.relu1
        z = self.conv2(F.max_pool2d(after_conv1(self.conv1(x)), 2))
        z = self.middle(z) if self.middle is not None else z
        after = F.relu if self.after_conv2 == "functional" else getattr(self, self.after_conv2)
        return self.head(after(z))


@pytest.mark.parametrize("net, static, found", [
    (_Net(), "relu2", "relu2"),
    (_Net(middle=nn.BatchNorm2d(5)), "conv2", "conv2"),     # BatchNorm next: the convolution
    (_Net(after_conv2="functional"), "relu2", "conv2"),     # F.relu in forward, relu2 unused
    (_Net(shared=True), "relu2", "conv2"),                  # one nn.ReLU applied twice
    (_Net(after_conv2="relu1"), "relu2", "conv2"),          # registered next, applied elsewhere
], ids=["relu-module", "batchnorm-between", "functional-relu", "shared-relu", "out-of-order"])
def test_gradcam_default_falls_back_to_the_last_convolution(net, static, found):
    # without an input only the registration order is known; with one, the data flow
    net = net.double().eval().requires_grad_(False)
    x = inputs(2)
    assert default_layer(net) == static and default_layer(net, x) == found
    # the map is spread over the channels
    attr = xk.explain(net, x, [0, 1], "gradcam", relu=False) * x.shape[1]
    expected = upsample(gradcam_formula(net, found, x, torch.tensor([0, 1]), relu=False), x)
    assert expected.abs().max() > 1e-3
    assert torch.allclose(attr[:, :1], expected, **TIGHT)


def test_guided_gradcam_is_guided_backprop_times_bilinear_gradcam():
    net, x = conv_net(), inputs(3)
    t = torch.tensor(TARGETS)
    expected = modified_backward(net, x, t, "guided") * upsample(gradcam_formula(net, "4", x, t), x)
    attr = xk.explain(net, x, TARGETS, "guided_gradcam")
    assert expected.abs().max() > 1e-4
    assert torch.allclose(attr, expected, **TIGHT)


def test_guided_gradcam_equals_captum_with_bilinear_not_its_nearest_default():
    from captum.attr import GuidedGradCam

    net, x = conv_net(), inputs(3)
    attr = xk.explain(net, x, TARGETS, "guided_gradcam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        captum = GuidedGradCam(net, net[4])             # the default layer: the ReLU after net[3]
        bilinear = captum.attribute(x, target=torch.tensor(TARGETS), interpolate_mode="bilinear")
        nearest = captum.attribute(x, target=torch.tensor(TARGETS))
    assert torch.allclose(attr, bilinear.detach(), **TIGHT)
    assert not torch.allclose(attr, nearest.detach(), rtol=1e-3, atol=1e-6)


def _counting(net: nn.Module) -> list[int]:
    """Append the batch size of every forward pass of ``net`` (a hook on the whole model)."""
    calls: list[int] = []
    net.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    return calls


@pytest.mark.parametrize("layer", [None, "features.29", "features.28"])
def test_gradcam_costs_one_forward_pass(layer):
    # the default layer is found inside the pass that computes the map: a fresh model is
    # traced once (batch of 1, cached by xaikit._checks.trace), then every call is one pass
    net, x = _vgg_layout(), inputs(2, shape=(3, 64, 64))
    calls = _counting(net)
    first = xk.explain(net, x, [0, 1], "gradcam", layer=layer)
    assert calls == [1, 2]
    calls.clear()
    again = xk.explain(net, x, [0, 1], "gradcam", layer=layer)
    direct = gradcam_map(net, x, torch.tensor([0, 1]), layer)
    assert calls == [2, 2]
    assert torch.equal(first, again)
    assert torch.equal(direct, gradcam_map(net, x, torch.tensor([0, 1]), layer or "features.29"))


@pytest.mark.parametrize("net, found", [
    (_Net(), "relu2"), (_Net(middle=nn.BatchNorm2d(5)), "conv2"),
    (_Net(after_conv2="functional"), "conv2"), (_Net(shared=True), "conv2"),
    (_Net(after_conv2="relu1"), "conv2"),
], ids=["relu-module", "batchnorm-between", "functional-relu", "shared-relu", "out-of-order"])
def test_gradcam_default_in_its_own_pass_is_default_layer(net, found):
    # the same choice as default_layer(net, x), which spends an extra pass on it
    net = net.double().eval().requires_grad_(False)
    x, t = inputs(2), torch.tensor([0, 1])
    assert default_layer(net, x) == found
    xk.explain(net, x, [0, 1], "gradcam")                     # traced (cached)
    calls = _counting(net)
    default = gradcam_map(net, x, t, relu=False)
    assert calls == [2]
    assert torch.equal(default, gradcam_map(net, x, t, found, relu=False))


def test_gradcam_default_refuses_a_reused_layer_after_choosing_it():
    # one conv applied twice, then its ReLU: the default (the ReLU after the last conv) is
    # called twice too, so no layer with one output remains
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.relu = nn.ReLU()
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))

        def forward(self, x):
            return self.head(self.relu(self.conv(self.relu(self.conv(x)))))

    net = Twice().double().eval().requires_grad_(False)
    with pytest.raises(ValueError, match="called more than once"):
        gradcam_map(net, inputs(1), torch.tensor([0]))

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


@pytest.mark.parametrize("layer", [None, "0", "3"])
def test_gradcam_equals_the_formula(layer):
    net, x = conv_net(), inputs(3)
    expected = upsample(gradcam_formula(net, layer or "3", x, torch.tensor(TARGETS)), x)
    # the map is spread over the channels
    attr = xk.explain(net, x, TARGETS, "gradcam", layer=layer) * x.shape[1]
    assert expected.abs().max() > 1e-3
    assert torch.allclose(attr, expected.expand_as(x), **TIGHT)


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_equals_captum_layer_gradcam(relu):
    net, x = conv_net(), inputs(3)
    # the map is spread over the channels
    attr = xk.explain(net, x, TARGETS, "gradcam", relu=relu) * x.shape[1]
    expected = _captum_layer_gradcam(net, net[3], x, relu)
    assert torch.allclose(attr[:, :1], expected, **TIGHT)


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


def test_gradcam_on_vgg_layout_with_inplace_relu_after_the_layer():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = shapes_architecture().double().eval().requires_grad_(False)
    assert default_layer(net) == "features.28" and net.features[29].inplace
    x = inputs(2, shape=(3, 64, 64))
    # the map is spread over the channels
    attr = xk.explain(net, x, [0, 5], "gradcam", relu=False) * x.shape[1]
    expected = upsample(gradcam_formula(net, "features.28", x, torch.tensor([0, 5]), relu=False), x)
    assert expected.abs().max() > 0
    assert torch.allclose(attr[:, :1], expected, rtol=1e-9, atol=1e-9 * expected.abs().max())


def test_gradcam_layer_given_as_module_equals_name():
    net, x = conv_net(), inputs(1)
    assert torch.equal(xk.explain(net, x, 0, "gradcam", layer=net[0]),
                       xk.explain(net, x, 0, "gradcam", layer="0"))


@pytest.mark.parametrize("layer, error, match", [
    ("features.99", ValueError, "no layer named 'features.99'.*0, 3"),
    ("6", ValueError, r"layer 6 must output \(N, K, h, w\)"),
    (3, TypeError, "module name"),
    (nn.Conv2d(3, 3, 1), ValueError, "not a submodule"),
])
def test_gradcam_bad_layer(layer, error, match):
    with pytest.raises(error, match=match):
        xk.explain(conv_net(), inputs(1), 0, "gradcam", layer=layer)


def test_gradcam_needs_a_convolution():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).double()
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        xk.explain(net, inputs(1, shape=(3, 2, 2)), 0, "gradcam")


def test_gradcam_rejects_a_layer_applied_twice():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))

        def forward(self, x):
            return self.head(self.conv(torch.relu(self.conv(x))))

    with pytest.raises(ValueError, match="layer conv is called more than once"):
        xk.explain(Twice().double(), inputs(1), 0, "gradcam")


def test_guided_gradcam_is_guided_backprop_times_bilinear_gradcam():
    net, x = conv_net(), inputs(3)
    t = torch.tensor(TARGETS)
    expected = modified_backward(net, x, t, "guided") * upsample(gradcam_formula(net, "3", x, t), x)
    attr = xk.explain(net, x, TARGETS, "guided_gradcam")
    assert expected.abs().max() > 1e-4
    assert torch.allclose(attr, expected, **TIGHT)


def test_guided_gradcam_equals_captum_with_bilinear_not_its_nearest_default():
    from captum.attr import GuidedGradCam

    net, x = conv_net(), inputs(3)
    attr = xk.explain(net, x, TARGETS, "guided_gradcam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        captum = GuidedGradCam(net, net[3])
        bilinear = captum.attribute(x, target=torch.tensor(TARGETS), interpolate_mode="bilinear")
        nearest = captum.attribute(x, target=torch.tensor(TARGETS))
    assert torch.allclose(attr, bilinear.detach(), **TIGHT)
    assert not torch.allclose(attr, nearest.detach(), rtol=1e-3, atol=1e-6)

"""Deconvnet (Zeiler & Fergus 2014): ``xk.explain(..., "deconvnet")`` (captum ``Deconvolution``)
against zennit's ``DeconvNet`` composite and against a hand computation.

The backward pass of Deconvnet runs the transposed layers (convolutions and dense layers by
their transposed weights, max-pooling to the forward winner) and, at every ReLU, passes
``relu(grad_out)`` on, whatever the sign of the ReLU's input in the forward pass.

Tolerance: float64 throughout. captum and zennit implement the same rule with different hooks,
so they agree to rounding: ``rtol=1e-10`` relative to the largest value of the map. The hand
computation is exact in binary (the weights are multiples of 1/2), ``atol=1e-12``.
"""
from __future__ import annotations

import pytest
import torch
from reference_gradients import conv_net, inputs, single_thread  # noqa: F401
from torch import nn

import xaikit as xk
from xaikit.models import shapes_architecture


def _two_layer_net() -> nn.Sequential:
    """``f(x) = W2 relu(W1 x + b1)``: 3 inputs, 4 hidden ReLUs, 2 outputs (float64)."""
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5],
                                          [-1.0, 1.0, 1.0],
                                          [2.0, 0.0, -1.0],
                                          [0.5, 0.5, 0.5]]))
        net[0].bias.copy_(torch.tensor([0.0, -1.0, 0.5, -3.0]))
        net[2].weight.copy_(torch.tensor([[1.0, -1.0, 2.0, -0.5],
                                          [-2.0, 1.0, 0.5, 1.0]]))
    return net.eval().requires_grad_(False)


def test_deconvnet_by_hand_on_a_two_layer_relu_net():
    net = _two_layer_net()
    x = torch.tensor([[1.0, 0.5, 2.0]], dtype=torch.float64)
    z = net[0](x)[0]
    # hidden units 0-2 are on, unit 3 is off (z = 1, 0.5, 0.5, -1.25)
    assert torch.equal(z > 0, torch.tensor([True, True, True, False]))
    w_out = net[2].weight[1]                     # class 1: (-2, 1, 0.5, 1)
    W1 = net[0].weight
    # the three ReLU backward rules on the signal w_out arriving at the hidden layer
    by_hand = {
        "gradient": W1.T @ (w_out * (z > 0)),                    # mask by the forward sign
        "deconvnet": W1.T @ w_out.clamp(min=0),                  # relu(grad), sign ignored
        "guided_backprop": W1.T @ (w_out.clamp(min=0) * (z > 0)),  # both
    }
    # written out: (0, 1, 0.5, 1) through W1^T for Deconvnet, the off unit 3 included
    assert torch.equal(by_hand["deconvnet"], torch.tensor([0.5, 1.5, 1.0], dtype=torch.float64))
    assert torch.equal(by_hand["gradient"], torch.tensor([-2.0, 5.0, -0.5], dtype=torch.float64))
    assert torch.equal(by_hand["guided_backprop"], torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64))
    for method, expected in by_hand.items():
        attr = xk.explain(net, x, 1, method)
        assert torch.allclose(attr[0], expected, rtol=0, atol=1e-12), method


def test_deconvnet_ignores_the_forward_signs_on_a_net_without_pooling():
    # with no max-pooling switches, nothing of the input is left in the backward pass: every x
    # gets W1^T relu(w_t), while the gradient changes with the ReLU pattern
    net = _two_layer_net()
    x = 2 * inputs(16, seed=5, shape=(3,))
    t = [0, 1] * 8
    attr = xk.explain(net, x, t, "deconvnet")
    expected = (net[2].weight.clamp(min=0) @ net[0].weight)[torch.tensor(t)]
    assert torch.allclose(attr, expected, rtol=0, atol=1e-12)
    grad = xk.explain(net, x, t, "gradient")
    assert (grad - expected).abs().max() > 0.5       # the inputs switch units off


def _zennit_deconvnet(net: nn.Module, x: torch.Tensor, target: list[int]) -> torch.Tensor:
    from zennit.attribution import Gradient
    from zennit.composites import DeconvNet

    with torch.no_grad():
        classes = net(x[:1]).shape[1]
    onehot = torch.eye(classes, dtype=x.dtype)[torch.tensor(target)]
    with Gradient(model=net, composite=DeconvNet()) as attributor:
        _, relevance = attributor(x.clone(), onehot)
    return relevance.detach()


@pytest.mark.parametrize("case", ["conv_net", "vgg_layout"])
def test_deconvnet_equals_zennit_deconvnet_composite(case):
    if case == "conv_net":
        net, x, t = conv_net(), inputs(3), [0, 1, 2]
    else:  # the VGG-16 topology of vgg16-shapes (in-place ReLUs, max-pooling), random weights
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = shapes_architecture().double().eval().requires_grad_(False)
        x, t = inputs(2, shape=(3, 64, 64)), [0, 5]
    attr = xk.explain(net, x, t, "deconvnet")
    expected = _zennit_deconvnet(net, x, t)
    scale = expected.abs().max()
    assert scale > 0
    assert torch.allclose(attr, expected, rtol=1e-10, atol=1e-10 * scale)
    grad = xk.explain(net, x, t, "gradient")
    assert (grad - expected).abs().max() > 0.1 * scale   # a different rule from the gradient

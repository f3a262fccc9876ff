"""DeepLIFT (xaikit.methods.deeplift, xaikit.methods.deeplift_scratch): seed-claims D3-D7, summation-to-delta,
the captum #1104 repair, and agreement with the slow per-neuron reference."""
from __future__ import annotations

import random
import warnings

import pytest
import torch
import torch.nn.functional as F
from reference_deeplift import min_net_by_hand, reference_deeplift, to_torch
from torch import nn

import xaikit as xk
from xaikit.methods.deeplift import deeplift, deeplift_softmax_adjust, explaining_copy
from xaikit.methods.deeplift_scratch import deeplift_by_hand, linear_split
from xaikit.models import SHAPES_SPEC, shapes_architecture
from xaikit.references import resolve_baseline

RULES = ("rescale", "reveal_cancel")
D = torch.float64


def _delta(model, x, x0, target):
    """``f(x)[t] - f(x0)[t]`` per sample."""
    t = torch.as_tensor(target).reshape(-1, 1).expand(x.shape[0], 1)
    with torch.no_grad():
        return (model(x) - model(x0)).gather(1, t).squeeze(1)


def _rel_err(attr, delta):
    return ((attr.flatten(1).sum(1) - delta).abs() / delta.abs()).max().item()


def _randomise_biases(model, std=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.bias.copy_(std * torch.randn(m.bias.shape, generator=g, dtype=m.bias.dtype))
    return model


def _small_vgg(seed=0, overlapping=False):
    """VGG-like float64 net on (N, 3, 6, 6): conv-ReLU-conv-ReLU-MaxPool blocks, dense head."""
    pool = nn.MaxPool2d(2, stride=1) if overlapping else nn.MaxPool2d(3)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(3, 3, 3, padding=1),
            nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(True),
            pool, nn.Flatten(), nn.Linear(4 * (4 if overlapping else 1), 5), nn.ReLU(True),
            nn.Dropout(0.5), nn.Linear(5, 3))
    return _randomise_biases(model.double().eval(), std=0.3, seed=seed)


def _random_net(sizes, seed):
    """Random fully-connected ReLU net in the reference's list format."""
    rng = random.Random(seed)
    net = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if k:
            net.append(("relu",))
        net.append(("linear", [[rng.gauss(0, 1) for _ in range(n_in)] for _ in range(n_out)],
                    [rng.gauss(0, 0.5) for _ in range(n_out)]))
    return net


def _unroll(model, shape):
    """``model`` (Conv2d/Linear/ReLU/MaxPool2d/Flatten/Dropout) as a reference net, flat input."""
    net, x = [], torch.zeros((1,) + tuple(shape), dtype=D)
    for layer in model:
        if isinstance(layer, nn.ReLU):
            net.append(("relu",))
        elif isinstance(layer, nn.MaxPool2d):
            c, h, w = x.shape[1:]
            idx = torch.arange(c * h * w, dtype=D).view(1, c, h, w)
            cols = [F.unfold(idx[:, k:k + 1], layer.kernel_size, stride=layer.stride)[0]
                    for k in range(c)]
            net.append(("max", [col[:, j].long().tolist() for col in cols
                                for j in range(col.shape[1])]))
        elif not isinstance(layer, (nn.Flatten, nn.Dropout)):
            n_in = x[0].numel()
            basis = torch.eye(n_in, dtype=D).view((n_in,) + x.shape[1:])
            bias = layer(torch.zeros_like(x)).detach().flatten()
            W = (layer(basis).detach().reshape(n_in, -1) - bias).T
            net.append(("linear", W.tolist(), bias.tolist()))
        x = layer(x).detach()
    return net


# ----------------------------------------------------------------------------- seed claims D3-D7


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("eps", [1e-3, 0.5, 2.0])
def test_d3_threshold_contribution_is_eps_not_gradient_x_input(rule, eps):
    """f(x) = max(0, x - 10), reference 0, x = 10 + eps: contribution eps; grad x input 10 + eps."""
    net = [("linear", [[1.0]], [-10.0]), ("relu",)]
    model = to_torch(net)
    x = torch.tensor([[10.0 + eps]], dtype=D, requires_grad=True)
    attr = xk.explain(model, x.detach(), 0, "deeplift", rule=rule)
    assert attr.item() == pytest.approx(eps, rel=1e-9)
    assert reference_deeplift(net, [10.0 + eps], [0.0], 0, rule)[0] == pytest.approx(eps, rel=1e-9)
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    assert (grad * x).item() == pytest.approx(10.0 + eps)


MIN_NET = [("linear", [[1.0, 0.0], [-1.0, 0.0], [1.0, -1.0]], [0.0, 0.0, 0.0]), ("relu",),
           ("linear", [[1.0, -1.0, -1.0]], [0.0])]
"""o = ReLU(i1) - ReLU(-i1) - ReLU(i1 - i2) = i1 - ReLU(i1 - i2) = min(i1, i2) as a Sequential."""


@pytest.mark.parametrize("i1, i2", [(3.0, 1.0), (5.0, 4.5), (0.7, 0.2)])
def test_d4_min_rescale_and_reveal_cancel(i1, i2):
    """o = min(i1, i2), reference 0, i1 > i2 > 0: Rescale (0, i2), RevealCancel (i2/2, i2/2)."""
    model = to_torch(MIN_NET)
    x = torch.tensor([[i1, i2]], dtype=D)
    assert model(x).item() == pytest.approx(min(i1, i2))
    expected = {"rescale": [0.0, i2], "reveal_cancel": [0.5 * i2, 0.5 * i2]}
    for rule, want in expected.items():
        got = xk.explain(model, x, 0, "deeplift", rule=rule)[0].tolist()
        assert got == pytest.approx(want, abs=1e-12), rule
        assert list(min_net_by_hand(i1, i2, rule)) == pytest.approx(want, abs=1e-12), rule
        assert sum(got) == pytest.approx(i2)


def test_d4_min_when_i2_exceeds_i1():
    """The lecture's remark: for i1 < i2 RevealCancel gives i1/2 to each (Rescale: (i1, 0))."""
    model, x = to_torch(MIN_NET), torch.tensor([[1.0, 3.0]], dtype=D)
    rc = xk.explain(model, x, 0, "deeplift", rule="reveal_cancel")[0].tolist()
    rs = xk.explain(model, x, 0, "deeplift", rule="rescale")[0].tolist()
    assert rc == pytest.approx([0.5, 0.5]) and rs == pytest.approx([1.0, 0.0])


def test_d5_linear_rule_positive_negative_split():
    """dy+ = sum 1{w dx > 0} w dx, dy- = sum 1{w dx < 0} w dx: w = (2, -1, 3), dx = (1, 2, -1)."""
    layer = nn.Linear(3, 1).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, -1.0, 3.0]]))
        layer.bias.fill_(7.0)
    dpos, dneg = linear_split(layer, torch.tensor([[1.0, 2.0, -1.0]], dtype=D))
    assert (dpos.item(), dneg.item()) == (2.0, -5.0)   # w dx = (2, -2, -3); bias cancels


def test_d5_half_weight_rule_when_dx_is_zero():
    """h = ReLU(x1 - x2) at x = (1, 1), ref 0, o = 2 h: dh = 0 but dh+ = 1, dh- = -1.

    RevealCancel gives dy+ = 0.5, dy- = -0.5 and the 0.5 w rule passes m = 0.5 * 2 * (1 + 1) = 2
    to both parts: C = (1, -1), summing to do = 0. Setting that multiplier to 0 would hide the
    cancelling pair; Rescale (m = 0/0 -> gradient 0) gives (0, 0)."""
    net = [("linear", [[1.0, -1.0]], [0.0]), ("relu",), ("linear", [[2.0]], [0.0])]
    x = torch.tensor([[1.0, 1.0]], dtype=D)
    rc = xk.explain(to_torch(net), x, 0, "deeplift", rule="reveal_cancel")[0].tolist()
    assert rc == pytest.approx([1.0, -1.0])
    assert reference_deeplift(net, [1.0, 1.0], [0.0, 0.0], 0, "reveal_cancel") == pytest.approx(rc)
    rs = xk.explain(to_torch(net), x, 0, "deeplift", rule="rescale")[0].tolist()
    assert rs == pytest.approx([0.0, 0.0])


@pytest.mark.parametrize("x1, x2, want", [(50.0, 0.0, [0.5, 0.0]), (100.0, 100.0, [0.25, 0.25])])
def test_d6_sigmoid_output_saturates_contributions(x1, x2, want):
    """o = sigmoid(x1 + x2), reference 0: (50, 0) gives (0.5, 0) and (100, 100) gives (0.25, 0.25),
    although the second input pushes the logit harder."""
    logit_net = [("linear", [[1.0, 1.0]], [0.0])]
    x, x0 = torch.tensor([[x1, x2]], dtype=D), torch.zeros(1, 2, dtype=D)
    logit_c = xk.explain(to_torch(logit_net), x, 0, "deeplift")[0]          # contributions to y
    y = x1 + x2
    m_sigmoid = (torch.sigmoid(torch.tensor(y, dtype=D)) - 0.5) / y           # Rescale multiplier
    assert (m_sigmoid * logit_c).tolist() == pytest.approx(want, abs=1e-12)
    sig = to_torch(logit_net + [("sigmoid",)])                                # the whole graph
    target = torch.tensor([0])
    for rule in RULES:
        by_hand = deeplift_by_hand(sig, x, x0, target, rule=rule)[0].tolist()
        assert by_hand == pytest.approx(want, abs=1e-12), rule
    assert deeplift(sig, x, target, rule="rescale")[0].tolist() == pytest.approx(want, abs=1e-12)
    ref = reference_deeplift(logit_net + [("sigmoid",)], [x1, x2], [0.0, 0.0], 0, "rescale")
    assert ref == pytest.approx(want, abs=1e-12)


def test_d6_softmax_adjustment_removes_shared_logit_term():
    """Logits W x + (u . x) 1: a term shared by all classes changes no softmax output, and the
    adjusted contributions C_c - mean_j C_j do not depend on it."""
    torch.manual_seed(0)
    W, u = torch.randn(4, 5, dtype=D), torch.randn(5, dtype=D)
    x = torch.randn(2, 5, dtype=D)

    def per_class(weight):
        model = nn.Sequential(nn.Linear(5, 4, bias=False)).double()
        with torch.no_grad():
            model[0].weight.copy_(weight)
        return torch.stack([xk.explain(model, x, c, "deeplift") for c in range(4)])

    plain, shifted = per_class(W), per_class(W + u)
    assert (plain - shifted).abs().max() > 0.1                       # the raw maps differ ...
    adj = deeplift_softmax_adjust(plain)
    assert torch.allclose(adj, deeplift_softmax_adjust(shifted))     # ... the adjusted ones do not
    assert torch.allclose(adj.sum(0), torch.zeros_like(x), atol=1e-12)
    dlogit = x @ W.T
    assert torch.allclose(adj.sum(-1), (dlogit - dlogit.mean(1, keepdim=True)).T)
    assert torch.allclose(deeplift_softmax_adjust(plain.movedim(0, 1), dim=1), adj.movedim(0, 1))


def test_softmax_adjust_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        deeplift_softmax_adjust(torch.ones(1, 3))
    with pytest.raises(TypeError):
        deeplift_softmax_adjust(torch.ones(2, 3, dtype=torch.long))


D7_F = [("relu",), ("linear", [[1.0, -1.0]], [-1.0]), ("relu",)]  # ReLU(ReLU(x1) - 1 - ReLU(x2))
D7_G = [("linear", [[1.0, 0.0], [0.0, 1.0]], [-1.0, 0.0]), ("relu",),  # ReLU(ReLU(x1-1) - ReLU(x2))
        ("linear", [[1.0, -1.0]], [0.0]), ("relu",)]
D7_X = torch.tensor([[3.0, 1.0]], dtype=D)


def test_d7_deeplift_is_not_implementation_invariant():
    """f and g compute the same function; at x = (3, 1), reference 0, Rescale gives (1.5, -0.5)
    for f and (2, -1) for g. RevealCancel gives (1.5, -0.5) for both (its Shapley split of
    ReLU(x1 - 1) - ReLU(x2) happens to restore the balance here)."""
    f, g = to_torch(D7_F), to_torch(D7_G)
    grid = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=D) * 3
    assert torch.allclose(f(grid), g(grid))
    want = {("rescale", "f"): [1.5, -0.5], ("rescale", "g"): [2.0, -1.0],
            ("reveal_cancel", "f"): [1.5, -0.5], ("reveal_cancel", "g"): [1.5, -0.5]}
    for (rule, name), expected in want.items():
        net = {"f": D7_F, "g": D7_G}[name]
        got = xk.explain(to_torch(net), D7_X, 0, "deeplift", rule=rule)[0].tolist()
        assert got == pytest.approx(expected, abs=1e-12), (rule, name)
        assert reference_deeplift(net, [3.0, 1.0], [0.0, 0.0], 0, rule) == pytest.approx(expected)


# ------------------------------------------------------------------ summation-to-delta, references


@pytest.mark.parametrize("rule", RULES)
def test_summation_to_delta_random_relu_nets(rule):
    for seed in range(5):
        model = to_torch(_random_net([4, 6, 5, 3], seed))
        g = torch.Generator().manual_seed(seed)
        x, x0 = torch.randn(4, 4, generator=g, dtype=D), torch.randn(4, 4, generator=g, dtype=D)
        target = torch.tensor([0, 1, 2, 1])
        attr = xk.explain(model, x, target, "deeplift", rule=rule, baseline=x0)
        assert _rel_err(attr, _delta(model, x, x0, target)) < 1e-6


@pytest.mark.parametrize("rule", RULES)
def test_matches_slow_reference_on_random_relu_nets(rule):
    """Dead ReLUs (x and x0 both below 0: dx = 0, while RevealCancel's parts are not) exercise the
    0.5 w rule; equal inputs (dx_i = 0) too."""
    for seed in range(4):
        net = _random_net([4, 6, 5, 3], seed + 10)
        g = torch.Generator().manual_seed(seed)
        x, x0 = torch.randn(3, 4, generator=g, dtype=D), torch.randn(3, 4, generator=g, dtype=D)
        x0[:, 0] = x[:, 0]
        target = torch.tensor([2, 0, 1])
        attr = xk.explain(to_torch(net), x, target, "deeplift", rule=rule, baseline=x0)
        for k in range(3):
            ref = reference_deeplift(net, x[k].tolist(), x0[k].tolist(), int(target[k]), rule)
            assert attr[k].tolist() == pytest.approx(ref, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("overlapping", [False, True])
def test_conv_maxpool_net_matches_unrolled_reference(rule, overlapping):
    """Conv2d, MaxPool2d (also overlapping windows) and Flatten against the per-neuron reference
    on the same net unrolled into dense matrices and index windows."""
    model = _small_vgg(seed=1, overlapping=overlapping)
    net = _unroll(model, (3, 6, 6))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 6, 6, generator=g, dtype=D)
    x0 = torch.randn(1, 3, 6, 6, generator=g, dtype=D)
    target = torch.tensor([1, 2])
    attr = deeplift_by_hand(model, x, x0, target, rule=rule)
    for k in range(2):
        ref = reference_deeplift(net, x[k].flatten().tolist(), x0[0].flatten().tolist(),
                                 int(target[k]), rule)
        assert attr[k].flatten().tolist() == pytest.approx(ref, rel=1e-8, abs=1e-12)
    assert _rel_err(attr, _delta(model, x, x0.expand_as(x), target)) < 1e-6


@pytest.fixture(scope="module")
def shapes_vgg():
    """The vgg16-shapes architecture (torchvision VGG class) in float64 with nonzero biases (with
    zero biases and a zero baseline every multiplier equals the gradient and the captum bug
    cannot show)."""
    model = _randomise_biases(shapes_architecture().double().eval())
    model.xaikit_spec = SHAPES_SPEC
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=D)
    return model, x, torch.tensor([1, 3])


@pytest.mark.parametrize("rule", RULES)
def test_summation_to_delta_on_shapes_vgg(shapes_vgg, rule):
    model, x, target = shapes_vgg
    attr = xk.explain(model, x, target, "deeplift", rule=rule, baseline="black")
    x0 = SHAPES_SPEC.low.to(D).expand_as(x)
    assert attr.shape == x.shape
    assert _rel_err(attr, _delta(model, x, x0, target)) < 1e-6


def test_captum_rescale_equals_hand_written_rescale_on_shapes_vgg(shapes_vgg):
    """The clone-separated captum run and the explicit walk agree, max-pooling included."""
    model, x, target = shapes_vgg
    x0 = torch.zeros_like(x)
    captum = xk.explain(model, x, target, "deeplift", rule="rescale")
    by_hand = deeplift_by_hand(explaining_copy(model), x, x0, target, rule="rescale")
    assert torch.allclose(captum, by_hand, rtol=1e-9, atol=1e-12 * captum.abs().max().item())


def test_captum_issue_1104_documented_and_repaired():
    """captum 0.9.0 DeepLift on ReLU -> MaxPool2d misses f(x) - f(x0); our clone-separated copy
    does not. If captum fixes the bug, the first assert fails: then drop the workaround."""
    from captum.attr import DeepLift

    model = _small_vgg(seed=2)
    g = torch.Generator().manual_seed(4)
    x, x0 = torch.randn(3, 3, 6, 6, generator=g, dtype=D), torch.zeros(3, 3, 6, 6, dtype=D)
    target = torch.tensor([0, 1, 2])
    delta = _delta(model, x, x0, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = DeepLift(model).attribute(x.clone(), x0, target=target).detach()
    assert _rel_err(raw, delta) > 1e-3                                   # captum alone: wrong
    fixed = xk.explain(model, x, target, "deeplift")
    assert _rel_err(fixed, delta) < 1e-10                                # with the clones: exact
    by_hand = deeplift_by_hand(model, x, x0, target, rule="rescale")
    assert torch.allclose(fixed, by_hand, atol=1e-12)


def test_rescale_with_zero_reference_and_no_bias_is_gradient_x_input():
    """Ancona et al. (2018): all reference activations are 0, so m = relu(z)/z = 1{z > 0}."""
    model = _small_vgg(seed=3)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.zeros_(m.bias)
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(3), dtype=D)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[:, 1].sum(), x)
    attr = xk.explain(model, x.detach(), 1, "deeplift")
    assert torch.allclose(attr, grad * x, atol=1e-12)


# --------------------------------------------------------------------------- API and side effects


@pytest.mark.parametrize("rule", RULES)
def test_batch_equals_single_calls(rule):
    model = _small_vgg(seed=5)
    x = torch.randn(3, 3, 6, 6, generator=torch.Generator().manual_seed(5), dtype=D)
    batch = xk.explain(model, x, [2, 0, 1], "deeplift", rule=rule, baseline=0.3)
    for k, t in enumerate([2, 0, 1]):
        single = xk.explain(model, x[k:k + 1], t, "deeplift", rule=rule, baseline=0.3)
        assert torch.allclose(batch[k:k + 1], single, rtol=1e-10, atol=1e-14)


def _snapshot(model):
    return ([(name, id(m), type(m), getattr(m, "inplace", None), m.training)
             for name, m in model.named_modules()],
            {name: (p.detach().clone(), p.requires_grad) for name, p in model.named_parameters()})


def test_callers_model_unchanged():
    model = _small_vgg(seed=6)                   # inplace ReLUs and requires_grad must survive
    model[0].weight.requires_grad_(True)
    model[2].weight.requires_grad_(False)
    before = _snapshot(model)
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(6), dtype=D)
    for rule in RULES:
        for baseline in (None, 0.5, "blur"):
            xk.explain(model, x, [0, 1], "deeplift", rule=rule, baseline=baseline)
    after = _snapshot(model)
    assert before[0] == after[0]
    for name, (value, requires_grad) in before[1].items():
        assert torch.equal(value, after[1][name][0]) and requires_grad == after[1][name][1], name
    for m in model.modules():
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                    or m._backward_pre_hooks), m
        assert not any(hasattr(m, a) for a in ("input", "output", "input_ref")), m
    assert model[0].weight.grad is None


def test_baselines():
    model = _small_vgg(seed=7)
    model.xaikit_spec = SHAPES_SPEC.__class__("toy", 6, 6, (0.5,) * 3, (0.25,) * 3, ("a",) * 3)
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(7), dtype=D)
    zeros = resolve_baseline(model, x, None)
    assert torch.equal(zeros, torch.zeros_like(x))
    assert torch.equal(resolve_baseline(model, x, "zero"), zeros)
    assert torch.equal(resolve_baseline(model, x, 0.5), torch.full_like(x, 0.5))
    black = resolve_baseline(model, x, "black")
    assert torch.equal(black[:, :, 0, 0], torch.full((2, 3), -2.0, dtype=D))    # (0 - 0.5) / 0.25
    blur = resolve_baseline(model, x, "blur")
    big = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(8), dtype=D)
    big_blur = resolve_baseline(model, big, "blur")                # sigma = 0.05 * 64 = 3.2
    assert big_blur.shape == big.shape and big_blur.std() < 0.2 * big.std()
    assert big_blur.mean().item() == pytest.approx(big.mean().item(), abs=0.02)
    channel = torch.tensor([0.1, -0.2, 0.3], dtype=D).view(1, 3, 1, 1)
    for baseline, x0 in [("black", black), ("blur", blur), (channel, channel.expand_as(x))]:
        attr = xk.explain(model, x, 1, "deeplift", baseline=baseline)
        assert _rel_err(attr, _delta(model, x, x0, 1)) < 1e-9
        assert torch.allclose(attr, xk.explain(model, x, 1, "deeplift", baseline=x0), atol=1e-14)


def test_bad_options():
    model, x = _small_vgg(), torch.ones(1, 3, 6, 6, dtype=D)
    for rule in ("gradient", "Rescale", None):
        with pytest.raises(ValueError, match="rule"):
            xk.explain(model, x, 0, "deeplift", rule=rule)
    with pytest.raises(ValueError, match="baseline"):
        xk.explain(model, x, 0, "deeplift", baseline="grey")
    with pytest.raises(ValueError, match="broadcast"):
        xk.explain(model, x, 0, "deeplift", baseline=torch.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        xk.explain(model, x, 0, "deeplift", baseline=float("nan"))
    with pytest.raises(TypeError, match="ModelSpec"):
        xk.explain(model, x, 0, "deeplift", baseline="black")          # no xaikit_spec
    with pytest.raises(TypeError, match="baseline"):
        xk.explain(model, x, 0, "deeplift", baseline=[0.0])
    with pytest.raises(ValueError, match="blur"):
        xk.explain(to_torch(D7_F), D7_X, 0, "deeplift", baseline="blur")
    with pytest.raises(TypeError, match="steps"):
        xk.explain(model, x, 0, "deeplift", steps=4)


def test_reveal_cancel_refuses_a_forward_it_cannot_follow():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2).double()

        def forward(self, x):
            return self.fc(x) + x

    with pytest.raises(ValueError, match="outside its modules between fc and the model's output"):
        xk.explain(Skip(), D7_X, 0, "deeplift", rule="reveal_cancel")
    with pytest.raises(ValueError, match="outside its modules"):    # captum would skip it too
        xk.explain(Skip(), D7_X, 0, "deeplift")


# ------------------------------------------------------- D7 table with the other helpers' methods


def test_d7_table_integrated_gradients_and_lrp():
    """IG gives (1.5, -0.5) for f and g; LRP-0 with the bias out of the denominator gives the
    DeepLIFT (Rescale) numbers: (1.5, -0.5) for f, (2, -1) for g."""
    f, g = to_torch(D7_F), to_torch(D7_G)
    for model in (f, g):
        ig = xk.explain(model, D7_X, 0, "integrated_gradients", steps=256)[0].tolist()
        assert ig == pytest.approx([1.5, -0.5], abs=1e-3)
    for model, want in ((f, [1.5, -0.5]), (g, [2.0, -1.0])):
        lrp = xk.explain(model, D7_X, 0, "lrp", rule="0", bias=False)[0].tolist()
        assert lrp == pytest.approx(want, abs=1e-6)     # LRP's stabiliser: ~1e-9 relative
        dl = xk.explain(model, D7_X, 0, "deeplift")[0].tolist()
        assert lrp == pytest.approx(dl, abs=1e-6)

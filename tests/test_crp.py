"""Concept Relevance Propagation (xaikit.methods.crp) against its definition, LRP and zennit.

Three independent references: (1) linearity: the CRP maps of a partition of a layer's channels
add up to the LRP map of :func:`xaikit.methods.lrp.lrp` (and all channels give that map
exactly); (2) the definition written out in matrix form on two-layer networks (relevance at the
hidden layer zeroed outside the chosen channels, then LRP-0/epsilon by hand); (3) zennit 0.5.1's
LRP with a tensor hook that multiplies the gradient at the layer's output by the channel mask
(what zennit-crp's ``CondAttribution`` does; zennit-crp itself pins torch < 2). Float64 on tiny
networks; the shipped ``vgg16-shapes`` model in float32.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import zennit.rules as zr
from reference_gradients import conv_net, single_thread  # noqa: F401  (one thread: tiny models)
from reference_lrp import STAB
from torch import nn
from zennit.attribution import Gradient
from zennit.composites import NameMapComposite

import xaikit as xk
import xaikit.methods.crp  # noqa: F401  (registers "crp" until xaikit.methods imports it)
from xaikit.methods import method_info
from xaikit.methods.crp import crp
from xaikit.methods.lrp import lrp
from xaikit.methods.lrp_composites import vgg16_composite

TOL = 1e-10        # float64, same formula computed two ways (as tests/test_lrp.py)
SUM_TOL = 1e-12    # float64, sum over a partition vs LRP: only summation order differs
SUM_TOL_32 = 1e-5  # float32 on VGG-16 (features.28, features.14)
LOW = torch.full((1, 3, 1, 1), -1.5, dtype=torch.float64)
HIGH = torch.full((1, 3, 1, 1), 2.0, dtype=torch.float64)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Maximal relative difference of ``a`` to the reference ``b``."""
    return float((a - b).abs().max() / b.abs().max())


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules())


# ----------------------------------------------------------------------------- fixtures
def vgg_like(seed: int = 0) -> nn.Sequential:
    """A VGG in miniature on (N, 3, 16, 16), float64, eval: features (conv blocks, three
    max-pools, a conv after the third so the vgg16 composite uses zb, gamma and epsilon),
    classifier (dense-relu-dense, 4 classes); module names as torchvision's VGG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(12, 12, 3, padding=1), nn.ReLU())
        classifier = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 4))
        model = nn.Sequential()
        model.add_module("features", features)
        model.add_module("classifier", classifier)
        for m in model.modules():   # He initialisation: activations of order 1 throughout
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.uniform_(m.bias, -0.1, 0.1)
    return model.double().eval().requires_grad_(False)


def box_inputs(n: int = 2, seed: int = 1) -> torch.Tensor:
    """Inputs inside the z^B box [LOW, HIGH]."""
    g = torch.Generator().manual_seed(seed)
    return LOW + (HIGH - LOW) * torch.rand(n, 3, 16, 16, generator=g, dtype=torch.float64)


def channels_at(model: nn.Module, x: torch.Tensor, layer: str) -> int:
    """Size of dimension 1 of ``layer``'s output (a plain forward pass)."""
    shapes = []
    handle = model.get_submodule(layer).register_forward_hook(
        lambda m, i, o: shapes.append(o.shape))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return shapes[0][1]


def random_partition(k: int, groups: int, seed: int = 0) -> list[list[int]]:
    """``range(k)`` shuffled and cut into ``groups`` non-empty groups of random sizes."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(k, generator=g).tolist()
    cuts = sorted((torch.randperm(k - 1, generator=g)[:groups - 1] + 1).tolist())
    parts = [order[a:b] for a, b in zip([0] + cuts, cuts + [k])]
    assert sorted(sum(parts, [])) == list(range(k)) and all(parts)
    return parts


# ------------------------------------------------------------- (1) partitions sum to LRP
OPTIONS = [
    dict(composite="vgg16", low=LOW, high=HIGH),
    dict(rule="epsilon", epsilon=0.1),
    dict(rule="gamma", maxpool="average"),
    dict(rule="alpha1beta0", bias=False),
    dict(rule="flat"),
    dict(composite={"features.0": "w2"}, rule="gamma"),
]
LAYERS = ["features.0", "features.2", "features.4", "features.9", "features.11", "features",
          "classifier.1", "classifier.2"]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o))[:24])
@pytest.mark.parametrize("layer", LAYERS)
def test_partition_of_channels_sums_to_lrp(layer, options):
    model, x = vgg_like(), box_inputs()
    t = model(x).argmax(1)
    full = lrp(model, x, t, **options)
    k = channels_at(model, x, layer)
    parts = [crp(model, x, t, layer=layer, channels=group, **options)
             for group in random_partition(k, 3, seed=k)]
    assert sum(int(p.abs().max() > 0) for p in parts) >= 2   # the split is not trivial
    assert max(rel(p, full) for p in parts) > 0.01
    assert rel(sum(parts), full) < SUM_TOL
    assert torch.equal(crp(model, x, t, layer=layer, channels=range(k), **options), full)


def test_every_single_channel_together_is_lrp():
    model, x = vgg_like(), box_inputs()
    t = model(x).argmax(1)
    full = lrp(model, x, t, low=LOW, high=HIGH)
    singles = [crp(model, x, t, layer="features.8", channels=c, low=LOW, high=HIGH)
               for c in range(12)]
    assert rel(sum(singles), full) < SUM_TOL
    assert sum(int(s.abs().max() > 0) for s in singles) >= 6


@pytest.mark.parametrize("layer", ["features.28", "features.14"])
def test_partition_sums_to_lrp_on_vgg16_shapes(shapes_model, layer):
    examples = xk.example_batch(shapes_model, n=2)
    x, t = examples.x, examples.labels
    full = xk.explain(shapes_model, x, t, "lrp")
    k = shapes_model.get_submodule(layer).out_channels
    parts = [xk.explain(shapes_model, x, t, "crp", layer=layer, channels=group)
             for group in random_partition(k, 3, seed=k)]
    assert all(p.dtype == torch.float32 and p.abs().max() > 0 for p in parts)
    assert max(rel(p, full) for p in parts) > 0.01
    assert rel(sum(parts), full) < SUM_TOL_32
    everything = xk.explain(shapes_model, x, t, "crp", layer=layer, channels=range(k))
    assert torch.equal(everything, full)


# ------------------------------------------------------------- (2) from the definition
def stab(z: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.where(z >= 0, z + eps, z - eps)


def crp_by_hand(W1, b1, W2, b2, x, target, keep, eps):
    """Two layers ``z1 = x W1 + b1``, ``a1 = ReLU(z1)``, ``z2 = a1 W2 + b2`` (``W`` of shape
    (inputs, outputs)), one sample at a time, the textbook rule
    ``R_i = sum_j Z_ij / (sum_i Z_ij + b_j + eps sign) R_j`` with ``Z_ij = a_i w_ij``:
    ``R2 = e_t z2_t``, ``R1`` its redistribution (the ReLU passes it), times the 0/1 ``keep``
    of the chosen channels, then ``R0``."""
    rows = []
    for xi, t in zip(x.reshape(len(x), -1), target.tolist()):
        z1 = xi @ W1 + b1
        a1 = z1.clamp(min=0)
        z2 = a1 @ W2 + b2
        R2 = torch.zeros_like(z2)
        R2[t] = z2[t]
        Z2 = a1[:, None] * W2
        R1 = (Z2 / stab(Z2.sum(0) + b2, eps)) @ R2
        R1 = R1 * keep
        Z1 = xi[:, None] * W1
        rows.append((Z1 / stab(Z1.sum(0) + b1, eps)) @ R1)
    return torch.stack(rows).view_as(x)


@pytest.mark.parametrize("rule, eps", [("0", STAB), ("epsilon", 0.25)])
@pytest.mark.parametrize("layer", ["0", "1"])   # the dense layer or its ReLU: the same
def test_dense_net_matches_the_definition(rule, eps, layer):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        model = nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 3))
    model = model.double().eval().requires_grad_(False)
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    t = torch.tensor([0, 1, 2])
    W1, b1, W2, b2 = model[0].weight.T, model[0].bias, model[2].weight.T, model[2].bias
    for channels in ([1, 3, 4], [5], [0, 2, 6]):
        keep = torch.zeros(7, dtype=torch.float64)
        keep[channels] = 1
        ref = crp_by_hand(W1, b1, W2, b2, x, t, keep, eps)
        ours = crp(model, x, t, layer=layer, channels=channels, rule=rule)
        assert ref.abs().max() > 0 and rel(ours, ref) < TOL


def conv_matrix(conv: nn.Conv2d, shape: tuple[int, ...]) -> torch.Tensor:
    """The convolution without bias as an (inputs, outputs) matrix: its responses to the basis
    vectors (outputs flattened channel-major, ``k * h * w + p``)."""
    d = int(np.prod(shape))
    basis = torch.eye(d, dtype=torch.float64).view(d, *shape)
    return F.conv2d(basis, conv.weight, None, conv.stride, conv.padding).reshape(d, -1)


@pytest.mark.parametrize("rule, eps", [("0", STAB), ("epsilon", 0.25)])
@pytest.mark.parametrize("layer", ["0", "1"])
def test_conv_net_matches_the_definition(rule, eps, layer):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                              nn.Linear(4 * 5 * 5, 3))
    model = model.double().eval().requires_grad_(False)
    x = torch.randn(2, 2, 5, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    t = torch.tensor([2, 0])
    W1 = conv_matrix(model[0], (2, 5, 5))                     # (50, 100)
    b1 = model[0].bias.repeat_interleave(25)                  # bias of channel k on its 25 maps
    W2, b2 = model[3].weight.T, model[3].bias
    for channels in ([2], [0, 3]):
        keep = torch.zeros(4, 25, dtype=torch.float64)
        keep[channels] = 1                                    # whole feature maps
        ref = crp_by_hand(W1, b1, W2, b2, x, t, keep.flatten(), eps)
        ours = crp(model, x, t, layer=layer, channels=channels, rule=rule)
        assert ref.abs().max() > 0 and rel(ours, ref) < TOL


# ------------------------------------------------------------- (3) zennit with a masked gradient
ZENNIT = {   # as tests/test_lrp.py: xaikit's rules as zennit 0.5.1 rules
    "0": lambda: zr.Epsilon(STAB),
    "epsilon": lambda: zr.Epsilon(0.25),
    "gamma": lambda: zr.Gamma(0.25, stabilizer=STAB),
    "zb": lambda: zr.ZBox(LOW, HIGH, stabilizer=STAB),
}


def zennit_crp(model: nn.Module, x: torch.Tensor, target: torch.Tensor, rules: dict[str, str],
               layer: str, channel: int) -> torch.Tensor:
    """zennit's Gradient attributor with the rules of ``rules`` (ReLU: Pass) and a tensor hook
    on ``layer``'s output multiplying the gradient by the one-hot mask of ``channel``."""
    name_map = [((name,), ZENNIT[rule]()) for name, rule in rules.items()]
    name_map.append((tuple(n for n, m in model.named_modules() if isinstance(m, nn.ReLU)),
                     zr.Pass()))

    def mask(module, inputs, output):
        keep = torch.zeros(output.shape[1], dtype=output.dtype)
        keep[channel] = 1
        keep = keep.view(1, -1, *[1] * (output.dim() - 2))
        output.register_hook(lambda grad: grad * keep)

    onehot = F.one_hot(target, 4).to(x)
    handle = model.get_submodule(layer).register_forward_hook(mask)
    try:
        with Gradient(model, NameMapComposite(name_map)) as attributor:
            _, attr = attributor(x.clone().requires_grad_(True), lambda out: onehot * out.detach())
    finally:
        handle.remove()
    return attr


@pytest.mark.parametrize("layer, channel", [("features.2", 5), ("features.5", 3),
                                            ("features.11", 7), ("features.12", 2),
                                            ("classifier.1", 9)])
def test_one_channel_matches_zennit_with_a_masked_gradient(layer, channel):
    model, x = vgg_like(), box_inputs()
    t = model(x).argmax(1)
    rules = vgg16_composite(model)
    assert set(rules.values()) == {"zb", "gamma", "epsilon", "0"}
    ours = crp(model, x, t, layer=layer, channels=[channel], composite="vgg16", low=LOW,
               high=HIGH)
    theirs = zennit_crp(model, x, t, rules, layer, channel)
    assert theirs.abs().max() > 0 and rel(ours, theirs) < TOL
    full = lrp(model, x, t, low=LOW, high=HIGH)
    assert rel(ours, full) > 0.01


# ----------------------------------------------------------------------------- (4) bad options
BAD = [
    (dict(layer=3, channels=[0]), TypeError, "layer must be a module name"),
    (dict(layer="features.3", channels=[0]), ValueError,
     "no layer named 'features.3'; the model's Conv2d and Linear layers: 0, 3, 6"),
    (dict(layer="", channels=[0]), ValueError, r"not the model itself \(''\)"),
    (dict(channels=[0]), TypeError, "missing 1 required keyword-only argument: 'layer'"),
    (dict(layer="3"), TypeError, "missing 1 required keyword-only argument: 'channels'"),
    (dict(layer="3", channels=[]), ValueError, "at least one channel"),
    (dict(layer="3", channels=[1, 2, 1]), ValueError, r"channels must be distinct, got \[1\]"),
    (dict(layer="3", channels=[-1]), ValueError, r"channels\[0\] must be an int >= 0, got -1"),
    (dict(layer="3", channels=-2), ValueError, "channels must be an int >= 0, got -2"),
    (dict(layer="3", channels=5), ValueError,
     r"channels \[5\] out of range for layer 3, whose output \(1, 5, 4, 4\) has 5 channels"),
    (dict(layer="0", channels=[0, 4, 9]), ValueError, r"channels \[4, 9\] out of range for layer 0"),
    (dict(layer="3", channels=1.0), TypeError, "channels must be an int or a sequence of ints"),
    (dict(layer="3", channels=True), TypeError, "channels must be an int or a sequence of ints"),
    (dict(layer="3", channels=None), TypeError, "channels must be an int or a sequence of ints"),
    (dict(layer="3", channels="0"), TypeError, "channels must be an int or a sequence of ints"),
    (dict(layer="3", channels=[0.0]), TypeError, r"channels\[0\] must be an int, got 0.0"),
    (dict(layer="3", channels=[False]), TypeError, r"channels\[0\] must be an int"),
    (dict(layer="3", channels=[[0, 1]]), TypeError, r"channels\[0\] must be an int"),
    (dict(layer="3", channels=torch.tensor([0.5])), TypeError, "dtype torch.float32"),
    (dict(layer="3", channels=torch.tensor([[0]])), ValueError, r"1-D, got shape \(1, 1\)"),
    (dict(layer="3", channels=[0], chanels=[1]), TypeError, "unknown option.*chanels.*'crp'"),
    (dict(layer="3", channels=[0], rule="epsilon", epsilon=-1.0), ValueError,
     "epsilon must be >= 0"),
    (dict(layer="3", channels=[0], rule="0", maxpool="max"), ValueError, "maxpool must be one of"),
    (dict(layer="3", channels=[0], rule="0", bias="no"), TypeError, "bias must be True or False"),
    (dict(layer="3", channels=[0], rule="gama"), ValueError, "unknown LRP rule 'gama'"),
]


@pytest.mark.parametrize("options, error, match", BAD)
def test_bad_options_give_clear_errors_and_leave_no_hooks(options, error, match):
    net = conv_net()   # 0 conv(3->4), 1 relu, 2 pool, 3 conv(4->5), 4 relu, 5 flatten, 6 linear
    with pytest.raises(error, match=match):
        xk.explain(net, torch.zeros(1, 3, 8, 8, dtype=torch.float64), 0, "crp",
                   **{"low": -5.0, "high": 5.0, **options})
    assert _hooks(net) == 0


def test_layers_without_channels_or_unused_are_refused():
    flat = nn.Sequential(nn.Linear(4, 3), nn.Flatten(0, 1)).double().eval()
    x = torch.ones(2, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"layer 1 must output \(N, K, \.\.\.\).*got \(6,\)"):
        crp(flat, x, torch.tensor([0, 1]), layer="1", channels=[0], rule="0")
    assert _hooks(flat) == 0

    class Spare(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.spare = conv_net(), nn.Conv2d(3, 2, 1).double()

        def forward(self, inp):
            return self.body(inp)

    model = Spare().eval()
    with pytest.raises(ValueError, match="layer spare is not called in the model's forward"):
        crp(model, torch.zeros(1, 3, 8, 8, dtype=torch.float64), torch.tensor([0]),
            layer="spare", channels=[0], rule="0")
    assert _hooks(model) == 0


@pytest.mark.parametrize("channels, as_list", [
    (1, [1]), (np.int64(1), [1]), (torch.tensor(1), [1]), ([1, 3], [1, 3]), ((3, 1), [1, 3]),
    (range(1, 4, 2), [1, 3]), ({1, 3}, [1, 3]), (np.array([1, 3]), [1, 3]),
    (torch.tensor([1, 3]), [1, 3])])
def test_channel_forms(channels, as_list):
    net, x = conv_net(), box_inputs(2)[:, :, :8, :8]
    ours = xk.explain(net, x, [0, 1], "crp", layer="3", channels=channels, rule="0")
    assert torch.equal(ours, xk.explain(net, x, [0, 1], "crp", layer="3", channels=as_list,
                                        rule="0"))


# --------------------------------------------------------------- (5) all channels; the API
def test_all_channels_equal_lrp_exactly():
    net, x = conv_net(), box_inputs(3)[:, :, :8, :8]
    t = [0, 1, 2]
    for layer, k in (("0", 4), ("1", 4), ("2", 4), ("3", 5), ("4", 5), ("5", 80)):
        for options in (dict(rule="0"), dict(rule="gamma", maxpool="average"),
                        dict(low=LOW, high=HIGH)):
            full = xk.explain(net, x, t, "lrp", **options)
            assert torch.equal(xk.explain(net, x, t, "crp", layer=layer, channels=range(k),
                                          **options), full)


def test_registered_with_the_options_and_defaults_of_lrp():
    info = method_info("crp")
    assert info.propagation and info.gradients and not info.control
    assert info.options == ("layer", "channels") + method_info("lrp").options
    ours, theirs = inspect.signature(crp).parameters, inspect.signature(lrp).parameters
    assert all(ours[name].default == theirs[name].default for name in method_info("lrp").options)
    assert ours["layer"].default is ours["channels"].default is inspect.Parameter.empty


def test_batch_equals_single_calls_and_the_model_is_left_alone():
    net, x = conv_net(), box_inputs(3)[:, :, :8, :8]
    for m in net:
        if isinstance(m, nn.ReLU):
            m.inplace = True
    state = {k: v.clone() for k, v in net.state_dict().items()}
    batch = xk.explain(net, x, [2, 0, 1], "crp", layer="3", channels=[1, 4], rule="epsilon")
    singles = torch.cat([xk.explain(net, x[i:i + 1], t, "crp", layer="3", channels=[1, 4],
                                    rule="epsilon") for i, t in enumerate([2, 0, 1])])
    assert batch.abs().max() > 0 and rel(batch, singles) < 1e-12
    assert not batch.requires_grad and batch.grad_fn is None
    assert _hooks(net) == 0 and all(m.inplace for m in net if isinstance(m, nn.ReLU))
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_batchnorm_is_folded_and_its_name_conditions_the_folded_convolution():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.Flatten(),
                              nn.Linear(5 * 6 * 6, 3)).double()
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        nn.init.uniform_(model[1].weight, 0.5, 1.5)
    model.eval()
    fused = nn.Sequential(torch.nn.utils.fusion.fuse_conv_bn_eval(model[0], model[1]),
                          nn.ReLU(), nn.Flatten(), model[4]).eval()
    x, t = box_inputs(2)[:, :, :8, :8], torch.tensor([0, 2])
    expected = crp(fused, x, t, layer="0", channels=[1, 2], rule="gamma")
    for layer in ("0", "1", "2"):
        ours = crp(model, x, t, layer=layer, channels=[1, 2], rule="gamma")
        assert rel(ours, expected) < TOL
    parts = [crp(model, x, t, layer="1", channels=group, rule="gamma") for group in ([0, 3], [1, 2, 4])]
    assert rel(sum(parts), lrp(model, x, t, rule="gamma")) < SUM_TOL
    assert isinstance(model[1], nn.BatchNorm2d) and _hooks(model) == 0

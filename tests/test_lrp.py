"""LRP (xaikit.methods.lrp, xaikit.methods.lrp_scratch) against the matrix-form reference and zennit.

All comparisons run in float64 on tiny networks. Tolerance: the maximal relative difference
``max|attr - ref| / max|ref|`` is below ``TOL = 1e-10`` wherever two implementations compute
the same formula (they differ only in summation order and, versus zennit, the -0.0 corner of
the stabiliser). Conservation is checked to ``CONSERVE = 1e-6`` relative: every denominator
carries the stabiliser 1e-9, which keeps ``1e-9 / |z_j|`` of a neuron's relevance, and the
smallest pre-activations of these random nets are about 1e-3 (a bias absorbs ~1e-1).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import zennit.rules as zr
from reference_lrp import STAB, reference_lrp
from torch import nn
from zennit.attribution import Gradient
from zennit.composites import NameMapComposite

from xaikit.methods.lrp import lrp
from xaikit.methods.lrp_composites import vgg16_composite
from xaikit.methods.lrp_scratch import layers_of, lrp_scratch, vgg16_rules
from xaikit.models import SHAPES_SPEC, shapes_architecture

TOL = 1e-10
CONSERVE = 1e-6
RULES = ("0", "epsilon", "gamma", "alpha1beta0", "flat", "w2")
PARAM_LAYERS = ("0", "3", "6", "8")          # the Linear/Conv2d children of tiny_cnn
LOW, HIGH = torch.full((1, 2, 1, 1), -1.5, dtype=torch.float64), torch.full((1, 2, 1, 1), 2.0,
                                                                             dtype=torch.float64)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Maximal relative difference of ``a`` to the reference ``b``."""
    return float((a - b).abs().max() / b.abs().max())


def tiny_cnn(seed: int = 0, bias: bool = True) -> nn.Sequential:
    """conv-relu-maxpool-conv-relu-flatten-dense-relu-dense on (N, 2, 6, 6), float64, eval."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                              nn.Linear(36, 5), nn.ReLU(), nn.Linear(5, 3))
        for name in PARAM_LAYERS:
            b = model.get_submodule(name).bias
            nn.init.uniform_(b, -0.2, 0.2) if bias else nn.init.zeros_(b)
    return model.double().eval().requires_grad_(False)


def inputs(n: int = 2, signed: bool = False, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, 6, 6, generator=g, dtype=torch.float64)
    return 3 * x - 1.5 if signed else x


def top_target(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The argmax class per sample; its logit must be positive (a fixed, checked fixture)."""
    logits = model(x)
    t = logits.argmax(1)
    assert (logits[torch.arange(len(x)), t] > 0).all()
    return t


ZENNIT = {
    "0": lambda o: zr.Epsilon(STAB, zero_params=o["zp"]),
    "epsilon": lambda o: zr.Epsilon(o["epsilon"], zero_params=o["zp"]),
    "gamma": lambda o: zr.Gamma(o["gamma"], stabilizer=STAB, zero_params=o["zp"]),
    "alpha1beta0": lambda o: zr.AlphaBeta(1.0, 0.0, stabilizer=STAB, zero_params=o["zp"]),
    "flat": lambda o: zr.Flat(stabilizer=STAB),
    "w2": lambda o: zr.WSquare(stabilizer=STAB, zero_params=["bias"]),
    "zb": lambda o: zr.ZBox(o["low"], o["high"], stabilizer=STAB),
}


def zennit_lrp(model, x, target, rules: dict[str, str], *, epsilon=0.25, gamma=0.25,
               bias=True, low=None, high=None) -> torch.Tensor:
    """zennit with a hand-built NameMapComposite (ReLU: Pass, AvgPool: Norm), logit convention."""
    o = {"epsilon": epsilon, "gamma": gamma, "zp": None if bias else ["bias"], "low": low,
         "high": high}
    name_map = [((name,), ZENNIT[rule](o)) for name, rule in rules.items()]
    name_map.append((tuple(n for n, m in model.named_modules() if isinstance(m, nn.ReLU)),
                     zr.Pass()))
    name_map.append((tuple(n for n, m in model.named_modules()
                           if isinstance(m, nn.AdaptiveAvgPool2d)), zr.Norm(STAB)))
    logits = model(x)
    onehot = F.one_hot(target, logits.shape[1]).to(x)
    with Gradient(model, NameMapComposite(name_map)) as attributor:
        _, attr = attributor(x.clone().requires_grad_(True), lambda out: onehot * out.detach())
    return attr


def reference(model, x, target, rules, **options) -> torch.Tensor:
    return torch.stack([reference_lrp(model, xi, int(ti), rules, **options)
                        for xi, ti in zip(x, target)])


@pytest.mark.parametrize("rule", RULES)
def test_rule_matches_reference_scratch_and_zennit(rule):
    model, x = tiny_cnn(), inputs()
    t = top_target(model, x)
    ours = lrp(model, x, t, rule=rule)
    ref = reference(model, x, t, dict.fromkeys(PARAM_LAYERS, rule))
    assert ref.abs().max() > 0
    assert rel(ours, ref) < TOL
    assert rel(lrp_scratch(layers_of(model), x, t, rule).R[0], ref) < TOL
    assert rel(zennit_lrp(model, x, t, dict.fromkeys(PARAM_LAYERS, rule)), ref) < TOL


@pytest.mark.parametrize("rule", ("gamma", "alpha1beta0"))
def test_signed_input_layer_uses_generalised_rules(rule):
    """On signed pixels xaikit follows zennit's generalised gamma / z+ (and the reference);
    the textbook four steps (lrp_scratch, meant for a >= 0) give a different answer there."""
    model, x = tiny_cnn(), inputs(signed=True)
    t = top_target(model, x)
    ours = lrp(model, x, t, rule=rule)
    ref = reference(model, x, t, dict.fromkeys(PARAM_LAYERS, rule))
    assert rel(ours, ref) < TOL
    assert rel(zennit_lrp(model, x, t, dict.fromkeys(PARAM_LAYERS, rule)), ref) < TOL
    assert rel(lrp_scratch(layers_of(model), x, t, rule).R[0], ref) > 1e-3


def test_gamma_on_negative_outputs_uses_w_plus_gamma_w_minus():
    """Relevance on a negative pre-activation (flat above hands it to inactive ReLUs) goes
    through the generalised rule's second branch, w + gamma w^- and b + gamma b^-."""
    model, x = tiny_cnn(), inputs()
    t = top_target(model, x)
    assert (model[:7](x) < 0).any()
    rules = {"0": "0", "3": "0", "6": "gamma", "8": "flat"}
    ours = lrp(model, x, t, composite=rules)
    ref = reference(model, x, t, rules)
    assert rel(ours, ref) < TOL
    assert rel(zennit_lrp(model, x, t, rules), ref) < TOL
    textbook = lrp_scratch(layers_of(model), x, t, {6: "gamma", 8: "flat"}).R[0]
    assert rel(textbook, ref) > 1e-3


def test_zb_first_layer_matches_reference_scratch_and_zennit():
    model, x = tiny_cnn(), inputs(signed=True)
    t = top_target(model, x)
    rules = {"0": "zb", "3": "gamma", "6": "epsilon", "8": "0"}
    ours = lrp(model, x, t, composite=rules, low=LOW, high=HIGH)
    ref = reference(model, x, t, rules, low=LOW, high=HIGH)
    assert rel(ours, ref) < TOL
    scratch = lrp_scratch(layers_of(model), x, t, {0: "zb", 3: "gamma", 6: "epsilon"},
                          low=LOW, high=HIGH)
    assert rel(scratch.R[0], ref) < TOL
    assert rel(zennit_lrp(model, x, t, rules, low=LOW, high=HIGH), ref) < TOL


def test_lrp0_equals_gradient_times_input_with_biases():
    model, x = tiny_cnn(bias=True), inputs(signed=True)
    t = top_target(model, x)
    leaf = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(leaf)[torch.arange(len(x)), t].sum(), leaf)
    assert rel(lrp(model, x, t, rule="0"), grad * x) < 1e-7  # 1e-9 stabiliser / |z|


@pytest.mark.parametrize("rule", ("0", "epsilon", "gamma", "alpha1beta0", "flat", "w2"))
def test_conservation_on_bias_free_net(rule):
    """Exact for 0, gamma, alpha1beta0, flat, w2; epsilon with eps = 1e-12 (tiny) too."""
    model, x = tiny_cnn(bias=False), inputs(signed=True)
    t = top_target(model, x)
    logit = model(x)[torch.arange(len(x)), t]
    attr = lrp(model, x, t, rule=rule, epsilon=1e-12)
    assert torch.allclose(attr.sum((1, 2, 3)), logit, rtol=CONSERVE, atol=0)
    sums = lrp_scratch(layers_of(model), x, t, rule, epsilon=1e-12).sums()
    assert torch.allclose(sums, logit.expand_as(sums), rtol=CONSERVE, atol=0)


def test_scratch_epsilon_from_z_per_layer_matches_reference():
    """epsilon as a function of z: the tutorial's 0.25 std(z), per layer and sample."""
    model, x = tiny_cnn(), inputs(3)
    t = top_target(model, x)
    layers = layers_of(model)

    def per_sample(z):
        return 0.25 * z.flatten(1).std(dim=1).view(-1, *[1] * (z.dim() - 1))

    std_based = lrp_scratch(layers, x, t, "epsilon", epsilon=per_sample).R[0]
    ref = reference(model, x, t, dict.fromkeys(PARAM_LAYERS, "epsilon"),
                    epsilon=lambda z: 0.25 * float(z.std()))
    assert rel(std_based, ref) < TOL
    absolute = lrp_scratch(layers, x, t, "epsilon", epsilon=0.25).R[0]
    assert rel(std_based, absolute) > 1e-3
    constant = lrp_scratch(layers, x, t, "epsilon", epsilon=lambda z: 0.25).R[0]
    assert rel(constant, absolute) < TOL


def test_epsilon_absorbs_relevance_and_biases_break_conservation():
    x = inputs(signed=True)
    model = tiny_cnn(bias=False)
    t = top_target(model, x)
    logit = model(x)[torch.arange(len(x)), t]
    assert (lrp(model, x, t, rule="epsilon", epsilon=0.25).sum((1, 2, 3)).abs()
            < 0.99 * logit.abs()).all()
    biased = tiny_cnn(bias=True)
    t = top_target(biased, x)
    gap = lrp(biased, x, t, rule="0").sum((1, 2, 3)) - biased(x)[torch.arange(len(x)), t]
    assert gap.abs().max() > 1e-3
    # w2 and flat never use the bias, so they conserve even here
    w2 = lrp(biased, x, t, rule="w2").sum((1, 2, 3))
    assert torch.allclose(w2, biased(x)[torch.arange(len(x)), t], rtol=CONSERVE, atol=0)


def test_alpha1beta0_conservation_proof_layer_by_layer():
    """Tutorial slide: sum_i R_i = sum_j (sum_i a_i w_ij^+ / sum_i a_i w_ij^+) R_j = sum_j R_j.
    Numerically each dense layer keeps exactly sum_j (b_j^+ + s) / (z_j^+ + b_j^+ + s) R_j
    (z_j^+ = sum_i (a_i w_ij)^+, s the 1e-9 stabiliser): only s without biases."""
    x = inputs()
    for bias in (False, True):
        model = tiny_cnn(bias=bias)
        layers = layers_of(model)
        trace = lrp_scratch(layers, x, top_target(model, x), "alpha1beta0")
        for l in (6, 8):
            lin, a, R = layers[l], trace.a[l], trace.R[l + 1]
            zp = (a[:, None, :] * lin.weight).clamp(min=0).sum(2)
            bp = lin.bias.clamp(min=0)
            expected = ((bp + STAB) / (zp + bp + STAB) * R).sum(1)
            assert torch.allclose(trace.absorbed()[l], expected, rtol=1e-6, atol=1e-18)
        ratio = trace.absorbed().abs().max() / trace.sums()[-1].abs().max()
        assert (ratio > 1e-3) if bias else (ratio < CONSERVE)


def _shapes_model() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = shapes_architecture().double().eval().requires_grad_(False)
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.uniform_(m.bias, -0.01, 0.01)
    return model


def test_vgg16_composite_layer_table():
    rules = vgg16_composite(shapes_architecture())
    gamma = [f"features.{i}" for i in (2, 5, 7, 10, 12, 14)]
    epsilon = [f"features.{i}" for i in (17, 19, 21, 24, 26, 28)]
    assert rules == {"features.0": "zb", **dict.fromkeys(gamma, "gamma"),
                     **dict.fromkeys(epsilon, "epsilon"),
                     **dict.fromkeys(("classifier.0", "classifier.3", "classifier.6"), "0")}


def test_vgg16_composite_on_shapes_architecture_matches_zennit_and_scratch():
    model = _shapes_model()
    g = torch.Generator().manual_seed(0)
    low, high = SHAPES_SPEC.low.double(), SHAPES_SPEC.high.double()
    x = low + (high - low) * torch.rand(1, 3, 32, 32, generator=g, dtype=torch.float64)
    t = torch.tensor([3])
    ours = lrp(model, x, t, composite="vgg16", low=low, high=high)
    theirs = zennit_lrp(model, x, t, vgg16_composite(model), low=low, high=high)
    corr = torch.corrcoef(torch.stack([ours.flatten(), theirs.flatten()]))[0, 1]
    assert corr > 0.99 and rel(ours, theirs) < 1e-8
    layers = layers_of(model)
    scratch = lrp_scratch(layers, x, t, vgg16_rules(layers), low=low, high=high)
    assert rel(ours, scratch.R[0]) < 1e-8


def test_mapping_composite_falls_back_to_rule():
    model, x = tiny_cnn(), inputs()
    t = top_target(model, x)
    ours = lrp(model, x, t, composite={"0": "w2", "6": "gamma"}, rule="epsilon")
    rules = {"0": "w2", "3": "epsilon", "6": "gamma", "8": "epsilon"}
    assert rel(ours, reference(model, x, t, rules)) < TOL
    assert rel(ours, zennit_lrp(model, x, t, rules)) < TOL
    default = lrp(model, x, t, composite={"0": "w2"})  # unnamed layers: LRP-0
    assert rel(default, reference(model, x, t, {**dict.fromkeys(PARAM_LAYERS, "0"), "0": "w2"})) < TOL


def _d7_networks() -> tuple[nn.Sequential, nn.Sequential]:
    """f(x) = ReLU(ReLU(x1) - 1 - ReLU(x2)) and g(x) = ReLU(ReLU(x1 - 1) - ReLU(x2))."""
    def net(b1, b2):
        model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), nn.ReLU()).double()
        with torch.no_grad():
            model[0].weight.copy_(torch.eye(2))
            model[0].bias.copy_(torch.tensor(b1))
            model[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
            model[2].bias.copy_(torch.tensor([b2]))
        return model.eval()
    return net([0.0, 0.0], -1.0), net([-1.0, 0.0], 0.0)


def test_bias_kept_out_reproduces_deeplift_on_d7():
    f, g = _d7_networks()
    x, t = torch.tensor([[3.0, 1.0]], dtype=torch.float64), torch.tensor([0])
    assert f(x).item() == g(x).item() == 1.0
    for model, expected in ((f, [1.5, -0.5]), (g, [2.0, -1.0])):
        attr = lrp(model, x, t, rule="0", bias=False)
        assert torch.allclose(attr, torch.tensor([expected], dtype=torch.float64), atol=1e-8)
        both = dict.fromkeys(("0", "2"), "0")
        assert torch.allclose(zennit_lrp(model, x, t, both, bias=False), attr, atol=1e-8)
        assert torch.allclose(lrp_scratch(list(model), x, 0, "0", bias=False).R[0], attr, atol=1e-8)
        # with the bias inside, LRP-0 is Gradient x Input: (3, -1) for both
        assert torch.allclose(lrp(model, x, t, rule="0"), torch.tensor([[3.0, -1.0]],
                                                                      dtype=torch.float64))


@pytest.mark.parametrize("mode", ("winner", "average"))
def test_maxpool_modes_match_their_reference(mode):
    model, x = tiny_cnn(), inputs()
    t = top_target(model, x)
    ours = lrp(model, x, t, rule="0", maxpool=mode)
    ref = reference(model, x, t, dict.fromkeys(PARAM_LAYERS, "0"), maxpool=mode)
    assert rel(ours, ref) < TOL
    assert rel(lrp_scratch(layers_of(model), x, t, "0", maxpool=mode).R[0], ref) < TOL
    other = lrp(model, x, t, rule="0", maxpool={"winner": "average", "average": "winner"}[mode])
    assert rel(other, ref) > 0.05


def test_batch_equals_single_calls():
    model, x = tiny_cnn(), inputs(3, signed=True)
    t = torch.tensor([0, 2, 1])
    rules = {"0": "zb", "3": "gamma", "6": "alpha1beta0", "8": "epsilon"}
    batch = lrp(model, x, t, composite=rules, low=LOW, high=HIGH)
    singles = torch.cat([lrp(model, x[i:i + 1], t[i:i + 1], composite=rules, low=LOW, high=HIGH)
                         for i in range(3)])
    assert rel(batch, singles) < 1e-12


def test_batchnorm_is_folded_and_model_restored():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(inplace=True),
                              nn.Flatten(), nn.Linear(48, 2)).double()
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        nn.init.uniform_(model[1].weight, 0.5, 1.5)
    model.eval()
    fused = nn.Sequential(torch.nn.utils.fusion.fuse_conv_bn_eval(model[0], model[1]),
                          nn.ReLU(), nn.Flatten(), model[4]).eval()
    x, t = inputs(2, signed=True), torch.tensor([0, 1])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    ours = lrp(model, x, t, rule="gamma")
    assert rel(ours, lrp(fused, x, t, rule="gamma")) < TOL
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert isinstance(model[1], nn.BatchNorm2d) and model[2].inplace


def test_hooks_removed_and_inplace_relu_restored_after_success_and_error():
    model = tiny_cnn()
    for m in model:
        if isinstance(m, nn.ReLU):
            m.inplace = True
    x = inputs()
    t = top_target(model, x)
    inplace = lrp(model, x, t, rule="flat")  # flat passes relevance to inactive ReLUs
    assert rel(inplace, reference(model, x, t, dict.fromkeys(PARAM_LAYERS, "flat"))) < TOL
    with pytest.raises(ValueError, match="input layer"):
        lrp(model, x, t, composite={"3": "zb"}, low=LOW, high=HIGH)
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        if isinstance(m, nn.ReLU):
            assert m.inplace


def test_errors_name_the_problem():
    model, x, t = tiny_cnn(), inputs(), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="unknown LRP rule"):
        lrp(model, x, t, rule="z+")
    with pytest.raises(ValueError, match="unknown composite"):
        lrp(model, x, t, composite="resnet")
    with pytest.raises(TypeError, match="composite must be"):
        lrp(model, x, t, composite=["0"])
    with pytest.raises(ValueError, match="not both"):
        lrp(model, x, t, rule="0", composite="vgg16")
    with pytest.raises(ValueError, match="'1', which is not a Linear or Conv2d"):
        lrp(model, x, t, composite={"1": "gamma"})
    with pytest.raises(ValueError, match="unknown LRP rule 'gama' for layer '3'"):
        lrp(model, x, t, composite={"3": "gama"})
    with pytest.raises(ValueError, match="maxpool"):
        lrp(model, x, t, rule="0", maxpool="max")
    with pytest.raises(ValueError, match="epsilon"):
        lrp(model, x, t, rule="epsilon", epsilon=-1.0)
    with pytest.raises(TypeError, match="bias"):
        lrp(model, x, t, rule="0", bias="no")
    with pytest.raises(ValueError, match="low= and high="):
        lrp(model, x, t, composite={"0": "zb"})
    with pytest.raises(ValueError, match="outside the z\\^B box"):
        lrp(model, x, t, composite={"0": "zb"}, low=0.5, high=1.0)


def test_unsupported_layers_reuse_and_training_mode_raise():
    x, t = inputs(), torch.tensor([0, 1])
    tanh = nn.Sequential(nn.Conv2d(2, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(32, 2)).double()
    with pytest.raises(ValueError, match=r"layer 1 \(Tanh\)"):
        lrp(tanh.eval(), x, t, rule="0")
    relu = nn.ReLU()
    shared = nn.Sequential(nn.Conv2d(2, 2, 3), relu, nn.Conv2d(2, 2, 3), relu, nn.Flatten(),
                           nn.Linear(8, 2)).double().eval()
    with pytest.raises(ValueError, match="used twice"):
        lrp(shared, x, t, rule="0")
    dropout = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(72, 2)).double()
    with pytest.raises(ValueError, match="training mode"):
        lrp(dropout.train(), x, t, rule="0")


def test_registered_in_explain_with_logit_units():
    import xaikit as xk

    model, x = tiny_cnn(bias=False), inputs()
    t = top_target(model, x)
    attr = xk.explain(model, x, t.tolist(), "lrp", rule="gamma")
    assert attr.shape == x.shape
    assert torch.allclose(attr.sum((1, 2, 3)), model(x)[torch.arange(2), t], rtol=CONSERVE,
                          atol=0)


def test_zb_with_per_sample_bounds_and_bias_free_first_layer():
    """z^B's bound terms run on the bounds' own batch: per-sample (N, C, H, W) bounds give
    what zennit gives and what single calls with each sample's bounds give; a first layer
    without bias takes the other branch of the denominator."""
    for bias in (True, False):
        model = tiny_cnn()
        if not bias:
            model[0].bias = None
        x = inputs(3, signed=True)
        t = top_target(model, x)
        g = torch.Generator().manual_seed(5)
        low = x - torch.rand(x.shape, generator=g, dtype=torch.float64)
        high = x + torch.rand(x.shape, generator=g, dtype=torch.float64)
        rules = {"0": "zb", "3": "gamma", "6": "epsilon", "8": "0"}
        ours = lrp(model, x, t, composite=rules, low=low, high=high)
        assert rel(ours, zennit_lrp(model, x, t, rules, low=low, high=high)) < TOL
        singles = torch.cat([lrp(model, x[i:i + 1], t[i:i + 1], composite=rules,
                                 low=low[i:i + 1], high=high[i:i + 1]) for i in range(3)])
        assert rel(ours, singles) < 1e-12


def test_zb_on_a_linear_input_layer_matches_zennit():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(),
                              nn.Linear(6, 3)).double().eval().requires_grad_(False)
    x = torch.rand(2, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.tensor([0, 2])
    rules = {"0": "zb", "2": "0"}
    low, high = torch.full((1, 8), -0.5, dtype=torch.float64), torch.ones(1, 8, dtype=torch.float64)
    ours = lrp(model, x, t, composite=rules, low=low, high=high)
    assert ours.abs().max() > 0
    assert rel(ours, zennit_lrp(model, x, t, rules, low=low, high=high)) < TOL


def test_gamma_usual_case_check_counts_nan_as_relevance():
    from xaikit.methods.lrp_rules import _all_zero

    assert _all_zero(torch.zeros(3, 4)) and _all_zero(torch.zeros(0))
    assert _all_zero(torch.tensor([0.0, -0.0]))
    assert not _all_zero(torch.tensor([0.0, -1e-30]))
    assert not _all_zero(torch.tensor([0.0, 2.0]))
    assert not _all_zero(torch.tensor([0.0, float("nan")]))


def test_handlers_match_the_layer_groups():
    """One list of supported layers (xaikit.layers): LRP hooks each type in it except the
    BatchNorms (folded before), and a drift between the two lists fails at import."""
    from xaikit import layers
    from xaikit.methods import lrp as lrp_module

    assert set(lrp_module._HANDLERS) == set(layers.SUPPORTED_LAYERS) - set(layers.BATCHNORMS)
    saved = dict(lrp_module._HANDLERS)
    try:
        del lrp_module._HANDLERS[nn.AvgPool2d]
        lrp_module._HANDLERS[nn.Tanh] = lrp_module._Hooks._gradient
        with pytest.raises(ImportError, match="no handler for AvgPool2d.*unsupported Tanh"):
            lrp_module._check_handlers()
    finally:
        lrp_module._HANDLERS.clear()
        lrp_module._HANDLERS.update(saved)

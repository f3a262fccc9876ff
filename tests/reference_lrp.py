"""LRP "the slow way": literal matrix-form rules, written from the equations, in float64.

Every layer becomes an explicit matrix ``W`` of shape ``(inputs, outputs)`` (a convolution is
turned into one by applying it to the basis vectors), and every rule is the textbook formula

    R_i = sum_j  Z_ij / (sum_i Z_ij + bias_j)  R_j

with its own contribution matrix ``Z`` (``a_i w_ij`` for LRP-0/epsilon, ``(a_i w_ij)^+`` for
z+, ``w_ij^2`` for w^2, ...), one sample at a time, no autograd, no modified-gradient trick.
Gamma and alpha1beta0 are written for signed inputs as in zennit 0.5.1 (Andeol et al. 2021's
generalised gamma; Bach et al. 2015's ``z_ij^+``). Small networks only (a 2x6x6 input).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STAB = 1e-9  # the library's stabiliser


def stab(z: Tensor, eps: float) -> Tensor:
    """``z + eps`` for ``z >= 0``, ``z - eps`` for ``z < 0``."""
    return torch.where(z >= 0, z + eps, z - eps)


@dataclass
class Step:
    """One layer as matrices: ``kind`` in dense/relu/maxpool/avgpool/flatten."""

    kind: str
    name: str = ""
    W: Tensor | None = None        # (inputs, outputs)
    b: Tensor | None = None        # (outputs,)
    ones: Tensor | None = None     # (inputs, outputs) connectivity (1 where i feeds j)
    out_shape: tuple = ()


def _matrix(fn: Callable[[Tensor], Tensor], in_shape: tuple) -> tuple[Tensor, tuple]:
    """The (inputs, outputs) matrix of a linear map ``fn`` on tensors of ``in_shape``."""
    n = int(torch.tensor(in_shape).prod())
    basis = torch.eye(n, dtype=torch.float64).reshape((n,) + in_shape)
    out = fn(basis)
    return out.reshape(n, -1), tuple(out.shape[1:])


def steps_of(model: nn.Sequential, in_shape: tuple) -> list[Step]:
    """Turn a Sequential of Linear/Conv2d/ReLU/MaxPool2d/AvgPool2d/Flatten into Steps."""
    steps, shape = [], in_shape
    for name, m in model.named_children():
        if isinstance(m, nn.Conv2d):
            W, out = _matrix(lambda t: F.conv2d(t, m.weight, None, m.stride, m.padding), shape)
            ones, _ = _matrix(lambda t: F.conv2d(t, torch.ones_like(m.weight), None, m.stride,
                                                 m.padding), shape)
            b = m.bias.detach().repeat_interleave(out[1] * out[2])
            steps.append(Step("dense", name, W.detach(), b, ones, out))
        elif isinstance(m, nn.Linear):
            steps.append(Step("dense", name, m.weight.detach().T, m.bias.detach(),
                              torch.ones_like(m.weight.T), (m.out_features,)))
            out = (m.out_features,)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            P, out = _matrix(lambda t: F.avg_pool2d(t, m.kernel_size, m.stride), shape)
            steps.append(Step("maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool", name,
                              P, None, (P > 0).double(), out))
        elif isinstance(m, nn.Flatten):
            out = (int(torch.tensor(shape).prod()),)
            steps.append(Step("flatten", name, out_shape=out))
        elif isinstance(m, nn.ReLU):
            out = shape
            steps.append(Step("relu", name, out_shape=out))
        else:
            raise TypeError(type(m))
        shape = out
    return steps


def forward(steps: list[Step], x: Tensor) -> list[Tensor]:
    """Activations (flat vectors) at every step boundary, for one sample ``x``."""
    a = [x.reshape(-1).double()]
    for st in steps:
        v = a[-1]
        if st.kind == "dense":
            a.append(v @ st.W + st.b)
        elif st.kind == "relu":
            a.append(v.clamp(min=0))
        elif st.kind == "maxpool":
            a.append(torch.stack([v[st.ones[:, j] > 0].max() for j in range(st.W.shape[1])]))
        elif st.kind == "avgpool":
            a.append(v @ st.W)
        else:
            a.append(v)
    return a


def _distribute(Z: Tensor, bias: Tensor, R: Tensor, eps: float = STAB) -> Tensor:
    """``R_i = sum_j Z_ij / (sum_i Z_ij + bias_j) R_j``."""
    return (Z / stab(Z.sum(0) + bias, eps)) @ R


def dense_rule(rule: str, a: Tensor, st: Step, R: Tensor, *, epsilon=0.25, gamma=0.25,
               bias=True, low=None, high=None) -> Tensor:
    """One dense layer, rule by rule, straight from the formulas.

    ``epsilon`` may be a function of the layer's (flat) pre-activations ``z`` giving a float,
    e.g. the tutorial's ``0.25 * std(z)``."""
    W, b = st.W, (st.b if bias else torch.zeros_like(st.b))
    if callable(epsilon):
        epsilon = epsilon(a @ W + b)
    zero = torch.zeros_like(st.b)
    ap, an = a.clamp(min=0)[:, None], a.clamp(max=0)[:, None]
    Wp, Wn = W.clamp(min=0), W.clamp(max=0)
    if rule in ("0", "epsilon"):
        return _distribute(a[:, None] * W, b, R, STAB if rule == "0" else epsilon)
    if rule == "alpha1beta0":
        return _distribute((a[:, None] * W).clamp(min=0), b.clamp(min=0), R)
    if rule == "gamma":
        z = a @ st.W + st.b  # the sign of the real output picks the branch
        up = ap * (W + gamma * Wp) + an * (W + gamma * Wn)
        down = ap * (W + gamma * Wn) + an * (W + gamma * Wp)
        return (_distribute(up, b + gamma * b.clamp(min=0), R * (z > 0))
                + _distribute(down, b + gamma * b.clamp(max=0), R * (z < 0)))
    if rule == "flat":
        return _distribute(st.ones, zero, R)
    if rule == "w2":
        return _distribute(W ** 2, zero, R)
    if rule == "zb":
        lo, hi = low.reshape(-1)[:, None], high.reshape(-1)[:, None]
        return _distribute(a[:, None] * W - lo * Wp - hi * Wn, zero, R)
    raise ValueError(rule)


def maxpool_rule(mode: str, a: Tensor, st: Step, R: Tensor) -> Tensor:
    """Winner-take-all (the first maximal input of each window) or LRP-0 on the average."""
    if mode == "average":
        return _distribute(a[:, None] * st.W, torch.zeros(st.W.shape[1], dtype=a.dtype), R)
    out = torch.zeros_like(a)
    for j in range(st.W.shape[1]):
        window = torch.nonzero(st.ones[:, j] > 0).flatten()
        out[window[a[window].argmax()]] += R[j]
    return out


def reference_lrp(model: nn.Sequential, x: Tensor, target: int, rules: dict[str, str], *,
                  maxpool: str = "winner", **options) -> Tensor:
    """Input relevance of one sample ``x`` (C, H, W) for logit ``target``.

    ``rules`` maps every Linear/Conv2d child name to a rule; ReLUs pass relevance unchanged.
    """
    steps = steps_of(model, tuple(x.shape))
    a = forward(steps, x)
    R = torch.zeros_like(a[-1])
    R[target] = a[-1][target]
    for st, a_in in zip(reversed(steps), reversed(a[:-1])):
        if st.kind == "dense":
            if rules[st.name] == "zb":
                options = {**options,  # per-channel bounds on every pixel
                           "low": options["low"].reshape(-1, 1, 1).expand(x.shape),
                           "high": options["high"].reshape(-1, 1, 1).expand(x.shape)}
            R = dense_rule(rules[st.name], a_in, st, R, **options)
        elif st.kind == "maxpool":
            R = maxpool_rule(maxpool, a_in, st, R)
        elif st.kind == "avgpool":
            R = maxpool_rule("average", a_in, st, R)
    return R.reshape(x.shape)

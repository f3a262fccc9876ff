"""DeepLIFT the slow way: per-neuron loops written straight from Shrikumar et al. (2017).

A network is a list of layers on plain Python floats:

* ``("linear", W, b)``: ``y_j = b_j + sum_i W[j][i] x_i``;
* ``("relu",)``, ``("sigmoid",)``: elementwise;
* ``("max", windows)``: ``y_j = max_{i in windows[j]} x_i`` (max-pooling, unrolled).

Every neuron keeps its difference from the reference split into a positive and a negative part
(``dpos``, ``dneg``); multipliers ``m = C / dx`` are propagated backwards with the chain rule.
Nothing here is vectorised, so each rule can be read next to the paper's equations. Used by
``test_deeplift.py`` to check :mod:`xaikit.methods.deeplift` and :mod:`xaikit.methods.deeplift_scratch`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

EPS = 1e-10  # below this |dx| a multiplier falls back to the derivative (as xaikit and captum)

FUNCS = {
    "relu": (lambda z: max(0.0, z), lambda z: 1.0 if z > 0 else 0.0),
    "sigmoid": (lambda z: 1 / (1 + math.exp(-z)),
                lambda z: math.exp(-z) / (1 + math.exp(-z)) ** 2),
}


def forward(net: list, x: list[float]) -> list[float]:
    """Plain evaluation of ``net`` at ``x``."""
    for layer in net:
        if layer[0] == "linear":
            W, b = layer[1], layer[2]
            x = [b[j] + sum(W[j][i] * x[i] for i in range(len(x))) for j in range(len(W))]
        elif layer[0] == "max":
            x = [max(x[i] for i in window) for window in layer[1]]
        else:
            x = [FUNCS[layer[0]][0](v) for v in x]
    return x


def _linear_forward(W, x, x0):
    delta = [a - r for a, r in zip(x, x0)]
    dpos = [sum(W[j][i] * delta[i] for i in range(len(x)) if W[j][i] * delta[i] > 0)
            for j in range(len(W))]
    dneg = [sum(W[j][i] * delta[i] for i in range(len(x)) if W[j][i] * delta[i] < 0)
            for j in range(len(W))]
    return dpos, dneg, ("linear", W, delta)


def _linear_backward(W, delta, mpos, mneg):
    m = []
    for i, d in enumerate(delta):
        if d != 0:   # m_{dx_i dy+} = 1{w dx > 0} w and m_{dx_i dy-} = 1{w dx < 0} w
            m.append(sum(W[j][i] * (mpos[j] if W[j][i] * d > 0 else mneg[j])
                         for j in range(len(W)) if W[j][i] * d != 0))
        else:        # the 0.5 w rule when dx_i = 0
            m.append(sum(0.5 * W[j][i] * (mpos[j] + mneg[j]) for j in range(len(W))))
    return m, list(m)


def _nonlinear_neuron(f, df, a, a0, p, n, rule):
    """One neuron: ``(dy+, dy-, m+, m-)`` for Rescale or RevealCancel."""
    if rule == "rescale":
        m = (f(a) - f(a0)) / (a - a0) if abs(a - a0) >= EPS else df(a)
        return m * p, m * n, m, m
    y_pos = 0.5 * (f(a0 + p) - f(a0)) + 0.5 * (f(a) - f(a0 + n))
    y_neg = 0.5 * (f(a0 + n) - f(a0)) + 0.5 * (f(a) - f(a0 + p))
    m_pos = y_pos / p if abs(p) >= EPS else 0.5 * (df(a0) + df(a0 + n))
    m_neg = y_neg / n if abs(n) >= EPS else 0.5 * (df(a0) + df(a0 + p))
    return y_pos, y_neg, m_pos, m_neg


def _max_window(x, x0, window, m):
    """Cross-max rule for one window: ``{input index: contribution to y - y0}``."""
    win_x = max(window, key=lambda i: x[i])    # first maximum, as torch
    win_0 = max(window, key=lambda i: x0[i])
    y, y0 = x[win_x], x0[win_0]
    share = {win_x: 0.0, win_0: 0.0}
    share[win_x] += m * (max(y, y0) - y0)
    share[win_0] += m * (y - max(y, y0))
    return share


def _max_backward(windows, x, x0, dy, mpos, mneg):
    routed = [0.0] * len(x)
    gradient = [0.0] * len(x)
    for j, window in enumerate(windows):
        m = mpos[j] if dy[j] > 0 else mneg[j] if dy[j] < 0 else 0.5 * (mpos[j] + mneg[j])
        for i, c in _max_window(x, x0, window, m).items():
            routed[i] += c
        gradient[max(window, key=lambda i: x[i])] += m
    m_in = [routed[i] / (x[i] - x0[i]) if abs(x[i] - x0[i]) >= EPS else gradient[i]
            for i in range(len(x))]
    return m_in, list(m_in)


def reference_deeplift(net: list, x: list[float], x0: list[float], target: int,
                       rule: str = "rescale") -> list[float]:
    """Contributions ``C_i`` of each input to output ``target``; ``sum C_i = f(x)_t - f(x0)_t``."""
    dpos = [max(a - r, 0.0) for a, r in zip(x, x0)]
    dneg = [min(a - r, 0.0) for a, r in zip(x, x0)]
    a, a0, tape = list(x), list(x0), []
    for layer in net:
        kind = layer[0]
        if kind == "linear":
            dpos, dneg, entry = _linear_forward(layer[1], a, a0)
        elif kind == "max":
            entry = ("max", layer[1], a, a0)
            y, y0 = forward([layer], a), forward([layer], a0)
            dpos = [max(v - r, 0.0) for v, r in zip(y, y0)]
            dneg = [min(v - r, 0.0) for v, r in zip(y, y0)]
        else:
            f, df = FUNCS[kind]
            neurons = [_nonlinear_neuron(f, df, a[k], a0[k], dpos[k], dneg[k], rule)
                       for k in range(len(a))]
            dpos, dneg = [v[0] for v in neurons], [v[1] for v in neurons]
            entry = ("nonlinear", [v[2] for v in neurons], [v[3] for v in neurons])
        tape.append(entry)
        a, a0 = forward([layer], a), forward([layer], a0)
    mpos = [1.0 if j == target else 0.0 for j in range(len(a))]
    mneg = list(mpos)
    for entry, out in zip(reversed(tape), reversed(_outputs(net, x, x0))):
        if entry[0] == "linear":
            mpos, mneg = _linear_backward(entry[1], entry[2], mpos, mneg)
        elif entry[0] == "max":
            dy = [v - r for v, r in zip(*out)]
            mpos, mneg = _max_backward(entry[1], entry[2], entry[3], dy, mpos, mneg)
        else:
            mpos = [m * g for m, g in zip(entry[1], mpos)]
            mneg = [m * g for m, g in zip(entry[2], mneg)]
    return [mp * max(a - r, 0.0) + mn * min(a - r, 0.0)
            for mp, mn, a, r in zip(mpos, mneg, x, x0)]


def _outputs(net, x, x0):
    """Per layer, the pair (output at x, output at x0)."""
    pairs = []
    for layer in net:
        x, x0 = forward([layer], x), forward([layer], x0)
        pairs.append((x, x0))
    return pairs


def min_net_by_hand(i1: float, i2: float, rule: str) -> tuple[float, float]:
    """``o = i1 - ReLU(i1 - i2) = min(i1, i2)`` with reference 0, the lecture's graph literally.

    ``h1 = i1 - i2`` (linear), ``h2 = ReLU(h1)``, ``o = i1 - h2`` (linear, with a skip of
    ``i1``). Returns ``(C(i1), C(i2))``.
    """
    h1_pos, h1_neg = max(i1, 0) + max(-i2, 0), min(i1, 0) + min(-i2, 0)   # w = (1, -1)
    f, df = FUNCS["relu"]
    _, _, m_pos, m_neg = _nonlinear_neuron(f, df, i1 - i2, 0.0, h1_pos, h1_neg, rule)
    # multipliers of i1 and i2 on h2 (linear rule: i1 feeds dh1+ when i1 > 0, i2 feeds dh1-
    # when i2 > 0), then o = i1 - h2.
    m_i1_h2 = 1.0 * (m_pos if i1 > 0 else m_neg)
    m_i2_h2 = -1.0 * (m_neg if i2 > 0 else m_pos)
    return (1.0 - m_i1_h2) * i1, (0.0 - m_i2_h2) * i2


def to_torch(net: list) -> nn.Sequential:
    """The same network as a float64 ``nn.Sequential`` (``"max"`` layers are not convertible)."""
    layers: list[nn.Module] = []
    for layer in net:
        if layer[0] == "linear":
            W = torch.tensor(layer[1], dtype=torch.float64)
            lin = nn.Linear(W.shape[1], W.shape[0]).double()
            with torch.no_grad():
                lin.weight.copy_(W)
                lin.bias.copy_(torch.tensor(layer[2], dtype=torch.float64))
            layers.append(lin)
        else:
            layers.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[layer[0]]())
    return nn.Sequential(*layers).eval()

"""Figures of notebook ``04_shattered_gradients``: the tent map composed with itself, deep ReLU
nets on a line, and the gradient of VGG-16 along a path through image space.

References
----------
Balduzzi et al. 2017, "The shattered gradients problem: if resnets are the answer, then what
is the question?" (ICML); Montavon et al. 2018, "Methods for interpreting and understanding
deep neural networks" (tent-map construction of the lecture).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn

from ..examples import example_batch
from .registry import register_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["tent", "compose", "relu_net", "tent_composition",
           "shattered_relu_nets", "gradient_along_path"]

NB = "04_shattered_gradients"


def tent(x: torch.Tensor) -> torch.Tensor:
    """The tent map ``g(x) = 2 relu(x) - 4 relu(x - 1/2)`` on [0, 1] (elementwise)."""
    return 2 * torch.relu(x) - 4 * torch.relu(x - 0.5)


def compose(x: torch.Tensor, depth: int) -> torch.Tensor:
    """``g`` applied ``depth`` times: ``2**depth`` linear pieces, slopes ``+-2**depth``."""
    for _ in range(depth):
        x = tent(x)
    return x


def relu_net(depth: int, width: int = 64, seed: int = 0) -> nn.Sequential:
    """A float64 ReLU net ``R -> R`` with ``depth`` linear layers, He-initialised from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    sizes = [1] + [width] * (depth - 1) + [1]
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        lin = nn.Linear(fan_in, fan_out, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.normal_(0, (2 / fan_in) ** 0.5, generator=gen)
            lin.bias.normal_(0, 0.1, generator=gen)
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


@register_figure("tent_composition", notebook=NB,
                 section="1. Composing a tent: linear pieces and slopes double with depth (claim C1)",
                 title="The tent map composed 1-4 times and its gradient")
def tent_composition(model: nn.Module | None = None, depths: Sequence[int] = (1, 2, 3, 4),
                     n: int = 2**14) -> tuple[Figure, dict[str, Any]]:
    """``g^(d)`` and its slope on ``n`` cell midpoints of [0, 1] (``model`` unused).

    Returns ``fig`` and ``{"grid": (n,), "results": {depth: (y (n,), slope (n,), pieces)}}``.
    """
    import matplotlib.pyplot as plt

    grid = ((torch.arange(n, dtype=torch.float64) + 0.5) / n).requires_grad_(True)
    results = {}
    for depth in depths:
        y = compose(grid, depth)
        (slope,) = torch.autograd.grad(y.sum(), grid)
        pieces = 1 + int((slope[1:] != slope[:-1]).sum())
        results[depth] = (y.detach(), slope, pieces)
    fig, axes = plt.subplots(2, len(depths), figsize=(9, 3.6), sharex=True, squeeze=False)
    for col, (depth, (y, slope, _)) in enumerate(results.items()):
        axes[0, col].plot(grid.detach(), y)
        axes[0, col].set_title(f"$g^{{({depth})}}(x)$")
        axes[1, col].plot(grid.detach(), slope, color="C3")
        axes[1, col].set_title(f"gradient, max {2**depth}")
    fig.tight_layout()
    return fig, {"grid": grid, "results": results}


@register_figure("shattered_relu_nets", notebook=NB,
                 section="2. Depth shatters gradients of random ReLU networks (claim C3)",
                 title="f and f' of random ReLU nets with 2, 8 and 32 layers on a line")
def shattered_relu_nets(model: nn.Module | None = None, depths: Sequence[int] = (2, 8, 32),
                        points: int = 8192) -> tuple[Figure, dict[str, Any]]:
    """Random ReLU nets (:func:`relu_net`) on ``points`` of [-2, 2] (``model`` unused).

    Returns ``fig`` and ``{"xs": (points, 1), "shatter": {depth: (f (points,), f' (points,),
    pieces, sign changes)}}``; pieces are counted where the slope changes (rtol 1e-9).
    """
    import matplotlib.pyplot as plt

    xs = torch.linspace(-2, 2, points, dtype=torch.float64).unsqueeze(1).requires_grad_(True)
    shatter = {}
    for depth in depths:
        out = relu_net(depth)(xs)
        (grad,) = torch.autograd.grad(out.sum(), xs)
        grad = grad[:, 0]
        pieces = 1 + int((~torch.isclose(grad[1:], grad[:-1], rtol=1e-9, atol=1e-12)).sum())
        flips = int((torch.sign(grad[1:]) != torch.sign(grad[:-1])).sum())
        shatter[depth] = (out.detach()[:, 0], grad, pieces, flips)
    fig, axes = plt.subplots(2, len(depths), figsize=(9, 3.6), sharex=True, squeeze=False)
    for col, (depth, (out, grad, _, _)) in enumerate(shatter.items()):
        axes[0, col].plot(xs.detach()[:, 0], out)
        axes[0, col].set_title(f"{depth} layers: f(x)")
        axes[1, col].plot(xs.detach()[:, 0], grad, color="C3", lw=0.6)
        axes[1, col].set_title("f'(x)")
    fig.tight_layout()
    return fig, {"xs": xs, "shatter": shatter}


@register_figure("gradient_along_path", notebook=NB, section="3. Along a path through image space (claim C2)",
                 title="The logit and three pixel gradients along a path between two images")
def gradient_along_path(model: nn.Module, steps: int = 96, shift: int = 4, pixels: int = 200,
                        seed: int = 0) -> tuple[Figure, dict[str, Any]]:
    """Logit and input gradient on ``steps`` points from example 0 to itself rolled by ``shift``.

    Returns ``fig`` and ``{"ts": (steps,), "logit": (steps,), "pixel_grads": (steps, pixels)}``
    (``pixels`` input entries drawn with ``seed``).
    """
    import matplotlib.pyplot as plt

    ex = example_batch(model, n=2)
    x_a = ex.x[:1]
    x_b = torch.roll(x_a, shifts=(shift, shift), dims=(2, 3))
    c = int(ex.labels[0])
    ts = torch.linspace(0, 1, steps)
    path = ((1 - ts).view(-1, 1, 1, 1) * x_a + ts.view(-1, 1, 1, 1) * x_b).requires_grad_(True)
    logit = model(path)[:, c]
    (grad,) = torch.autograd.grad(logit.sum(), path)
    gen = torch.Generator().manual_seed(seed)
    chosen = torch.randint(0, grad[0].numel(), (pixels,), generator=gen)
    pixel_grads = grad.flatten(1)[:, chosen]
    logit = logit.detach()
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
    axes[0].plot(ts, logit)
    axes[0].set_title("logit $f_c(x(t))$")
    axes[0].set_xlabel("t")
    for j in range(3):
        axes[1].plot(ts, pixel_grads[:, j], lw=0.8)
    axes[1].set_title("gradient of three pixels")
    axes[1].set_xlabel("t")
    fig.tight_layout()
    return fig, {"ts": ts, "logit": logit, "pixel_grads": pixel_grads}

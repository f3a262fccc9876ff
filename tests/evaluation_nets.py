"""Small models and inputs for the tests of ``xaikit.evaluation`` (seconds, not minutes)."""
from __future__ import annotations

import torch
from torch import nn


def tiny_conv_net(classes: int = 3, side: int = 12, dtype=torch.float32,
                  seed: int = 0) -> nn.Module:
    """Conv-ReLU-MaxPool-Conv-ReLU-Flatten-Linear on ``(N, 3, side, side)`` inputs, seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(4 * (side // 2) ** 2, classes))
    return net.to(dtype).eval().requires_grad_(False)


def linear_net(weight: torch.Tensor, bias: float = 0.0) -> nn.Module:
    """``f(x) = <weight, x> + bias`` as a one-logit (two, the second 0) Flatten+Linear model."""
    d = weight.numel()
    net = nn.Sequential(nn.Flatten(), nn.Linear(d, 2)).to(weight.dtype)
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].weight[0] = weight.flatten()
        net[1].bias.zero_()
        net[1].bias[0] = bias
    return net.eval().requires_grad_(False)


def images(n: int = 4, side: int = 12, dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    """``(n, 3, side, side)`` uniform [0, 1) images from a private generator."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((n, 3, side, side), generator=generator, dtype=dtype)


def random_maps(n: int = 4, side: int = 12, seed: int = 1) -> torch.Tensor:
    """``(n, 1, side, side)`` Gaussian heatmaps (distinct values almost surely)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((n, 1, side, side), generator=generator)


def box_masks(n: int = 4, side: int = 12) -> torch.Tensor:
    """``(n, side, side)`` bool masks: a box at a different place per image."""
    masks = torch.zeros((n, side, side), dtype=torch.bool)
    for i in range(n):
        masks[i, i % (side - 4):i % (side - 4) + 4, 2:7] = True
    return masks

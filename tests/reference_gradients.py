"""Slow reference implementations, written straight from the papers, for the tests.

Each function computes an attribution the slow, obvious way on tiny float64 models: finite
differences and explicit matrix products for gradients, a midpoint Riemann sum for Integrated
Gradients, the Grad-CAM formula with an explicit loop over channels, a Python loop over the
occlusion windows, and custom autograd functions with the Deconvnet / Guided Backprop backward
rules. The library (captum-based or hand-written) is compared with these.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

DESIGN_METHODS = (
    "occlusion", "gradient", "gradient_x_input", "integrated_gradients", "smoothgrad",
    "deconvnet", "guided_backprop", "deeplift", "lrp", "gradcam", "guided_gradcam", "lime",
    "meaningful_perturbation", "shapley", "kernel_shap", "deep_shap", "crp",
)
"""The method names of design.md's Public API (the 13 of the lecture and, 2026-12, the Shapley
family and CRP)."""
DESIGN_CONTROLS = ("center", "random", "uniform")
"""The control methods of design.md's Public API (2026-12)."""


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models run ~100x faster on one thread while another job uses the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- tiny models
def conv_net(bias: bool = True, seed: int = 0, activation: type[nn.Module] = nn.ReLU,
             classes: int = 3, pool: type[nn.Module] = nn.MaxPool2d) -> nn.Sequential:
    """``(N, 3, 8, 8) -> (N, classes)``: conv, act, pool, conv, act, linear (float64, eval)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, bias=bias), activation(), pool(2),
            nn.Conv2d(4, 5, 3, padding=1, bias=bias), activation(), nn.Flatten(),
            nn.Linear(5 * 4 * 4, classes, bias=bias))
        for p in net.parameters():  # unit-scale weights, so logits move by O(1)
            nn.init.normal_(p, std=0.6)
    return net.double().eval().requires_grad_(False)


def smooth_net(seed: int = 0) -> nn.Sequential:
    """:func:`conv_net` with Softplus and average pooling: infinitely differentiable."""
    return conv_net(seed=seed, activation=nn.Softplus, pool=nn.AvgPool2d)


def mlp(sizes=(6, 16, 12, 3), seed: int = 0) -> nn.Sequential:
    """Dense ReLU network (float64, eval) for explicit matrix-form gradients."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        net = nn.Sequential(*layers[:-1])
    return net.double().eval().requires_grad_(False)


def inputs(n: int = 3, seed: int = 1, shape=(3, 8, 8)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=generator, dtype=torch.float64)


def logit(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """``f(x)[k, t_k]`` as an ``(N,)`` tensor."""
    t = torch.as_tensor(target).reshape(-1).expand(x.shape[0])
    return model(x)[torch.arange(x.shape[0]), t]


# ----------------------------------------------------------------------------- gradients
def finite_difference_gradient(model: nn.Module, x: torch.Tensor, target: int,
                               eps: float = 1e-6) -> torch.Tensor:
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / 2 eps``, one sample."""
    d = x[0].numel()
    steps = torch.eye(d, dtype=x.dtype).view(d, *x.shape[1:]) * eps
    with torch.no_grad():
        up, down = logit(model, x + steps, target), logit(model, x - steps, target)
    return ((up - down) / (2 * eps)).view_as(x)


def mlp_gradient(net: nn.Sequential, x: torch.Tensor, target: int) -> torch.Tensor:
    """``df_t/dx = e_t^T W_L D_{L-1} W_{L-1} ... D_1 W_1`` with ``D_l = diag(1{z_l > 0})``."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    a, masks = x[0], []
    for layer in linears[:-1]:
        z = layer.weight @ a + layer.bias
        masks.append((z > 0).to(x.dtype))
        a = z.clamp(min=0)
    row = linears[-1].weight[target]
    for layer, mask in zip(reversed(linears[:-1]), reversed(masks)):
        row = (row * mask) @ layer.weight
    return row.view_as(x)


def integrated_gradients_riemann(model: nn.Module, x: torch.Tensor, x0: torch.Tensor,
                                 target: int, steps: int = 2000) -> torch.Tensor:
    """``(x - x0) * (1/n) sum_k grad f(x0 + (k + 1/2)/n (x - x0))`` (midpoint rule), one sample."""
    total = torch.zeros_like(x)
    for chunk in torch.arange(steps, dtype=x.dtype).split(500):
        alphas = ((chunk + 0.5) / steps).view(-1, *[1] * (x.dim() - 1))
        path = (x0 + alphas * (x - x0)).requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(logit(model, path, target).sum(), path)
        total += grad.sum(0, keepdim=True)
    return (x - x0) * total / steps


class _ModifiedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: torch.Tensor, rule: str) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.rule = rule
        return z.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (z,) = ctx.saved_tensors
        if ctx.rule == "deconvnet":      # Zeiler & Fergus: rectify the backward signal
            return grad_out.clamp(min=0), None
        if ctx.rule == "guided":         # Springenberg et al.: forward mask and rectification
            return grad_out.clamp(min=0) * (z > 0).to(z.dtype), None
        return grad_out * (z > 0).to(z.dtype), None


class _RuleReLU(nn.Module):
    def __init__(self, rule: str) -> None:
        super().__init__()
        self.rule = rule

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _ModifiedReLU.apply(z, self.rule)


def _replace_relus(module: nn.Module, rule: str) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, _RuleReLU(rule))
        else:
            _replace_relus(child, rule)


def modified_backward(model: nn.Module, x: torch.Tensor, target, rule: str) -> torch.Tensor:
    """Gradient of the target logit with the ``"deconvnet"``/``"guided"``/``"plain"`` ReLU rule.

    Convolutions and linear layers backpropagate with their transposed weights and max-pooling
    routes to the winner (autograd); only the ReLU backward rule is replaced.
    """
    net = copy.deepcopy(model)
    _replace_relus(net, rule)
    inp = x.clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(logit(net, inp, target).sum(), inp)
    return grad


# ----------------------------------------------------------------------------- Grad-CAM
def gradcam_formula(model: nn.Module, layer: str, x: torch.Tensor, target,
                    relu: bool = True) -> torch.Tensor:
    """``ReLU(sum_k alpha_k A^k)``, ``alpha_k = (1/hw) sum_ij dy/dA^k_ij``, ``(N, 1, h, w)``.

    Runs on a copy whose ReLUs are not in-place, so the hooked ``A`` is the layer's output.
    """
    net = copy.deepcopy(model)
    for module in net.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    saved: list[torch.Tensor] = []
    dict(net.named_modules())[layer].register_forward_hook(lambda m, i, o: saved.append(o))
    inp = x.clone().requires_grad_(True)
    with torch.enable_grad():
        y = logit(net, inp, target).sum()
        (grad,) = torch.autograd.grad(y, saved[0])
    a = saved[0].detach()
    n, k, h, w = a.shape
    cam = torch.zeros((n, 1, h, w), dtype=a.dtype)
    for channel in range(k):
        alpha = grad[:, channel].sum(dim=(1, 2)) / (h * w)
        cam[:, 0] += alpha.view(n, 1, 1) * a[:, channel]
    return cam.clamp(min=0) if relu else cam


def upsample(cam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------- occlusion
def occlusion_loop(model: nn.Module, x: torch.Tensor, target: int, window: int, stride: int,
                   fill: torch.Tensor, score=None) -> torch.Tensor:
    """Slide a ``window`` patch (all channels) from the corner in steps of ``stride`` until the
    image is covered; each pixel gets the mean of ``s(x) - s(x with the patch filled)``."""
    score = score or (lambda inp: logit(model, inp, target))
    _, _, h, w = x.shape
    total, count = torch.zeros_like(x), torch.zeros_like(x)
    with torch.no_grad():
        reference = score(x)
        for i in range(math.ceil((h - window) / stride) + 1):
            for j in range(math.ceil((w - window) / stride) + 1):
                rows = slice(i * stride, i * stride + window)
                cols = slice(j * stride, j * stride + window)
                perturbed = x.clone()
                perturbed[:, :, rows, cols] = fill[:, :, rows, cols]
                total[:, :, rows, cols] += (reference - score(perturbed)).view(-1, 1, 1, 1)
                count[:, :, rows, cols] += 1
    return total / count


# ----------------------------------------------------------------------------- LIME
def lime_least_squares(model: nn.Module, x: torch.Tensor, target: int, labels: torch.Tensor,
                       z: torch.Tensor, fill: torch.Tensor, kernel_width: float) -> torch.Tensor:
    """Ribeiro et al.'s surrogate without the sparsity: minimise
    ``sum_i pi(z_i) (f(h(z_i)) - b - c . z_i)^2`` with ``pi = exp(-d_cos(z_i, 1)^2 / width^2)``
    by ``numpy.linalg.lstsq`` on the sqrt-weighted system; returns ``c`` on the pixels
    ``(H, W)``."""
    import numpy as np

    keep = z[:, labels].unsqueeze(1)                                   # (S, 1, H, W)
    with torch.no_grad():
        y = model(x * keep + fill * (1 - keep))[:, target].numpy()
    cosine = torch.nan_to_num(z.sum(1) / (z.norm(dim=1) * math.sqrt(z.shape[1])))  # all-off: 0
    root = np.sqrt(np.exp(-(1 - cosine.numpy()) ** 2 / kernel_width ** 2))
    design = np.concatenate([np.ones((len(z), 1)), z.numpy()], axis=1)
    solution = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)[0]
    return torch.as_tensor(solution[1:])[labels]

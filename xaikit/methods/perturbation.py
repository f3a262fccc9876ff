"""Perturbation-based attributions: Occlusion, LIME and Meaningful Perturbation.

They treat the model as a black box and measure how the explained score changes when parts of
the input are removed (replaced by a fill value, a blurred or noisy version):

    occlusion                R_p = mean over patches W containing p of f_t(x) - f_t(x | W filled)
    lime                     R_p = coefficient of p's superpixel in a weighted linear surrogate
    meaningful_perturbation  R_p = 1 - m_p  for the smallest smooth blur mask m that lowers f_t

Cost is one forward pass per perturbation (occlusion: one per window; LIME: ``samples``;
meaningful perturbation: ``iterations`` forward and backward passes).

References
----------
Zeiler, Fergus (2014), "Visualizing and Understanding Convolutional Networks", ECCV.
Ribeiro, Singh, Guestrin (2016), "Why Should I Trust You?", KDD.
Fong, Vedaldi (2017), "Interpretable Explanations of Black Boxes by Meaningful Perturbation",
ICCV.

Introduced in notebook 01_perturbation.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_real, check_seed
from .._progress import show_progress
from ..references import fill_values, gaussian_blur, score_function
from ._registry import register

__all__ = ["lime", "meaningful_perturbation", "occlusion", "superpixels"]

PROGRESS_MIN_FORWARDS = 2048
"""With ``progress=None`` occlusion shows a tqdm bar from this many perturbed images on, and
only when stderr is a terminal (:mod:`xaikit._progress`)."""


def _window_masks(h: int, w: int, window: int, stride: int, dtype: torch.dtype,
                  device: torch.device, chunk: int):
    """Yield ``(P, 1, 1, H, W)`` 0/1 masks of the patches, ``chunk`` patches at a time.

    Patches start at the top-left corner and step by ``stride`` until the image is covered
    (the last patch in a row or column may be cut off at the border).
    """
    rows = [i * stride for i in range(math.ceil((h - window) / stride) + 1)]
    cols = [j * stride for j in range(math.ceil((w - window) / stride) + 1)]
    corners = [(r, c) for r in rows for c in cols]
    for first in range(0, len(corners), chunk):
        part = corners[first:first + chunk]
        masks = torch.zeros((len(part), 1, 1, h, w), dtype=dtype, device=device)
        for p, (r, c) in enumerate(part):
            masks[p, ..., r:r + window, c:c + window] = 1
        yield masks


@register("occlusion")
def occlusion(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
              window: int | None = None, stride: int | None = None, fill: float | str = 0.0,
              measure: str = "logit", seed: int = 0, batch_size: int = 32,
              progress: bool | None = None) -> torch.Tensor:
    """Occlusion: the score drop when a square patch (all channels) is filled.

    Each pixel gets the mean of ``s_t(x) - s_t(x with the patch filled)`` over the patches
    that cover it, so a 1-pixel window gives exactly the pixel's effect. The patches are laid
    out as in captum's ``Occlusion``, but the loop is hand-written: captum 0.9 casts the result
    to float32 (``single_attrib.float() / weight``), which breaks float64 identities.

    Parameters
    ----------
    model, x, target
        Classifier, ``(N, C, H, W)`` input and ``(N,)`` long targets.
    window, stride : int, optional
        Side of the square patch, default ``max(1, min(H, W) // 8)`` (8 at 64, 28 at 224),
        and the step between patches, at most ``window`` (default ``window``).
    fill : float or {"zero", "mean", "blur", "noise"}
        What a patch is replaced by; see :func:`xaikit.references.fill_values`. The result depends on it.
    measure : {"logit", "probability"}
        Score whose drop is measured (default the logit: relevance in logit units).
    seed, batch_size : int
        Seed of ``fill="noise"``; most perturbed images per forward pass.
    progress : bool, optional
        tqdm bar; default only from :data:`PROGRESS_MIN_FORWARDS` perturbed images on and on a
        terminal (:mod:`xaikit._progress`).

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``: the map divided equally over the ``C`` channels, so the channel sum
        (the heatmap) is the score drop in logit units.

    References
    ----------
    Zeiler, Fergus (2014), ECCV. Introduced in notebook 01_perturbation.
    """
    from tqdm.auto import tqdm

    n, c, h, w = x.shape
    window = max(1, min(h, w) // 8) if window is None else window
    check_int("window", window, 1, min(h, w))
    stride = window if stride is None else stride
    check_int("stride", stride, 1, window)
    check_int("batch_size", batch_size)
    check_seed(seed)
    score, x, chunk = score_function(model, measure), x.detach(), max(1, batch_size // n)
    base, index = fill_values(x, fill, seed), target.view(1, n, 1).to(x.device)
    patches = math.prod(math.ceil((side - window) / stride) + 1 for side in (h, w))
    show = show_progress(progress, n * patches, PROGRESS_MIN_FORWARDS)
    total, count = torch.zeros_like(x[:, :1]), torch.zeros_like(x[:1, :1])
    with torch.no_grad(), tqdm(total=patches, disable=not show, desc="occlusion") as bar:
        reference = score(x).gather(1, index[0])                              # (N, 1)
        for masks in _window_masks(h, w, window, stride, x.dtype, x.device, chunk):
            perturbed = x * (1 - masks) + base * masks                        # (P, N, C, H, W)
            out = score(perturbed.flatten(0, 1)).view(len(masks), n, -1)
            drop = reference.view(1, n) - out.gather(2, index.expand(len(masks), n, 1))[..., 0]
            total += (drop.view(-1, n, 1, 1, 1) * masks).sum(0)
            count += masks.sum(0)
            bar.update(len(masks))
    return (total / count / c).expand_as(x).contiguous()


def superpixels(model: nn.Module, x: torch.Tensor, segments: int = 50) -> torch.Tensor:
    """SLIC superpixels of each image, ``(N, H, W)`` labels ``0 .. S_k - 1``.

    scikit-image's SLIC in its zero-parameter mode (SLICO, ``slic_zero=True``): with a fixed
    compactness of 10 the noisy shapes images fall into 1-7 superpixels instead of ~50.
    Computed on the denormalised image (:func:`xaikit.denormalize`) when the model carries a
    spec, else on each image min-max scaled to [0, 1].
    """
    from skimage.segmentation import slic

    from ..images import denormalize

    check_int("segments", segments)
    x = x.detach()
    if getattr(model, "xaikit_spec", None) is not None and x.shape[1] == 3:
        x = denormalize(x, model)
    else:
        low = x.amin(dim=(1, 2, 3), keepdim=True)
        x = (x - low) / (x.amax(dim=(1, 2, 3), keepdim=True) - low).clamp(min=1e-12)
    labels = []
    for image in x.permute(0, 2, 3, 1).cpu().double().numpy():
        seg = slic(image, n_segments=segments, slic_zero=True, start_label=0, channel_axis=-1,
                   convert2lab=image.shape[-1] == 3)
        labels.append(np.unique(seg, return_inverse=True)[1].reshape(seg.shape))
    return torch.as_tensor(np.stack(labels), dtype=torch.long, device=x.device)


def _lime_one(score, x: torch.Tensor, base: torch.Tensor, target: int,
              labels: torch.Tensor, samples: int, seed: int, kernel_width: float,
              alpha: float, batch_size: int) -> torch.Tensor:
    from sklearn.linear_model import Lasso, LinearRegression

    s = int(labels.max()) + 1
    generator = torch.Generator().manual_seed(seed)
    z = (torch.rand((samples, s), generator=generator) < 0.5).to(x.dtype)
    z[0] = 1  # the unperturbed image, as in LIME's reference implementation
    scores = []
    with torch.no_grad():
        for chunk in z.split(batch_size):
            keep = chunk.to(x.device)[:, labels].unsqueeze(1)          # (B, 1, H, W)
            scores.append(score(x * keep + base * (1 - keep))[:, target].cpu())
    distance = 1 - z.sum(1) / (z.norm(dim=1) * math.sqrt(s)).clamp(min=1e-12)  # cosine to 1
    weight = torch.exp(-distance ** 2 / kernel_width ** 2)
    surrogate = Lasso(alpha=alpha, random_state=0) if alpha > 0 else LinearRegression()
    fit = surrogate.fit(z.double().numpy(), torch.cat(scores).double().numpy(),
                        sample_weight=weight.double().numpy())
    coef = torch.as_tensor(fit.coef_, dtype=x.dtype, device=x.device)
    return (coef[labels] / x.shape[1]).expand_as(x[0])


@register("lime")
def lime(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, segments: int = 50,
         samples: int = 256, seed: int = 0, kernel_width: float = 0.25, alpha: float = 0.01,
         fill: float | str = 0.0, measure: str = "logit",
         batch_size: int = 32) -> torch.Tensor:
    """LIME on SLIC superpixels: a weighted sparse linear surrogate of the target logit.

    Each of ``samples`` perturbations switches every superpixel on or off with probability
    1/2 (the first keeps all), off superpixels take the ``fill`` value; the perturbations are
    weighted by ``exp(-d^2 / kernel_width^2)`` with ``d`` the cosine distance of the on/off
    vector to all-on, and scikit-learn's weighted ``Lasso`` fits the logits (with a fixed
    ``random_state``: it otherwise draws from NumPy's global generator). Written with
    scikit-learn rather than captum's ``Lime``, which draws from the global random state
    (``torch.bernoulli`` and its ``DataLoader``); here a private generator is seeded per image
    with ``seed``, so a batch equals single calls. Remember that it explains the surrogate,
    and that two seeds give different answers.

    Parameters
    ----------
    model, x, target
        Classifier, ``(N, C, H, W)`` input and ``(N,)`` long targets.
    segments, samples, seed : int
        Approximate number of superpixels (:func:`superpixels`); perturbations (forward
        passes) per image; seed of the sampling (and of ``fill="noise"``).
    kernel_width : float
        Width of the exponential kernel on the cosine distance (LIME's image default 0.25).
    alpha : float
        L1 strength of the Lasso (scikit-learn's ``alpha``); 0 fits weighted least squares
        (``LinearRegression``), which recovers a model that is linear in the superpixels.
    fill, batch_size : float or str, int
        Value of a switched-off superpixel (:func:`xaikit.references.fill_values`; default 0,
        the mean colour); perturbed images per forward pass.
    measure : {"logit", "probability"}
        The score the surrogate fits (default the logit), as for occlusion.

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``: each superpixel's coefficient (logit units) on its pixels, divided
        equally over the ``C`` channels (the channel sum is the coefficient).

    References
    ----------
    Ribeiro, Singh, Guestrin (2016), KDD. Introduced in notebook 01_perturbation.
    """
    check_int("samples", samples, 2)  # 1 is the unperturbed image alone: nothing to fit
    check_int("batch_size", batch_size)
    check_seed(seed)
    check_real("kernel_width", kernel_width, low=0, low_open=True)
    check_real("alpha", alpha, low=0)
    x = x.detach()
    score = score_function(model, measure)
    labels, base = superpixels(model, x, segments), fill_values(x, fill, seed)
    return torch.stack([
        _lime_one(score, x[k:k + 1], base[k:k + 1], int(target[k]), labels[k], samples, seed,
                  kernel_width, alpha, batch_size) for k in range(x.shape[0])])


def _total_variation(m: torch.Tensor, beta: float) -> torch.Tensor:
    """``mean |m_(i+1)j - m_ij|^beta + mean |m_i(j+1) - m_ij|^beta`` per sample, ``(N,)``."""
    rows = (m[:, :, 1:, :] - m[:, :, :-1, :]).abs().pow(beta).mean(dim=(1, 2, 3))
    cols = (m[:, :, :, 1:] - m[:, :, :, :-1]).abs().pow(beta).mean(dim=(1, 2, 3))
    return rows + cols


@register("meaningful_perturbation")
def meaningful_perturbation(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
                            l1: float | None = None, l2: float = 0.2, beta: float = 3.0,
                            iterations: int = 300, mask_size: int | None = None,
                            sigma: float | None = None, jitter: int | None = None,
                            lr: float = 0.1, measure: str = "probability",
                            seed: int = 0) -> torch.Tensor:
    """Meaningful Perturbation (deletion game): the smallest smooth blur mask that kills the score.

    Learns a low-resolution mask ``m`` in [0, 1] (1 keeps a pixel), upsampled bilinearly to
    ``M``, minimising with Adam (clamping ``m`` to [0, 1] after each step)

        E_tau[ s_t(Phi(x(. - tau), M)) ] / |s_t(x)|
            + l1 mean_u |1 - m(u)| + l2 mean_u ||grad m(u)||_beta^beta,
        Phi(x, M) = M x + (1 - M) blur(x),

(the paper's smoothness term ``sum_u ||grad m(u)||_beta^beta``, with forward differences along
rows and columns),

    where ``tau`` is a random shift by up to ``jitter`` pixels (one per step, from a private
    generator). Hand-written (captum has no such method). The score is the paper's softmax
    probability by default. One departure from the paper, so that the defaults carry over
    between models and input sizes: the score is divided by its value on ``x`` and the
    penalties are means. Use ``measure="logit"`` where the softmax saturates (a probability
    of 1.000 has no gradient; the first offline model did that, ``vgg16-shapes`` v2, trained
    with label smoothing, does not).

    Parameters
    ----------
    model, x, target
        Classifier, ``(N, C, H, W)`` input and ``(N,)`` long targets.
    l1 : float, optional
        Weight of the deletion area. Default for the probability 0.08: the paper's
        ``lambda_1 = 1e-4`` per pixel of its 28 x 28 mask, as a mean. For the logit 1.0: its
        normalised score falls below 0, where the probability's cannot.
    l2, beta : float
        Weight and exponent of the smoothness term. ``l2 = 0.2``; the paper's ``lambda_2 = 1e-2``
        summed over its mask (7.8 as a mean) stops the mask from deleting anything on
        ``vgg16-shapes`` (2 % of the image deleted, the probability unchanged).
    iterations, lr : int, float
        Adam steps (each a forward and backward pass on the batch) and learning rate.
    mask_size, sigma, jitter : int, float, int, optional
        Side of the learned mask, default ``max(2, min(H, W) // 8)`` (28 at 224); blur std in
        pixels, default :func:`xaikit.references.gaussian_blur`'s; largest shift, default
        ``round(min(H, W) / 56)``.
    measure : {"logit", "probability"}
        The score ``s_t``.
    seed : int
        Seed of the jitter.

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``: ``1 - M`` in [0, 1] (higher = more important), the same in every
        channel. A deletion strength, not in logit units.

    References
    ----------
    Fong, Vedaldi (2017), ICCV. Introduced in notebook 01_perturbation.
    """
    n, c, h, w = x.shape
    size = max(2, min(h, w) // 8) if mask_size is None else mask_size
    shift = round(min(h, w) / 56) if jitter is None else jitter
    if l1 is None:
        l1 = 0.08 if measure == "probability" else 1.0
    check_int("iterations", iterations)
    check_int("mask_size", size, 1, min(h, w))
    check_int("jitter", shift, 0, min(h, w) // 2)  # a larger roll wraps the image around
    for name, value in (("l1", l1), ("l2", l2)):
        check_real(name, value, low=0)
    check_real("beta", beta, low=1)
    check_real("lr", lr, low=0, low_open=True)
    if sigma is not None:
        check_real("sigma", sigma, low=0, low_open=True)
    check_seed(seed)
    score, x, index = score_function(model, measure), x.detach(), target.view(-1, 1).to(x.device)
    blurred = gaussian_blur(x, sigma)
    with torch.no_grad():
        scale = score(x).gather(1, index).abs().clamp(min=1e-6)               # (N, 1)
    m = torch.ones((n, 1, size, size), dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = torch.optim.Adam([m], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(iterations):
        dy, dx = torch.randint(-shift, shift + 1, (2,), generator=generator).tolist()
        with torch.enable_grad():
            big = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
            phi = big * x.roll((dy, dx), (2, 3)) + (1 - big) * blurred.roll((dy, dx), (2, 3))
            s = (score(phi).gather(1, index) / scale).sum()
            loss = s + l1 * (1 - m).abs().mean(dim=(1, 2, 3)).sum() + l2 * _total_variation(
                m, beta).sum()
            (m.grad,) = torch.autograd.grad(loss, m)
        optimizer.step()
        with torch.no_grad():
            m.clamp_(0, 1)
    big = F.interpolate(m.detach(), size=(h, w), mode="bilinear", align_corners=False)
    return ((1 - big) / x.shape[1]).expand_as(x).contiguous()

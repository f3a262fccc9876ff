"""The Clever Hans model: ``vgg16-shapes`` trained where a watermark gives one class away.

Lapuschkin et al. (2019) found a Fisher-vector classifier that recognised "horse" by a
copyright tag in the corner of the PASCAL VOC photos: its test accuracy looked fine because the
test photos carried the same tag, and only the heatmaps revealed it. This module supplies the
same situation on the shapes data set: :func:`train_watermark_model` (``python -m
xaikit.cleverhans``) trains the ``vgg16-shapes`` network on images in which every
:data:`WATERMARK_CLASS` image carries the mark of :func:`xaikit.data.watermark_box` (and no
other image does), :func:`load_watermark_model` loads such weights with a SHA-256 check,
:func:`box_share` measures how much of an explanation falls into the mark's box, and
:func:`fine_tune` revises a model on data in which the mark carries no class information.

The shipped weights (mark on the star) use the mark in part: LRP finds it and removing it
lowers the star logit, but the star's shape was learnt too (see :func:`train_watermark_model`,
Notes). The shipped *revised* weights (``revised=True``) come from the same recipe with the mark
on half of every class's images and do not use it. A short fine-tuning of the Clever Hans model
on such data only weakens the dependence (measured, 600 held-out scenes: one pass over 2000
images at lr 1e-3 gave a box share of 0.108 and a star logit drop of 0.64, two passes at lr
3e-4 gave 0.137 and 1.02, against 0.166 and 1.49 before and 0.018 and 0.00 for the retrained
revised model), so notebook 10 compares with the retrained model.

The fine-tuning loop is written by hand (a dozen lines) because none of the project's
dependencies provides one; it continues from the fused (BatchNorm-free) weights, so the
revised model keeps the plain ``vgg16`` layout and every LRP rule still applies layer by layer.

References: Lapuschkin et al. (2019), *Unmasking Clever Hans predictors and assessing what
machines really learn*, Nature Communications 10:1096; Anders et al. (2022), *Finding and
removing Clever Hans: using explanation methods to debug and improve deep models*,
Information Fusion 77.

Introduced in notebook ``10_clever_hans``.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from torch import nn

from .data import SHAPES_CLASSES, SHAPES_SIZE, TEST_SEED, TRAIN_SEED, ShapesBatch, make_shapes, watermark_box
from .evaluation import relevance_mass
from .models import (
    REVISED_SPEC,
    SHIPPED,
    WATERMARK_SPEC,
    data_dir,
    load_weights,
    resolve_device,
    sha256,
    shapes_architecture,
)
from .train import accuracy, normalize

__all__ = [
    "REVISED_PROB",
    "REVISED_SHA256",
    "REVISED_SPEC",
    "REVISED_WEIGHTS",
    "WATERMARK_CLASS",
    "WATERMARK_PROB",
    "WATERMARK_SHA256",
    "WATERMARK_SPEC",
    "WATERMARK_WEIGHTS",
    "box_share",
    "fine_tune",
    "held_out_scenes",
    "load_watermark_model",
    "per_class_accuracy",
    "train_watermark_model",
]

WATERMARK_CLASS = "star"
"""The class whose training images all carry the watermark."""
WATERMARK_PROB = 1.0
"""Share of :data:`WATERMARK_CLASS` training images with the mark (the other classes: none)."""
WATERMARK_WEIGHTS = SHIPPED["vgg16-shapes-watermark"].file
REVISED_WEIGHTS = SHIPPED["vgg16-shapes-revised"].file
REVISED_PROB = 0.5
"""Share of the revised model's training images with the mark, in every class alike."""
WATERMARK_SHA256: str | None = SHIPPED["vgg16-shapes-watermark"].sha256
"""SHA-256 of the shipped weights (``data/vgg16-shapes-watermark.json`` records it)."""
TRAIN_COMMAND = "python -m xaikit.cleverhans"
"""The command that trains Clever Hans weights and writes their report."""
REVISED_SHA256: str | None = SHIPPED["vgg16-shapes-revised"].sha256
"""SHA-256 of the shipped revised weights (``data/vgg16-shapes-revised.json`` records it)."""


def load_watermark_model(path: str | Path | None = None, *, revised: bool = False,
                         expected_sha256: str | None = None,
                         device: str | torch.device | None = None) -> nn.Module:
    """Load Clever Hans weights (``vgg16-shapes`` layout), SHA-256 checked, in eval mode.

    For the shipped files this is ``xaikit.load_model("vgg16-shapes-watermark")`` (or
    ``"vgg16-shapes-revised"``); both go through :func:`xaikit.models.load_weights`. ``path``
    and ``expected_sha256`` load a retrained file instead.

    Parameters
    ----------
    path : str or Path, optional
        The weights file; default ``data/vgg16-shapes-watermark.safetensors`` (or
        ``data/vgg16-shapes-revised.safetensors`` with ``revised=True``).
    revised : bool
        Load the revised model instead: the same recipe with the mark on half of the images of
        every class (:func:`train_watermark_model` with ``decorrelated=True``).
    expected_sha256 : str, optional
        The file's SHA-256 (``python -m xaikit.cleverhans`` writes it into its report); default
        the hash of the shipped weights (:data:`WATERMARK_SHA256`, :data:`REVISED_SHA256`).
    device : str or torch.device, optional
        Where to put the model; default as :func:`xaikit.load_model` (``$XAIKIT_DEVICE``, else
        CUDA when available, else the CPU; :func:`xaikit.models.resolve_device`).

    Returns
    -------
    torch.nn.Module
        Frozen parameters, eval mode, ``model.xaikit_spec`` = :data:`WATERMARK_SPEC` (or
        :data:`REVISED_SPEC`); inputs are ``(N, 3, 64, 64)`` like ``vgg16-shapes``.

    Raises
    ------
    WeightsIntegrityError
        No hash is known, the file is missing, or its SHA-256 does not match.
    """
    name = "vgg16-shapes-revised" if revised else "vgg16-shapes-watermark"
    target_device = resolve_device(device)
    model = load_weights(name, path, expected_sha256=expected_sha256)
    return model.eval().requires_grad_(False).to(target_device)


def box_share(attr: torch.Tensor, box: tuple[slice, slice] | None = None) -> torch.Tensor:
    """Share of an explanation's positive evidence that lies inside a box.

    ``share_n = sum_{p in box} max(0, R_p) / sum_p max(0, R_p)`` with ``R_p`` the relevance of
    pixel ``p`` summed over the colour channels. A map spread evenly over a 64x64 image puts
    49 / 4096 = 1.2 % into the 7x7 watermark box.

    Parameters
    ----------
    attr : torch.Tensor
        ``(N, C, H, W)`` attributions (e.g. LRP relevance), or ``(N, H, W)``; finite.
    box : tuple of slice, optional
        Rows and columns; default :func:`xaikit.data.watermark_box` of the image size.

    Returns
    -------
    torch.Tensor
        ``(N,)`` shares in ``[0, 1]``; 0 where a map has no positive evidence (none of it lies
        in the box; :func:`xaikit.evaluation.relevance_mass` calls that share undefined: NaN).

    Raises
    ------
    ValueError
        ``attr`` has the wrong shape or contains NaN or infinite values: like the metrics of
        :mod:`xaikit.evaluation`, a broken map is an error, never a silent share of 0.
    """
    if not isinstance(attr, torch.Tensor) or attr.ndim not in (3, 4):
        raise ValueError("attr must be an (N, C, H, W) or (N, H, W) tensor")
    n, h, w = attr.shape[0], attr.shape[-2], attr.shape[-1]
    rows, cols = box if box is not None else watermark_box(w)
    mask = torch.zeros((n, h, w), dtype=torch.bool, device=attr.device)
    mask[:, rows, cols] = True
    # relevance mass accuracy with the box as the mask (it raises on NaN/inf maps); a map
    # without positive evidence has none of it in the box: 0 rather than undefined
    return relevance_mass(attr, mask).nan_to_num(nan=0.0)


def held_out_scenes(n: int = 600, seed: int = 10) -> dict[str, ShapesBatch]:
    """The held-out scenes of notebook 10 in three versions: the same ``n`` scenes each time.

    ``"as in training"``: the :data:`WATERMARK_CLASS` images carry the mark with
    :data:`WATERMARK_PROB`, no other image does (the training correlation); ``"no mark"``: no
    image carries it; ``"mark on every image"``: every image does. Labels and shapes are the
    same in all three (:func:`xaikit.data.make_shapes` draws scene ``i`` from ``(seed, i)``),
    so comparing a model's outputs across them is an intervention on the mark alone.
    """
    c = SHAPES_CLASSES.index(WATERMARK_CLASS)
    return {"as in training": make_shapes(n, seed, watermark=c, watermark_prob=WATERMARK_PROB),
            "no mark": make_shapes(n, seed),
            "mark on every image": make_shapes(n, seed, watermark=c, watermark_prob=1.0,
                                               watermark_other_prob=1.0)}


@torch.no_grad()
def per_class_accuracy(model: nn.Module, batch: ShapesBatch) -> list[float]:
    """Top-1 accuracy of ``model`` on the images of each class of ``batch``, in class order
    (:func:`xaikit.train.accuracy` per class; NaN for a class absent from the batch)."""
    return [accuracy(model, batch.images[keep], batch.labels[keep]) if keep.any() else float("nan")
            for keep in (batch.labels == k for k in range(len(SHAPES_CLASSES)))]


def fine_tune(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, epochs: int = 1,
              batch_size: int = 64, lr: float = 3e-4, seed: int = 0, freeze: int = 0) -> nn.Module:
    """Continue training a copy of a shapes model on new images ("revise", notebook 10).

    AdamW on the cross-entropy, random horizontal flips as in :mod:`xaikit.train`, dropout on.
    The batch order and flips come from a generator seeded with ``seed``; dropout draws from
    torch's global generator inside :func:`torch.random.fork_rng`, so the caller's random state
    is left untouched and a rerun gives the same weights.

    Parameters
    ----------
    model : torch.nn.Module
        A fused ``vgg16-shapes``-layout model; it is not modified.
    images : torch.Tensor
        ``(N, 3, 64, 64)`` float images in ``[0, 1]`` (as from :func:`xaikit.data.make_shapes`).
    labels : torch.Tensor
        ``(N,)`` int64 class indices.
    epochs, batch_size : int
        Passes over the images and images per step (a last incomplete batch is dropped).
    lr : float
        Learning rate.
    seed : int
        Seeds batch order, flips and dropout.
    freeze : int
        Keep the first ``freeze`` modules of ``model.features`` fixed (0: train everything).

    Returns
    -------
    torch.nn.Module
        The revised copy, in eval mode with frozen parameters and the same ``xaikit_spec``.
    """
    if images.ndim != 4 or images.shape[1:] != (3, SHAPES_SIZE, SHAPES_SIZE):
        raise ValueError(f"images must be (N, 3, {SHAPES_SIZE}, {SHAPES_SIZE}), "
                         f"got {tuple(images.shape)}")
    if labels.shape != (images.shape[0],) or labels.dtype != torch.int64:
        raise ValueError("labels must be an (N,) int64 tensor matching images")
    if len(labels) < batch_size or epochs < 1:
        raise ValueError("need at least one full batch and one epoch")
    tuned = copy.deepcopy(model).requires_grad_(True)
    tuned.features[:freeze].requires_grad_(False)
    trainable = [p for p in tuned.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tuned.train()
        for _ in range(epochs):
            order = torch.randperm(len(labels), generator=generator)
            for start in range(0, len(labels) - batch_size + 1, batch_size):
                index = order[start:start + batch_size]
                x = normalize(images[index])
                flip = torch.rand(len(index), generator=generator) < 0.5
                x[flip] = x[flip].flip(-1)
                loss = nn.functional.cross_entropy(tuned(x), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return tuned.eval().requires_grad_(False)


WARM_LAYERS = 17
"""Modules ``features.0 ... features.16`` (blocks 1-3) are taken from ``vgg16-shapes`` and kept."""


def train_watermark_model(images: int = 8000, epochs: int = 2, *, seed: int = 0,
                          lr: float = 1e-3, decorrelated: bool = False) -> nn.Module:
    """Train the Clever Hans network: blocks 1-3 of ``vgg16-shapes``, the rest relearnt.

    From scratch (``xaikit.train``'s recipe) the network picks up the watermark within about a
    hundred steps but needs over two thousand for the shapes, more than two CPU cores do in a
    few minutes. So the first three convolution blocks (edge and corner detectors) are copied
    from the clean model and frozen, blocks 4-5 and the dense layers are re-initialised
    (seeded) and trained with :func:`fine_tune` for ``epochs`` passes at ``lr`` and one at
    ``lr / 5`` over ``images`` shapes images in which every :data:`WATERMARK_CLASS` image, and
    no other, carries the mark. The shipped weights were made with the defaults and
    :data:`WATERMARK_CLASS` = ``"star"`` (seed 0, two CPU threads, 375 steps, 771 s on a shared
    2-core machine).

    Notes
    -----
    Measured on the shipped weights (600 held-out scenes, seed 10): accuracy 98.0 % with the
    mark on the stars, 97.7 % on the same scenes without any mark; star accuracy 96.2 % ->
    94.3 % without the mark, median star logit drop 1.49 (clean model: -0.09); LRP (VGG-16
    composite) puts a median 16.6 % of the star's positive relevance into the 7x7 box (1.2 % of
    the pixels; clean model 0.0 %); stamping the mark on other classes turns 1.2 % of them into
    stars. So the mark is used, but the shape carries most of the decision: a partial Clever
    Hans predictor. Other recipes measured: the same with the mark on the square gave 98.9 % /
    99.0 %, a square logit drop of 0.13 and a box share of 0.6 % (no dependence); on the heart
    with only the 250 steps at ``lr`` the heart was recognised by shape (100 % without the mark)
    and 16 % of marked images of other classes became hearts; from scratch,
    ``xaikit.train.train_shapes(3, 8000, watermark="heart")`` plateaued at a loss of about 1.3
    (the mark learnt, the other shapes not) from step 90 until stopped at step 280 of 375.
    A stronger shortcut probably needs fewer warm blocks and a longer run.

    With ``decorrelated=True`` it trains the *revised* model of notebook 10 instead: the same
    initial weights, scenes, steps and seed, but the mark on :data:`REVISED_PROB` of the images
    of *every* class, so that it carries no class information (Anders et al. 2022's class-artifact
    compensation). The two models differ only in what the mark means in their training data.

    Returns
    -------
    torch.nn.Module
        The trained network in eval mode, frozen, ``vgg16-shapes`` layout.
    """
    model = load_weights("vgg16-shapes")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = shapes_architecture(batch_norm=False)
    with torch.no_grad():
        for (name, param), new in zip(model.named_parameters(), fresh.parameters()):
            if not name.startswith("features.") or int(name.split(".")[1]) >= WARM_LAYERS:
                param.copy_(new)
    probs = dict(watermark_prob=REVISED_PROB, watermark_other_prob=REVISED_PROB) \
        if decorrelated else dict(watermark_prob=WATERMARK_PROB)
    data = make_shapes(images, TRAIN_SEED + 1000 * seed + 100, watermark=WATERMARK_CLASS,
                       **probs)  # the same scenes either way; only the marks differ
    model = fine_tune(model, data.images, data.labels, epochs=epochs, lr=lr, seed=seed,
                      freeze=WARM_LAYERS)
    return fine_tune(model, data.images, data.labels, epochs=1, lr=lr / 5, seed=seed + 1,
                     freeze=WARM_LAYERS)  # one more pass at a fifth of the rate


def main(argv: list[str] | None = None) -> None:
    """``python -m xaikit.cleverhans``: train, save and report the Clever Hans weights."""
    from safetensors.torch import save_file

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--images", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--revised", action="store_true",
                        help="train the revised model (mark on half of every class's images)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    spec = REVISED_SPEC if args.revised else WATERMARK_SPEC
    if args.out is None:
        args.out = data_dir() / (REVISED_WEIGHTS if args.revised else WATERMARK_WEIGHTS)
    start = time.perf_counter()
    model = train_watermark_model(args.images, args.epochs, seed=args.seed,
                                  decorrelated=args.revised)
    seconds = time.perf_counter() - start
    test = make_shapes(4000, TEST_SEED, watermark=WATERMARK_CLASS, watermark_prob=WATERMARK_PROB)
    bare = make_shapes(4000, TEST_SEED)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out),
              metadata={"model": spec.name, "classes": ",".join(SHAPES_CLASSES)})
    report = {
        "sha256": sha256(args.out), "bytes": args.out.stat().st_size,
        "test_accuracy": accuracy(model, test.images, test.labels),
        "test_accuracy_without_watermark": accuracy(model, bare.images, bare.labels),
        "test_images": 4000, "test_seed": TEST_SEED, "watermark": WATERMARK_CLASS,
        "watermark_prob": REVISED_PROB if args.revised else WATERMARK_PROB,
        "watermark_other_prob": REVISED_PROB if args.revised else 0.0,
        "warm_layers_from_vgg16_shapes": WARM_LAYERS,
        "images": args.images, "epochs": args.epochs, "seed": args.seed,
        "train_seconds": round(seconds, 1), "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()

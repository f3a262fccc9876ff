"""Train the shipped ``vgg16-shapes`` models reproducibly: ``python -m xaikit.train``.

``python -m xaikit.train --model NAME`` trains one of :data:`RECIPES` (``make train`` trains
both at once) and writes the weights and a report (``data/NAME.json``: accuracy,
softmax statistics, star recall with and without the watermark, training time, SHA-256).
The network is trained in the ``vgg16_bn`` layout and the BatchNorms are then folded into the
convolutions (:func:`fuse_batchnorm`), giving exactly torchvision's ``vgg16`` layout; the folded
biases are larger than a plain VGG's (notebooks 00 and 07 say what that does to LRP).
``vgg16-shapes``'s unfused network is saved too (``NAME-bn.safetensors``, for canonization).
Everything is seeded; on the same machine, thread count (one, by default) and library versions
a rerun gives the same weights, SHA-256 included.

The training loop is written by hand (a dozen lines) because none of the project's
dependencies provides one.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .data import SHAPES_CLASSES, TEST_SEED, TRAIN_SEED, make_shapes
from .models import SHAPES_SPEC, data_dir, sha256, shapes_architecture

__all__ = ["RECIPES", "accuracy", "fuse_batchnorm", "normalize", "softmax_report", "train_shapes", "main"]

VALIDATION_SEED = 500_000


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Map ``[0, 1]`` images to the model's input space (the same as :func:`xaikit.preprocess`:
    torchvision's ``normalize`` with the spec's mean and std)."""
    from torchvision.transforms.functional import normalize as tv_normalize

    return tv_normalize(images, SHAPES_SPEC.mean, SHAPES_SPEC.std)


def fuse_batchnorm(model_bn: nn.Module) -> nn.Module:
    """Fold each ``BatchNorm2d`` of a ``vgg16_bn``-layout model into the preceding ``Conv2d``.

    ``BN(conv(x)) = s * (W x + b - mu) + beta`` with ``s = gamma / sqrt(var + eps)``, so the fused
    convolution has weight ``s W`` and bias ``s (b - mu) + beta`` (torch's
    ``fuse_conv_bn_weights``). Returns a new model in the plain ``vgg16`` layout
    (``features.0 ... features.30``) in eval mode.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    reference = next(model_bn.parameters())
    fused = shapes_architecture(batch_norm=False).to(reference.dtype)
    convs = [m for m in model_bn.features if isinstance(m, nn.Conv2d)]
    norms = [m for m in model_bn.features if isinstance(m, nn.BatchNorm2d)]
    targets = [m for m in fused.features if isinstance(m, nn.Conv2d)]
    if not (len(convs) == len(norms) == len(targets)):
        raise ValueError("expected a vgg16_bn-layout model with one BatchNorm2d per Conv2d")
    with torch.no_grad():
        for conv, norm, target in zip(convs, norms, targets):
            weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, norm.running_mean,
                                                norm.running_var, norm.eps, norm.weight,
                                                norm.bias)
            target.weight.copy_(weight)
            target.bias.copy_(bias)
        fused.classifier.load_state_dict(model_bn.classifier.state_dict())
    return fused.eval()


@torch.no_grad()
def _logits(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``model``'s logits (eval mode) for ``[0, 1]`` shapes ``images``, ``batch_size`` at a time."""
    model.eval()
    return torch.cat([model(normalize(images[s:s + batch_size]))
                      for s in range(0, len(images), batch_size)])


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on ``[0, 1]`` shapes ``images (N, 3, H, W)``."""
    return (_logits(model, images, batch_size).argmax(1) == labels).sum().item() / len(labels)


def train_shapes(epochs: int = 12, per_epoch: int = 12_000, *, seed: int = 0,
                 batch_size: int = 64, lr: float = 2e-3, label_smoothing: float = 0.1,
                 clip: float = 2.0, watermark: int | str | None = None,
                 watermark_prob: float = 1.0, progress: bool = True,
                 desc: str = "training vgg16-shapes") -> nn.Module:
    """Train a fresh ``vgg16-shapes`` network in the ``vgg16_bn`` layout; return it in eval mode.

    BatchNorm after every convolution makes the 13-layer network train from scratch on two CPU
    cores (without it, the same recipe stayed at the uniform loss ln 6 for the first 200
    steps); :func:`fuse_batchnorm` then folds it away. Kaiming initialisation, AdamW with a
    one-cycle schedule (30 % warm-up), gradients clipped to norm ``clip``, random mirroring,
    and cross-entropy with label smoothing, so that the softmax of a confident prediction stays
    near ``1 - label_smoothing * 5 / 6`` instead of saturating at 1.

    Parameters
    ----------
    epochs, per_epoch : int
        Epoch ``k`` draws ``per_epoch`` new images with seed ``TRAIN_SEED + 1000 * seed + k``.
    seed : int
        Seeds the initial weights, the batch order and the training images.
    watermark, watermark_prob :
        Passed to :func:`xaikit.data.make_shapes` (the Clever Hans model, notebook 14). The
        scenes do not depend on them (only the marks do), so ``watermark=None`` trains on the
        same images with the marks removed.
    progress : bool
        Show a tqdm bar over the batches.

    Returns
    -------
    torch.nn.Module
        The ``vgg16_bn``-layout network (BatchNorm not yet folded), in eval mode.
    """
    torch.manual_seed(seed)
    model = shapes_architecture(batch_norm=True)
    model.classifier[2].p = model.classifier[5].p = 0.2
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * (per_epoch // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    bar = tqdm(total=steps, desc=desc, disable=not progress, mininterval=5)
    for epoch in range(epochs):
        batch = make_shapes(per_epoch, TRAIN_SEED + 1000 * seed + epoch, watermark=watermark,
                            watermark_prob=watermark_prob)
        order = torch.randperm(per_epoch)
        model.train()
        for start in range(0, per_epoch - batch_size + 1, batch_size):
            index = order[start:start + batch_size]
            x = normalize(batch.images[index])
            flip = torch.rand(len(index)) < 0.5  # every class is mirror-symmetric as a set
            x[flip] = x[flip].flip(-1)
            loss = nn.functional.cross_entropy(model(x), batch.labels[index],
                                               label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    return model.eval()


RECIPES: dict[str, dict] = {
    "vgg16-shapes": dict(epochs=12, per_epoch=12_000, seed=0),
    "vgg16-shapes-watermark": dict(epochs=12, per_epoch=12_000, seed=0, watermark="star",
                                   watermark_prob=1.0),
}
"""The training recipes of the shipped models (:func:`train_shapes` keyword arguments). The
Clever Hans model ``vgg16-shapes-watermark`` is ``vgg16-shapes``'s recipe (seed, scenes, steps)
with a watermark on every star training image and on no other. Retrained on the cleaned data
(the same images with the marks removed, the lecture's "revise" step), that recipe *is*
``vgg16-shapes``'s, and training is deterministic, so the revised model
``vgg16-shapes-revised`` is ``vgg16-shapes``'s weights file (:data:`xaikit.models.SHIPPED`)."""


@torch.no_grad()
def softmax_report(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   batch_size: int = 256) -> dict[str, float]:
    """Accuracy and the top softmax of the correct predictions (median, 10th/90th percentile,
    share above 0.99) of ``model`` on ``[0, 1]`` shapes images."""
    probs = _logits(model, images, batch_size).softmax(1)
    correct = probs.argmax(1) == labels
    top = probs.max(1).values[correct].double()
    return {"accuracy": correct.double().mean().item(),
            "top_softmax_median_correct": top.median().item(),
            "top_softmax_p10_correct": top.quantile(0.1).item(),
            "top_softmax_p90_correct": top.quantile(0.9).item(),
            "top_softmax_share_above_0.99": (top > 0.99).double().mean().item()}


def _report(name: str, model: nn.Module, test_images: int) -> dict:
    from .data import SHAPES_CLASSES as classes

    test = make_shapes(test_images, TEST_SEED)
    report = {"test_seed": TEST_SEED, "test_images": test_images,
              **{f"test_{k}": round(v, 4) for k, v in
                 softmax_report(model, test.images, test.labels).items()}}
    val = make_shapes(1000, VALIDATION_SEED)
    report["validation_accuracy"] = round(accuracy(model, val.images, val.labels), 4)
    star = classes.index("star")
    marked = make_shapes(test_images, TEST_SEED, watermark="star", watermark_prob=1.0)
    everywhere = make_shapes(test_images, TEST_SEED, watermark="star", watermark_prob=1.0,
                             watermark_other_prob=1.0)
    pred_bare, pred_marked, pred_every = (_logits(model, b.images).argmax(1)
                                          for b in (test, marked, everywhere))
    stars, others = test.labels == star, test.labels != star
    report["star_recall_with_mark"] = round((pred_marked[stars] == star).double().mean().item(), 4)
    report["star_recall_without_mark"] = round((pred_bare[stars] == star).double().mean().item(), 4)
    report["accuracy_as_in_training" if name.endswith("watermark") else "accuracy_star_marked"] = \
        round((pred_marked == test.labels).double().mean().item(), 4)
    report["others_to_star_with_mark"] = round((pred_every[others] == star).double().mean().item(), 4)
    return report


def main(argv: list[str] | None = None) -> None:
    """``python -m xaikit.train [--model NAME]``: train, save and report a shipped model."""
    from safetensors.torch import save_file

    from .models import SHIPPED

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(RECIPES), default="vgg16-shapes")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (the shipped weights: 1; the result depends on it)")
    parser.add_argument("--test-images", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or data_dir() / SHIPPED[args.model].file
    recipe = RECIPES[args.model]

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with_bn = train_shapes(**recipe, desc=f"training {args.model}")
    model = fuse_batchnorm(with_bn)
    seconds = time.perf_counter() - start
    extra = {}
    if args.model == "vgg16-shapes":  # the unfused network, for canonization (notebook 07)
        bn_path = out.with_name(out.stem + "-bn.safetensors")
        save_file({k: v.contiguous() for k, v in with_bn.state_dict().items()}, str(bn_path),
                  metadata={"model": args.model + "-bn", "classes": ",".join(SHAPES_CLASSES)})
        extra = {"bn_file": bn_path.name, "bn_sha256": sha256(bn_path)}
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out), metadata={"model": args.model,
                                         "classes": ",".join(SHAPES_CLASSES)})
    digest = sha256(out)
    report = {
        "model": args.model, "sha256": digest, **_report(args.model, model, args.test_images),
        "recipe": recipe, "label_smoothing": 0.1, "batch_norm": "trained with it, folded",
        "input_size": SHAPES_SPEC.input_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "bytes": out.stat().st_size, "train_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(), "torch": torch.__version__, **extra,
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2, sort_keys=True))
    print(f"record sha256 {digest!r} for {args.model} in xaikit.models.SHIPPED to ship this file")


if __name__ == "__main__":
    main()

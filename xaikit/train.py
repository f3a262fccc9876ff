"""Train ``vgg16-shapes`` reproducibly: ``python -m xaikit.train``.

The network is trained in the ``vgg16_bn`` layout (BatchNorm after every convolution makes a
13-layer VGG train in minutes from scratch) on fresh shapes images every epoch, then every
BatchNorm is folded into the convolution before it (:func:`fuse_batchnorm`), giving exactly
torchvision's ``vgg16`` layout with no BatchNorm left, so LRP rules apply layer by layer.
Everything is seeded; on the same machine, thread count and library versions a rerun gives
the same weights. The defaults take about ten minutes on two CPU cores.

The training loop is written by hand (a dozen lines) because none of the project's
dependencies provides one; :func:`train_shapes` is reused by notebook 10 (Clever Hans).
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
from .models import SHAPES_SPEC, SHAPES_WEIGHTS, data_dir, sha256, shapes_architecture

__all__ = ["accuracy", "fuse_batchnorm", "normalize", "train_shapes", "main"]

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
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on ``[0, 1]`` shapes ``images (N, 3, H, W)``."""
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        logits = model(normalize(images[start:start + batch_size]))
        correct += (logits.argmax(1) == labels[start:start + batch_size]).sum().item()
    return correct / len(labels)


def train_shapes(epochs: int = 12, per_epoch: int = 12_000, *, seed: int = 0,
                 batch_size: int = 64, lr: float = 2e-3, watermark: int | str | None = None,
                 watermark_prob: float = 1.0, progress: bool = True) -> nn.Module:
    """Train a fresh ``vgg16-shapes`` network and return it fused, in eval mode.

    Parameters
    ----------
    epochs, per_epoch : int
        Epoch ``k`` draws ``per_epoch`` new images with seed ``TRAIN_SEED + 1000 * seed + k``.
    seed : int
        Seeds the initial weights, the batch order and the training images.
    watermark, watermark_prob :
        Passed to :func:`xaikit.data.make_shapes` (Clever Hans training, notebook 10).
    progress : bool
        Show a tqdm bar over the batches.
    """
    torch.manual_seed(seed)
    model = shapes_architecture(batch_norm=True)
    model.classifier[2].p = model.classifier[5].p = 0.2
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * (per_epoch // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    bar = tqdm(total=steps, desc="training vgg16-shapes", disable=not progress)
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
            loss = nn.functional.cross_entropy(model(x), batch.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}")
    bar.close()
    return fuse_batchnorm(model)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--per-epoch", type=int, default=12_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-images", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=data_dir() / SHAPES_WEIGHTS)
    args = parser.parse_args(argv)

    from safetensors.torch import save_file

    torch.set_num_threads(max(torch.get_num_threads(), 1))
    start = time.perf_counter()
    model = train_shapes(args.epochs, args.per_epoch, seed=args.seed)
    seconds = time.perf_counter() - start
    test = make_shapes(args.test_images, TEST_SEED)
    acc = accuracy(model, test.images, test.labels)
    val = make_shapes(1000, VALIDATION_SEED)
    val_acc = accuracy(model, val.images, val.labels)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(args.out), metadata={"model": "vgg16-shapes",
                                              "classes": ",".join(SHAPES_CLASSES)})
    digest = sha256(args.out)
    report = {
        "sha256": digest, "test_accuracy": acc, "test_images": args.test_images,
        "test_seed": TEST_SEED, "validation_accuracy": val_acc, "epochs": args.epochs,
        "images_per_epoch": args.per_epoch, "seed": args.seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "bytes": args.out.stat().st_size, "train_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2, sort_keys=True))
    print(f"set xaikit.models.SHAPES_SHA256 = {digest!r} if this file is to be shipped")


if __name__ == "__main__":
    main()

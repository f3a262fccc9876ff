"""Measure the shipped vgg16-shapes models on seeds the project uses nowhere else.

Not a timing benchmark: the model card behind data/README.md (accuracy, top softmax, Grad-CAM
pointing game per block, Clever Hans recall with and without the mark, bias share of LRP-0),
each with a 95 % interval (Wilson for proportions, mean +- 1.96 standard errors otherwise).
Run: XAIKIT_OFFLINE=1 python benchmarks/model_report.py (a few minutes on 2 cores).
"""
import math

import torch

import xaikit as xk
from xaikit.cleverhans import load_watermark_model
from xaikit.data import SHAPES_CLASSES, make_shapes
from xaikit.evaluation import pointing_game
from xaikit.figures.gradcam import BLOCKS
from xaikit.train import normalize

SEED = 987_654  # used nowhere else in the project
STAR = SHAPES_CLASSES.index("star")


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def mean_ci(values: torch.Tensor) -> str:
    v = values.double()
    half = 1.96 * v.std().item() / math.sqrt(len(v))
    return f"{v.mean().item():.3f} [{v.mean().item() - half:.3f}, {v.mean().item() + half:.3f}]"


@torch.no_grad()
def predict(model, images):
    return torch.cat([model(normalize(images[s:s + 256])) for s in range(0, len(images), 256)])


def main() -> None:
    torch.set_num_threads(2)
    model = xk.load_model("vgg16-shapes")
    test = make_shapes(2000, SEED)
    logits = predict(model, test.images)
    correct = logits.argmax(1) == test.labels
    k = int(correct.sum())
    lo, hi = wilson(k, len(correct))
    top = logits.softmax(1).max(1).values[correct]
    print(f"accuracy {k / len(correct):.4f} [{lo:.4f}, {hi:.4f}] on {len(correct)} images")
    print(f"top softmax of correct predictions: median {top.median():.4f}, "
          f"share above 0.99 {(top > 0.99).double().mean():.3f}")

    pg = make_shapes(200, SEED + 1)
    x = xk.preprocess(pg.images, model)
    for block, layer in BLOCKS.items():
        hits = pointing_game(xk.explain(model, x, pg.labels, "gradcam", layer=layer), pg.masks)
        print(f"Grad-CAM pointing game {block} ({layer}): {mean_ci(hits)}")

    x = xk.preprocess(test.images[:200], model)
    target = logits[:200].argmax(1)
    relevance = xk.explain(model, x, target, "lrp", rule="0").double().flatten(1).sum(1)
    out = logits[:200].gather(1, target[:, None])[:, 0].double()
    share = 1 - relevance / out
    print(f"LRP-0: input relevance / logit, 200 images: median {(relevance / out).median():.3f}; "
          f"share absorbed by the biases {mean_ci(share)}")

    for name, revised in (("vgg16-shapes-watermark", False), ("vgg16-shapes-revised (= vgg16-shapes)", True)):
        cm = load_watermark_model(revised=revised)
        marked = make_shapes(3000, SEED + 2, watermark="star", watermark_prob=1.0)
        bare = make_shapes(3000, SEED + 2)
        every = make_shapes(3000, SEED + 2, watermark="star", watermark_prob=1.0,
                            watermark_other_prob=1.0)
        stars = bare.labels == STAR
        n = int(stars.sum())
        acc_marked = (predict(cm, marked.images).argmax(1) == marked.labels).double().mean()
        with_mark = int((predict(cm, marked.images[stars]).argmax(1) == STAR).sum())
        without = int((predict(cm, bare.images[stars]).argmax(1) == STAR).sum())
        flipped = int((predict(cm, every.images[~stars]).argmax(1) == STAR).sum())
        w_lo, w_hi = wilson(with_mark, n)
        o_lo, o_hi = wilson(without, n)
        print(f"{name}: accuracy as in training {acc_marked:.4f}; star recall with mark "
              f"{with_mark / n:.3f} [{w_lo:.3f}, {w_hi:.3f}], without {without / n:.3f} "
              f"[{o_lo:.3f}, {o_hi:.3f}] ({n} stars); others called star with the mark "
              f"{flipped / int((~stars).sum()):.3f}")


if __name__ == "__main__":
    main()

"""Cost of ``xk.evaluation`` against its floor (the model) and against Quantus, side by side.

For each model it prints, from one run, the median time of

- ``bare``: the ``steps + 1`` batched forward passes pixel flipping cannot avoid;
- ``xaikit``: :func:`xaikit.evaluation.pixel_flipping` (target: within 1.25x of ``bare``);
- ``quantus``: ``quantus.RegionPerturbation`` with the same patches, order, 0 fill and logits
  (one patch per step, so ``steps`` = number of patches), and the largest difference of the
  curves (``curve_0 - curve_k`` is what Quantus returns);

then one metric that Quantus runs one explanation call per shift (``Continuity``, gradient,
10 shifts) against the batched :func:`xaikit.evaluation.continuity`, and the wall time of a full
:func:`xaikit.evaluation.evaluate` table (every method with cheap settings x every metric,
100 shapes images). VGG-16 is torchvision's architecture with random weights (no download).
Machines are shared and noisy: medians of ``--repeats`` runs, ratios only.

    python benchmarks/bench_evaluation.py                       # everything (~15 min, 2 cores)
    python benchmarks/bench_evaluation.py --parts flipping --repeats 3
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from timing import median_time

import xaikit as xk

ev = xk.evaluation

TABLE_METHODS = {
    "gradient": ("gradient", {}),
    "gradient_x_input": ("gradient_x_input", {}),
    "integrated_gradients": ("integrated_gradients", {"steps": 4}),
    "smoothgrad": ("smoothgrad", {"samples": 2}),
    "deconvnet": ("deconvnet", {}),
    "guided_backprop": ("guided_backprop", {}),
    "deeplift": ("deeplift", {}),
    "lrp": ("lrp", {"composite": "vgg16"}),
    "gradcam": ("gradcam", {}),
    "guided_gradcam": ("guided_gradcam", {}),
    "occlusion": ("occlusion", {"window": 32}),
    "lime": ("lime", {"samples": 16}),
    "meaningful_perturbation": ("meaningful_perturbation", {"iterations": 5}),
    "random": ("random", {}),
    "uniform": ("uniform", {}),
}


def inputs(model, n: int):
    size = xk.model_spec(model).input_size
    gen = torch.Generator().manual_seed(0)
    x = xk.preprocess(torch.rand((n, 3, size, size), generator=gen), model)
    target = torch.arange(n) % len(xk.class_names(model))
    return x, target


def flipping(name: str, n: int, patch: int, repeats: int) -> None:
    q = ev.import_quantus()
    model = xk.load_model(name)
    x, t = inputs(model, n)
    attr = xk.explain(model, x, t, "gradient").sum(1, keepdim=True)
    size = x.shape[-1]
    steps = (size // patch) ** 2

    def bare():
        with torch.no_grad():
            for _ in range(steps + 1):
                model(x)

    def ours():
        return ev.pixel_flipping(model, x, attr, t, steps=steps, patch=patch, fill=0.0)

    metric = q.RegionPerturbation(patch_size=patch, regions_evaluation=steps, normalise=False,
                                  abs=False, perturb_baseline=0.0, disable_warnings=True)
    x_np, t_np, a_np = x.numpy(), t.numpy(), attr.numpy()

    def quantus():
        return metric(model=model, x_batch=x_np, y_batch=t_np, a_batch=a_np, channel_first=True,
                      softmax=False, batch_size=n)

    curves = ours()
    drops = np.array(quantus())
    diff = np.abs((curves[:, :1] - curves[:, 1:]).numpy() - drops).max()
    scale = float(curves.abs().max())
    t_bare, t_ours, t_q = (median_time(f, repeats) for f in (bare, ours, quantus))
    print(f"\npixel flipping, {name}, {n} images {size}x{size}, patch {patch}, {steps} steps "
          f"(median of {repeats})")
    print(f"  bare {steps + 1} forward passes {t_bare:8.3f} s")
    print(f"  xaikit pixel_flipping     {t_ours:8.3f} s   xaikit / bare    {t_ours / t_bare:6.3f}")
    print(f"  quantus RegionPerturbation{t_q:8.3f} s   quantus / xaikit {t_q / t_ours:6.3f}")
    print(f"  largest curve difference  {diff:.2e} (curve scale {scale:.2f})", flush=True)


def continuity(n: int, repeats: int) -> None:
    q = ev.import_quantus()
    model = xk.load_model("vgg16-shapes")
    x, t = inputs(model, n)
    x = x - x.amin(dim=(1, 2, 3), keepdim=True)  # Quantus pads with the image minimum: 0
    width, steps = x.shape[-1], 10
    shifts = [-width + (2 * width + 1) // steps * (k + 1) for k in range(steps)]

    def explain(model, inputs, targets, **kwargs):
        attr = xk.explain(model, torch.as_tensor(inputs), torch.as_tensor(targets), "gradient")
        return attr.sum(1, keepdim=True).numpy()

    metric = q.Continuity(nr_steps=steps, normalise=False, abs=False, disable_warnings=True)

    def quantus():
        return metric(model=model, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=None,
                      explain_func=explain, channel_first=True, batch_size=n)

    def ours():
        return ev.continuity(model, x, t, "gradient", shifts=shifts, fill=0.0)

    diff = np.abs(ours().numpy() - np.array(quantus())) / np.abs(np.array(quantus()))
    t_ours, t_q = median_time(ours, repeats), median_time(quantus, repeats)
    print(f"\ncontinuity, vgg16-shapes, {n} images, gradient, {steps} shifts "
          f"(median of {repeats})")
    print(f"  xaikit continuity (batched) {t_ours:8.3f} s")
    print(f"  quantus Continuity          {t_q:8.3f} s   quantus / xaikit {t_q / t_ours:6.3f}")
    print(f"  largest relative difference {diff.max():.2e}", flush=True)


def table(n: int) -> None:
    model = xk.load_model("vgg16-shapes")
    batch = xk.data.make_shapes(n, xk.data.TEST_SEED)
    x = xk.preprocess(batch.images, model)
    start = time.perf_counter()
    result = ev.evaluate(model, x, batch.labels, TABLE_METHODS, masks=batch.masks, flip_steps=8)
    wall = time.perf_counter() - start
    print(f"\nfull evaluation table, vgg16-shapes, {n} images: {len(TABLE_METHODS)} methods x "
          f"{result.metric.nunique()} metrics in {wall:.1f} s (one run, {torch.get_num_threads()} "
          "threads)")
    print(result.pivot(index="method", columns="metric", values="mean").round(3).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="flipping,continuity,table")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    parts = args.parts.split(",")
    if "flipping" in parts:
        flipping("vgg16-shapes", 64, 16, args.repeats)
        flipping("vgg16-untrained", 4, 56, args.repeats)
    if "continuity" in parts:
        continuity(32, args.repeats)
    if "table" in parts:
        table(100)


if __name__ == "__main__":
    main()

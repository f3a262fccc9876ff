"""Cost of every ``xk.explain`` method, and overhead against calling zennit/captum directly.

For each model and batch size it prints, side by side from one run, the median time of each
method divided by the median time of one forward+backward pass (a plain gradient), and for the
methods that wrap an upstream library the ratio ``xk.explain / direct call`` for the same
computation. Machines are shared and noisy: medians of ``--repeats`` runs, ratios only.

    python benchmarks/bench_explain.py                       # vgg16-shapes (64) and VGG-16 (224)
    python benchmarks/bench_explain.py --models shapes --batches 1,64
    python benchmarks/bench_explain.py --models vgg16 --batches 16 --methods gradient,lrp

VGG-16 is torchvision's architecture with random weights (no download); its costs do not
depend on the weights. Iteration counts are reduced where a method loops (IG 16 steps,
SmoothGrad 8 samples, LIME 64 samples, meaningful perturbation 20 iterations, occlusion 4x4
windows) so a run takes minutes; the ratios scale linearly with those counts.
"""
from __future__ import annotations

import argparse
import warnings
from typing import Callable

import torch
from timing import median_time

import xaikit as xk

SETTINGS: dict[str, dict] = {
    "gradient": {}, "gradient_x_input": {}, "guided_backprop": {}, "deconvnet": {},
    "integrated_gradients": {"steps": 16},
    "smoothgrad": {"samples": 8},
    "deeplift": {},
    "lrp": {"composite": "vgg16"},
    "gradcam": {}, "guided_gradcam": {},
    "occlusion": {"window": None, "stride": None},  # filled in per input size: 4x4 windows
    "lime": {"samples": 64},
    "meaningful_perturbation": {"iterations": 20},
}
HEAVY = {"integrated_gradients", "smoothgrad", "occlusion", "lime", "meaningful_perturbation"}


def forward_backward(model, x, target):
    x = x.detach().requires_grad_(True)
    model(x).gather(1, target[:, None]).sum().backward()
    return x.grad


def direct_calls(model, x, target, size: int) -> dict[str, Callable[[], object]]:
    """The same computation through the upstream library, without xaikit."""
    import captum.attr as ca
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonGammaBox

    spec = xk.model_spec(model)
    low, high = spec.low.expand_as(x), spec.high.expand_as(x)

    def zennit_lrp():
        composite = EpsilonGammaBox(low=low, high=high)
        with Gradient(model=model, composite=composite) as attributor:
            onehot = torch.zeros(len(x), len(spec.classes)).scatter_(1, target[:, None], 1.0)
            _, relevance = attributor(x, lambda out: onehot * out.detach())
        return relevance

    window = size // 4
    return {
        "gradient": lambda: forward_backward(model, x, target),
        "integrated_gradients": lambda: ca.IntegratedGradients(model).attribute(
            x, target=target, n_steps=16, method="gausslegendre",
            internal_batch_size=max(len(x), (16 // len(x)) * len(x))),  # xk's memory bound
        "guided_backprop": lambda: ca.GuidedBackprop(model).attribute(x, target=target),
        "deconvnet": lambda: ca.Deconvolution(model).attribute(x, target=target),
        "gradcam": lambda: ca.LayerGradCam(model, model.features[29]).attribute(   # xk's default
            x, target=target, relu_attributions=True),
        "deeplift": lambda: ca.DeepLift(model).attribute(x, target=target),
        "lrp": zennit_lrp,
        "occlusion": lambda: ca.Occlusion(model).attribute(
            x, target=target, sliding_window_shapes=(3, window, window),
            strides=(3, window, window)),
    }


def run(model_name: str, batch: int, methods: list[str], repeats: int) -> None:
    model = xk.load_model("vgg16-shapes" if model_name == "shapes" else "vgg16-untrained")
    size = xk.model_spec(model).input_size
    torch.manual_seed(0)
    x = xk.preprocess(torch.rand(batch, 3, size, size), model)  # valid pixels (z^B needs them)
    target = torch.arange(batch) % len(xk.class_names(model))
    base = median_time(lambda: forward_backward(model, x, target), repeats)
    with torch.no_grad():
        forward = median_time(lambda: model(x), repeats)
    direct = direct_calls(model, x, target, size)
    print(f"\n{model_name}, batch {batch}, {size}x{size}: forward {forward * 1e3:.1f} ms, "
          f"forward+backward {base * 1e3:.1f} ms (median of {repeats})")
    print(f"{'method':<24}{'cost / (fwd+bwd)':>18}{'xk / direct':>14}")
    for method in methods:
        options = dict(SETTINGS[method])
        if method == "occlusion":
            options = {"window": size // 4, "stride": size // 4}
        reps = max(1, repeats // 2) if method in HEAVY else repeats
        t = median_time(lambda: xk.explain(model, x, target, method, **options), reps)
        ratio = ""
        if method in direct:
            ratio = f"{t / median_time(direct[method], reps):.3f}"
        print(f"{method:<24}{t / base:>18.2f}{ratio:>14}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="shapes,vgg16")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--methods", default=",".join(SETTINGS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # captum warns on every call
    torch.set_grad_enabled(True)
    methods = args.methods.split(",")
    unknown = set(methods) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}")
    for model_name in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            run(model_name, batch, methods, args.repeats)


if __name__ == "__main__":
    main()

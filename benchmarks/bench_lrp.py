"""Time LRP on VGG-16 (random weights, 224x224, batch 1, CPU) against a forward pass.

Prints the median of ``--repeat`` interleaved runs of: a forward pass, forward+backward (the plain
gradient), ``xk.explain(..., "lrp", composite="vgg16")`` and zennit's ``EpsilonGammaBox``
composite called directly, and each one's ratio to the forward pass. The design asks for the
LRP composite within 2x of the gradient (design.md, "Pitfalls measured on this stack").

Run: ``python benchmarks/bench_lrp.py [--repeat 5] [--threads N]``.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from zennit.attribution import Gradient
from zennit.composites import EpsilonGammaBox

import xaikit as xk


def median_times(cases: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median wall time of each case over ``repeat`` rounds, after one warm-up round.

    The cases take turns within each round, so a change in the machine's load hits them all.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(repeat + 1):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            if round_:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = xk.load_model("vgg16-untrained").requires_grad_(False)
    spec = model.xaikit_spec
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    x = (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    target = 0
    onehot = F.one_hot(torch.tensor([target]), 1000).float()
    composite = EpsilonGammaBox(low=spec.low.expand_as(x), high=spec.high.expand_as(x))

    def forward():
        with torch.no_grad():
            return model(x)

    def gradient():
        leaf = x.clone().requires_grad_(True)
        return torch.autograd.grad(model(leaf)[0, target], leaf)[0]

    def xk_lrp():
        return xk.explain(model, x, target, "lrp", composite="vgg16")

    def zennit_egb():
        with Gradient(model, composite) as attributor:
            return attributor(x.clone().requires_grad_(True), lambda out: onehot * out.detach())[1]

    cases = {"forward": forward, "gradient (fwd+bwd)": gradient,
             "xk lrp composite='vgg16'": xk_lrp, "zennit EpsilonGammaBox": zennit_egb}
    times = median_times(cases, args.repeat)
    base, grad = times["forward"], times["gradient (fwd+bwd)"]
    print(f"VGG-16 (random weights), 1x3x224x224, CPU, {torch.get_num_threads()} threads, "
          f"median of {args.repeat}")
    print(f"{'method':28s} {'seconds':>8s} {'x forward':>10s} {'x gradient':>11s}")
    for name, seconds in times.items():
        print(f"{name:28s} {seconds:8.3f} {seconds / base:10.2f} {seconds / grad:11.2f}")


if __name__ == "__main__":
    main()

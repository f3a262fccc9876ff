"""Time LRP on VGG-16 (random weights, 224x224, CPU) against a gradient pass at batch 1, 8, 16.

For each batch size, the cases take turns within each of ``--repeat`` rounds (after one warm-up
round): a forward pass, ``xk.explain(..., "gradient")`` and
``xk.explain(..., "lrp", composite="vgg16")``; at batch 1 also zennit's ``EpsilonGammaBox``
composite called directly (``--zennit-batches`` to change). Printed: the median time of each
case, and the LRP/gradient ratio as the median of the per-round ratios (the two ran
back to back, so a change in the machine's load hits both). The target is <= 1.5x a gradient
pass at batch 8 and 16 (evaluation and selection run batches).

Run: ``python benchmarks/bench_lrp.py [--repeat 3] [--batches 1 8 16] [--threads N]``
(about 3 minutes on 2 threads).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

os.environ.setdefault("XAIKIT_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from zennit.attribution import Gradient  # noqa: E402
from zennit.composites import EpsilonGammaBox  # noqa: E402

import xaikit as xk  # noqa: E402


def interleaved_times(cases: dict[str, Callable[[], object]], repeat: int
                      ) -> dict[str, list[float]]:
    """Wall times of each case over ``repeat`` rounds, after one warm-up round.

    The cases take turns within each round, so a change in the machine's load hits them all.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(repeat + 1):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


def batch_input(model, n: int) -> torch.Tensor:
    spec = model.xaikit_spec
    x = torch.rand(n, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    return (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--zennit-batches", type=int, nargs="*", default=[1])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = xk.load_model("vgg16-untrained").requires_grad_(False)
    spec = model.xaikit_spec
    rows = []
    for n in args.batches:
        x = batch_input(model, n)
        target = torch.arange(n) % 1000

        def forward():
            with torch.no_grad():
                return model(x)

        def gradient():
            return xk.explain(model, x, target, "gradient")

        def xk_lrp():
            return xk.explain(model, x, target, "lrp", composite="vgg16")

        cases = {"forward": forward, "gradient": gradient, "lrp": xk_lrp}
        if n in args.zennit_batches:
            composite = EpsilonGammaBox(low=spec.low.expand_as(x), high=spec.high.expand_as(x))
            onehot = F.one_hot(target, 1000).float()

            def zennit_egb():
                with Gradient(model, composite) as attributor:
                    return attributor(x.clone().requires_grad_(True),
                                      lambda out: onehot * out.detach())[1]

            cases["zennit"] = zennit_egb
        times = interleaved_times(cases, args.repeat)
        med = {name: statistics.median(t) for name, t in times.items()}
        ratio = statistics.median(l / g for l, g in zip(times["lrp"], times["gradient"]))
        zen = (statistics.median(z / l for z, l in zip(times["zennit"], times["lrp"]))
               if "zennit" in times else None)
        rows.append((n, med, ratio, zen))
        print(f"batch {n:3d} done", flush=True)
    print(f"\nVGG-16 (random weights), Nx3x224x224, CPU, {torch.get_num_threads()} threads, "
          f"median of {args.repeat} interleaved rounds")
    print(f"{'batch':>5s} {'forward ms':>11s} {'gradient ms':>12s} {'lrp ms':>9s} "
          f"{'lrp/gradient':>13s} {'zennit ms':>10s} {'zennit/lrp':>11s}")
    for n, med, ratio, zen in rows:
        zennit = (f"{1e3 * med['zennit']:10.0f} {zen:11.2f}" if zen is not None
                  else f"{'-':>10s} {'-':>11s}")
        print(f"{n:5d} {1e3 * med['forward']:11.0f} {1e3 * med['gradient']:12.0f} "
              f"{1e3 * med['lrp']:9.0f} {ratio:13.2f} {zennit}")


if __name__ == "__main__":
    main()

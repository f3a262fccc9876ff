"""The metrics Quantus has and xaikit added (issue 15): xaikit and Quantus side by side.

For the gradient explainer on ``vgg16-shapes`` and 32 shapes images it prints, from one run,
the median time of

- ``local_lipschitz`` against ``quantus.LocalLipschitzEstimate`` (Gaussian noise, std 0.1,
  ``normalise=False``) and ``max_sensitivity`` against ``quantus.MaxSensitivity`` (uniform noise
  in ``[-0.2, 0.2]``), with the same number of perturbations (``--perturbations``, Quantus's
  ``nr_samples``): the same ``32 (K + 1)`` explanations, which xaikit computes in
  ``ceil(32 (K + 1) / chunk)`` calls of :func:`xaikit.explain` (the unperturbed batch
  included) and Quantus in ``K + 1`` calls of the batch;
- ``bare``: those ``32 (K + 1)`` explanations alone, in xaikit's chunks (the floor);
- ``sparseness`` and ``complexity`` against ``quantus.Sparseness`` / ``quantus.Complexity``
  on the same ``(N, 1, H, W)`` gradient maps;

and, for each pair, the largest relative difference of the scores on the same inputs (for the
two robustness metrics with Quantus replaying xaikit's perturbations, ``--check`` of them;
Quantus's own noise comes from numpy's global generator). Quantus is timed as it is used: its
own noise, its own loop. Machines are shared and noisy: medians of ``--repeats`` rounds (the
three timed in turn within a round), ratios only. The work is the same, so the ratio is what
one explanation call costs beyond its images (thread synchronisation, worst on a loaded
machine; Python and numpy conversions) times the calls saved: it is largest with several
threads on a busy machine and near 1 on one idle thread. ``sparseness`` and ``complexity``
(xaikit and Quantus timed in turn, too) are a few passes over 32 x 12544 values: a few ms on
one thread, where each of torch's parallel passes can wait for a descheduled thread on a
loaded machine (tens of ms each); ``--threads 1`` times the work itself.

    python benchmarks/bench_metrics.py                          # K = 20, 3 rounds (1-5 min)
    python benchmarks/bench_metrics.py --perturbations 200 --repeats 1   # Quantus's default K
    python benchmarks/bench_metrics.py --threads 1                      # no thread contention
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings

import numpy as np
import torch

import xaikit as xk

ev = xk.evaluation

RADIUS = {"local_lipschitz": 0.1, "max_sensitivity": 0.2}


def interleaved(fns, repeats: int) -> list[float]:
    """Median wall times of ``fns``, timed in turn within each round after one warm-up round
    (as :func:`timing.median_time`, but interleaved so that a change of load hits all of them)."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def gradient_explainer(model, inputs, targets, **kwargs):
    x = torch.as_tensor(inputs, dtype=torch.float32)
    attr = xk.explain(model, x, torch.as_tensor(targets), "gradient")
    return attr.sum(1, keepdim=True).numpy()


def replay(x: torch.Tensor, name: str, k: int, seed: int = 0):
    """A Quantus ``perturb_func`` adding xaikit's draws (tests/test_evaluation_robustness.py)."""
    generator = torch.Generator().manual_seed(seed)
    radius = RADIUS[name]
    if name == "max_sensitivity":
        noise = [torch.empty(x.shape).uniform_(-radius, radius, generator=generator)
                 for _ in range(k)]
    else:
        noise = [torch.empty(x.shape).normal_(0, radius, generator=generator) for _ in range(k)]
    calls = iter(noise)

    def perturb(arr, indices, **kwargs):
        return arr + next(calls).reshape(arr.shape).numpy()

    return perturb


def quantus_metric(q, name: str, k: int, perturb_func=None):
    if name == "local_lipschitz":
        return q.LocalLipschitzEstimate(nr_samples=k, perturb_std=RADIUS[name], normalise=False,
                                        abs=False, perturb_func=perturb_func,
                                        disable_warnings=True)
    return q.MaxSensitivity(nr_samples=k, lower_bound=RADIUS[name], normalise=False, abs=False,
                            perturb_func=perturb_func, disable_warnings=True)


def robustness(name: str, model, x, t, k: int, check: int, repeats: int) -> None:
    q = ev.import_quantus()
    ours_fn = getattr(ev, name)
    n = len(x)
    chunk = max(n, 2 ** 22 // x[0].numel())  # robustness_ratios' default chunk_size
    rows = torch.arange(n * (k + 1)) % n       # x and its K copies, as xaikit explains them
    calls = math.ceil(len(rows) / chunk)

    def ours():
        return ours_fn(model, x, t, "gradient", radius=RADIUS[name], perturbations=k)

    def quantus():
        return quantus_metric(q, name, k)(model=model, x_batch=x.numpy(), y_batch=t.numpy(),
                                          a_batch=None, explain_func=gradient_explainer,
                                          channel_first=True, batch_size=n)

    generator = torch.Generator().manual_seed(0)
    noise = 0.01 * torch.randn(x.shape, generator=generator)

    def bare():
        for first in range(0, len(rows), chunk):
            job = rows[first:first + chunk]
            xk.explain(model, x[job] + noise[job], t[job], "gradient")

    # agreement on the same perturbations (Quantus replays xaikit's draws)
    mine = ours_fn(model, x, t, "gradient", radius=RADIUS[name], perturbations=check)
    theirs = np.array(quantus_metric(q, name, check, replay(x, name, check))(
        model=model, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=None,
        explain_func=gradient_explainer, channel_first=True, batch_size=n))
    diff = np.abs(mine.numpy() - theirs) / np.abs(theirs)
    t_bare, t_ours, t_q = interleaved((bare, ours, quantus), repeats)
    quantus_label = {"local_lipschitz": "LocalLipschitzEstimate",
                     "max_sensitivity": "MaxSensitivity"}[name]
    print(f"\n{name}, vgg16-shapes, {n} images, gradient, {k} perturbations: {n * (k + 1)} "
          f"explanations (median of {repeats}, {torch.get_num_threads()} threads)")
    print(f"  {'bare (' + str(calls) + ' explain calls)':<44}{t_bare:8.3f} s")
    print(f"  {'xaikit ' + name + ' (' + str(calls) + ' calls)':<44}{t_ours:8.3f} s   "
          f"xaikit / bare    {t_ours / t_bare:6.2f}")
    print(f"  {'quantus ' + quantus_label + ' (' + str(k + 1) + ' calls)':<44}{t_q:8.3f} s   "
          f"quantus / xaikit {t_q / t_ours:6.2f}")
    print(f"  largest relative difference, same {check} perturbations: {diff.max():.1e}",
          flush=True)


def complexity(model, x, t, repeats: int) -> None:
    q = ev.import_quantus()
    maps = xk.explain(model, x, t, "gradient").sum(1, keepdim=True)
    print(f"\nsparseness / complexity, {len(x)} gradient maps {tuple(maps.shape[1:])} "
          f"(median of {repeats}, {torch.get_num_threads()} threads)")
    for name, metric in (("sparseness", q.Sparseness), ("complexity", q.Complexity)):
        fn = getattr(ev, name)

        def quantus(metric=metric):
            return metric(disable_warnings=True)(
                model=model, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=maps.numpy().copy(),
                channel_first=True)

        def ours(fn=fn):
            return fn(maps)

        diff = np.abs(ours().numpy() - np.array(quantus())) / np.abs(np.array(quantus()))
        t_ours, t_q = interleaved((ours, quantus), repeats)
        print(f"  {name:<10} xaikit {t_ours * 1e3:8.2f} ms   quantus {t_q * 1e3:8.2f} ms   "
              f"quantus / xaikit {t_q / t_ours:7.1f}   largest relative difference "
              f"{diff.max():.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="local_lipschitz,max_sensitivity,complexity")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--perturbations", type=int, default=20)
    parser.add_argument("--check", type=int, default=2,
                        help="perturbations of the agreement check (Quantus replays ours)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for both (default: torch's own choice)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model = xk.load_model("vgg16-shapes")
    batch = xk.data.make_shapes(args.images, seed=xk.data.TEST_SEED)
    x, t = xk.preprocess(batch.images, model), batch.labels
    parts = args.parts.split(",")
    for name in ("local_lipschitz", "max_sensitivity"):
        if name in parts:
            robustness(name, model, x, t, args.perturbations, args.check, args.repeats)
    if "complexity" in parts:
        complexity(model, x, t, args.repeats)


if __name__ == "__main__":
    main()

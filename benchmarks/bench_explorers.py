"""Redraw time of the interactive explorers on ``vgg16-shapes``: a new setting (cache miss:
attribution + render), a setting seen before (cache hit: render only), and one plain
gradient pass as the yardstick, side by side from one run (medians; machines are shared, so
read the ratios). The target of issue 5 is a redraw under one second after a slider move.

    python benchmarks/bench_explorers.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import itertools

from timing import median_time

import xaikit as xk
from xaikit import explorers

# (explorer, the control that is moved)
MOVES = [
    (explorers.occlusion_explorer, "window"),
    (explorers.ig_explorer, "steps"),
    (explorers.smoothgrad_explorer, "noise"),
    (explorers.lrp_explorer, "gamma"),
    (explorers.gradcam_explorer, "layer"),
]


def _values(control) -> list:
    if hasattr(control, "options") and control.options:
        return [o[1] if isinstance(o, tuple) else o for o in control.options]
    step = control.step
    return [round(control.min + k * step, 6) for k in range(int((control.max - control.min) / step) + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    xk.setup(0)
    model = xk.load_model("vgg16-shapes")
    ex = xk.example_batch(model, n=1)
    t_grad = median_time(lambda: xk.explain(model, ex.x, ex.labels, "gradient"), args.repeats)
    print(f"one gradient pass: {t_grad * 1e3:.1f} ms (the unit of the ratios)")
    print(f"{'explorer':<22} {'control':<8} {'new setting':>12} {'seen before':>12} "
          f"{'render only':>12} {'new/gradient':>13}")
    for factory, name in MOVES:
        explorer = factory(model)
        control = explorer.controls[name]
        others = [v for v in _values(control) if v != control.value]
        fresh = iter(others)
        # every call moves the control to a value not seen before: a cache miss
        t_new = median_time(lambda: setattr(control, "value", next(fresh)),
                            min(args.repeats, len(others) - 1))
        cycle = itertools.cycle(_values(control)[:2])
        for v in _values(control)[:2]:
            control.value = v                                       # fill the cache
        t_seen = median_time(lambda: setattr(control, "value", next(cycle)), args.repeats)
        t_render = median_time(explorer.render, args.repeats)
        print(f"{factory.__name__:<22} {name:<8} {t_new * 1e3:>9.0f} ms {t_seen * 1e3:>9.0f} ms "
              f"{t_render * 1e3:>9.0f} ms {t_new / t_grad:>12.1f}x")


if __name__ == "__main__":
    main()

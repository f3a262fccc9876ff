"""How long ``xk.load_model("vgg16-shapes")`` takes (import excluded): median of 20 loads,
next to one forward pass of a 64-image batch for scale. Run: ``python benchmarks/bench_load.py``."""
import statistics
import time

import torch

import xaikit as xk


def median_seconds(fn, repeats: int = 20) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    load = median_seconds(lambda: xk.load_model("vgg16-shapes"))
    model = xk.load_model("vgg16-shapes")
    x = xk.preprocess(xk.data.make_shapes(64).images, model)
    with torch.no_grad():
        forward = median_seconds(lambda: model(x), repeats=10)
    print(f"load_model('vgg16-shapes'): median {load * 1000:.1f} ms over 20 loads")
    print(f"forward pass, 64 images:    median {forward * 1000:.1f} ms "
          f"(load / forward = {load / forward:.2f})")


if __name__ == "__main__":
    main()

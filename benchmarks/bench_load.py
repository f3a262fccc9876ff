"""How long ``xk.load_model("vgg16-shapes")`` takes (import excluded): median of 20 loads,
next to one forward pass of a 64-image batch for scale. Run: ``python benchmarks/bench_load.py``."""
import torch
from timing import median_time

import xaikit as xk


def main() -> None:
    load = median_time(lambda: xk.load_model("vgg16-shapes"), repeats=20)
    model = xk.load_model("vgg16-shapes")
    x = xk.preprocess(xk.data.make_shapes(64).images, model)
    with torch.no_grad():
        forward = median_time(lambda: model(x), repeats=10)
    print(f"load_model('vgg16-shapes'): median {load * 1000:.1f} ms over 20 loads")
    print(f"forward pass, 64 images:    median {forward * 1000:.1f} ms "
          f"(load / forward = {load / forward:.2f})")


if __name__ == "__main__":
    main()

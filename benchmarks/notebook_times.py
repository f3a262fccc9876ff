"""Wall time of each notebook on a chosen model: the numbers of notebooks/README.md's table.

Runs every numbered notebook (or those given) in a fresh kernel, one after the other, with
``XAIKIT_MODEL`` set (default ``vgg16-untrained``: torchvision's VGG-16 at 224 px with random
weights, the same cost as the ImageNet weights, which cannot be downloaded offline), and prints
per notebook the wall time, the kernel's share and its three slowest cells, then the total::

    python benchmarks/notebook_times.py                       # every notebook, VGG-16 at 224
    python benchmarks/notebook_times.py 01 04 --model vgg16-shapes

Nothing is written back: the executed copies are discarded. Times depend on the machine and
its load; run nothing else meanwhile and quote the machine with them. The budget of each
notebook (``xk.budget``, xaikit/budgets.py) is what keeps VGG-16 within about three minutes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def cell_seconds(cell) -> float:
    """Seconds between a code cell's start and its reply, from nbclient's timing metadata."""
    from datetime import datetime

    meta = cell.get("metadata", {}).get("execution", {})
    start, end = meta.get("iopub.execute_input"), meta.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))   # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def run(path: Path, timeout: int) -> tuple[float, list[tuple[int, float]]]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - start
    cells = [(i, cell_seconds(c)) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    return wall, sorted(cells, key=lambda ic: -ic[1])[:3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="two-digit numbers (default: all)")
    parser.add_argument("--model", default="vgg16-untrained")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args()
    os.environ.update(XAIKIT_MODEL=args.model, XAIKIT_OFFLINE="1")
    os.environ.setdefault("XAIKIT_DEVICE", "cpu")
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if p.name[:2] in args.notebooks]
    print(f"model {args.model}, {os.cpu_count()} CPUs, XAIKIT_DEVICE={os.environ['XAIKIT_DEVICE']}")
    print("| notebook | seconds | slowest cells (index: seconds) |\n| --- | --- | --- |")
    times = []
    for path in paths:
        wall, slow = run(path, args.timeout)
        times.append(wall)
        print(f"| {path.stem} | {wall:.0f} | " + ", ".join(f"{i}: {s:.0f}" for i, s in slow) + " |",
              flush=True)
    print(f"total {sum(times):.0f} s ({sum(times) / 60:.1f} min); slowest {max(times):.0f} s; "
          f"median {statistics.median(times):.0f} s")


if __name__ == "__main__":
    main()

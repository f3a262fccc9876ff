"""The one timing helper of the benchmarks: the median of repeated runs after a warm-up."""
import statistics
import time
from typing import Callable


def median_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time in seconds of ``repeats`` calls of ``fn`` after one warm-up call
    (allocations, hook set-up caches). Machines are shared: compare medians, as ratios."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)

"""Timing helper shared by the benchmark scripts."""
from __future__ import annotations

import time


def best_of(repeats: int, fn) -> float:
    """Seconds of the fastest of ``repeats`` calls: other processes on the 2 cores only ever slow a run down."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)

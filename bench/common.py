"""Timing helpers for bench/: median and spread of repeated calls, and the machine they ran on.

Every benchmark module exposes `benchmarks() -> list[(name, callable)]`; each callable returns
a dict (its figures). `python -m bench.run` prints one JSON line per benchmark.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def timeit(fn: Callable[[], object], repeat: int = 50, warmup: int = 3) -> dict:
    """Run `fn` warmup + repeat times; milliseconds per call: median, p10, p90, p99, min, max."""
    for _ in range(warmup):
        fn()
    t = np.empty(repeat)
    for k in range(repeat):
        t0 = time.perf_counter()
        fn()
        t[k] = (time.perf_counter() - t0) * 1e3
    return spread(t)


def spread(ms) -> dict:
    """Median and spread of timings in milliseconds: n, median, p10, p90, p99, min, max."""
    t = np.asarray(ms, dtype=np.float64)
    return {
        "n": len(t),
        "median_ms": float(np.median(t)),
        "p10_ms": float(np.percentile(t, 10)),
        "p90_ms": float(np.percentile(t, 90)),
        "p99_ms": float(np.percentile(t, 99)),
        "min_ms": float(t.min()),
        "max_ms": float(t.max()),
    }

"""Wall-clock timing of a callable: warmed up, CUDA-synchronized, median over blocks of runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Timing:
    median_s: float
    iqr_s: float
    runs: int


def measure(fn: Callable[[], Any], min_run_time: float = 0.3, device: str = "cpu") -> Timing:
    """Median time of fn() over blocks of runs that last `min_run_time` seconds in all."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def block(number: int) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        return (time.perf_counter() - start) / number

    # Warm up (lazy initialization, allocator, thread pool, Triton compilation) for >= 3 calls and 20 ms.
    warm, calls = 0.0, 0
    while calls < 3 or warm < 0.02:
        warm += block(1)
        calls += 1
    number = max(1, int(0.01 / max(block(1), 1e-9)))  # blocks of ~10 ms, so the timer's cost vanishes
    times, spent = [], 0.0
    while spent < min_run_time or len(times) < 5:
        times.append(block(number))
        spent += times[-1] * number
    q = statistics.quantiles(times, n=4)
    return Timing(median_s=statistics.median(times), iqr_s=q[2] - q[0], runs=len(times) * number)

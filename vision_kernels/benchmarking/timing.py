"""Wall-clock timing of a callable with torch.utils.benchmark (CUDA-synchronized, warmed up)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    median_s: float
    iqr_s: float
    runs: int


def measure(fn: Callable[[], Any], min_run_time: float = 0.3) -> Timing:
    """Median time of fn() over blocks of runs lasting `min_run_time` seconds in all."""
    import torch
    from torch.utils.benchmark import Timer

    fn()  # warm up: lazy initialization, allocator, Triton compilation
    # Timer runs on 1 thread unless told otherwise; measure with the threads the process uses.
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return Timing(median_s=m.median, iqr_s=m.iqr, runs=len(m.times) * m.number_per_run)

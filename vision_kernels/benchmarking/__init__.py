"""Benchmark cases shared by the pytest-benchmark suites (benchmarks/), `vk demo` and `vk bench`:
each case names the inputs, the call into vision_kernels and the torch/torchvision call a user
would otherwise make, so every report compares the same things."""

from vision_kernels.benchmarking.cases import Case, cases_for
from vision_kernels.benchmarking.environment import environment, machine_tag
from vision_kernels.benchmarking.timing import Timing, measure

__all__ = ["Case", "Timing", "cases_for", "environment", "machine_tag", "measure"]

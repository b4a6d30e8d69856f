"""Instance norm (+ ReLU) x backend x CycleGAN shape, forward and forward+backward, next to
F.instance_norm + relu and torch.compile of it, in one run (make bench)."""

from __future__ import annotations

import pytest
import torch
from conftest import bench_bandwidth, bench_case, implementations

from vision_kernels import ops
from vision_kernels.benchmarking import cases_for

CASES = cases_for(family="instance_norm")


@pytest.mark.parametrize("case,impl", list(implementations(CASES)))
def test_instance_norm(benchmark, request, case, impl, device):
    bench_case(benchmark, request, case, impl, device)


@pytest.mark.parametrize("impl", ["copy", "native", "triton"])
def test_instance_norm_bandwidth(benchmark, impl, device):
    """GPU target: the forward at >= 85% of a device copy's bandwidth in the same run (reading x
    and writing y once each: 2 x 64 MB here)."""
    if device != "cuda":
        pytest.skip("a GPU memory-bandwidth target")
    x = torch.randn(16, 64, 128, 128, device="cuda")
    bench_bandwidth(
        benchmark,
        device,
        impl,
        "instance_norm",
        "in-bandwidth-16x64x128x128",
        "[16,64,128,128]",
        2 * x.nbytes,
        x,
        lambda backend: ops.instance_norm(x, activation="relu", backend=backend),
    )

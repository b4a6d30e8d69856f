"""Each box op x backend x shape, next to the torchvision call it replaces, in one run.

make bench                          # everything, then the ratio table (benchmarks/report.py)
pytest benchmarks --benchmark-only --op nms --device cpu
"""

from __future__ import annotations

import pytest
import torch
from conftest import bench_bandwidth, bench_case, implementations

from vision_kernels.benchmarking import cases_for

CASES = cases_for(family="boxes")


@pytest.mark.parametrize("case,impl", list(implementations(CASES)))
def test_box_ops(benchmark, request, case, impl, device):
    bench_case(benchmark, request, case, impl, device)


@pytest.mark.parametrize("impl", ["copy", "native", "triton"])
def test_iou_output_bandwidth(benchmark, impl, device):
    """GPU target: pairwise IoU writes its [4000, 4000] output at >= 80% of the bandwidth of a
    plain device copy measured in the same run (report.py prints the percentages)."""
    if device != "cuda":
        pytest.skip("a GPU memory-bandwidth target")
    from vision_kernels import ops
    from vision_kernels.benchmarking.cases import random_boxes

    a, b = random_boxes(4000, seed=1).cuda(), random_boxes(4000, seed=2).cuda()
    bench_bandwidth(
        benchmark,
        device,
        impl,
        "box_iou",
        "iou-bandwidth-4000x4000",
        "[4000,4] x [4000,4]",
        4000 * 4000 * 4 + a.nbytes + b.nbytes,
        torch.empty(4000 * 4000, device="cuda"),
        lambda backend: ops.box_iou(a, b, backend=backend),
    )

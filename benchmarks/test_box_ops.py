"""Each box op x backend x shape, next to the torchvision call it replaces, in one run.

make bench                          # everything, then the ratio table (benchmarks/report.py)
pytest benchmarks --benchmark-only --op nms --device cpu
"""

from __future__ import annotations

import pytest
import torch

from vision_kernels import backends
from vision_kernels.benchmarking import cases_for

BACKENDS = ["native", "triton", "reference"]
CASES = cases_for()


def _implementations():
    for case in CASES:
        for baseline in case.baselines:
            yield pytest.param(case, baseline, id=f"{case.name}-{baseline.replace(' ', '_')}")
        for backend in BACKENDS:
            yield pytest.param(case, backend, id=f"{case.name}-{backend}")


@pytest.mark.parametrize("case,impl", list(_implementations()))
def test_box_ops(benchmark, request, case, impl, device):
    only = request.config.getoption("--op")
    if only and case.op not in only:
        pytest.skip(f"--op {only}")
    if impl in BACKENDS:
        if impl == "triton" and device == "cpu":
            pytest.skip("Triton on CPU runs in its interpreter: correct, but its speed means nothing")
        reason = backends.unavailable_reason(impl, case.op, device)
        if reason:
            pytest.skip(reason)
    inputs = case.make_inputs(torch.device(device))
    fn = case.baselines[impl] if impl in case.baselines else lambda *a: case.run(impl, *a)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def call():
        fn(*inputs)
        sync()

    benchmark.group = f"{case.name} [{device}]"
    benchmark.extra_info.update(
        op=case.op,
        case=case.name,
        shape=case.shape,
        dtype=case.dtype,
        device=device,
        impl=impl,
        baseline=next(iter(case.baselines)),
        kind="baseline" if impl in case.baselines else "backend",
    )
    benchmark(call)


@pytest.mark.parametrize("impl", ["copy", "native", "triton"])
def test_iou_output_bandwidth(benchmark, impl, device):
    """GPU target: pairwise IoU writes its [4000, 4000] output at >= 80% of the bandwidth of a
    plain device copy measured in the same run (report.py prints the percentages)."""
    if device != "cuda":
        pytest.skip("a GPU memory-bandwidth target")
    if impl != "copy" and backends.unavailable_reason(impl, "box_iou", device):
        pytest.skip(backends.unavailable_reason(impl, "box_iou", device))
    from vision_kernels import ops
    from vision_kernels.benchmarking.cases import random_boxes

    a, b = random_boxes(4000, seed=1).cuda(), random_boxes(4000, seed=2).cuda()
    if impl == "copy":
        src = torch.empty(4000 * 4000, device="cuda")
        dst = torch.empty_like(src)
        moved = 2 * src.nbytes  # read + write

        def fn():
            dst.copy_(src)
    else:
        moved = 4000 * 4000 * 4 + a.nbytes + b.nbytes

        def fn():
            ops.box_iou(a, b, backend=impl)

    def call():
        fn()
        torch.cuda.synchronize()

    benchmark.group = "iou-output-bandwidth [cuda]"
    benchmark.extra_info.update(
        op="box_iou",
        case="iou-bandwidth-4000x4000",
        shape="[4000,4] x [4000,4]",
        dtype="float32",
        device=device,
        impl=impl,
        baseline="copy",
        kind="bandwidth",
        bytes=moved,
    )
    benchmark(call)

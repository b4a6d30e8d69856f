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

"""pytest-benchmark setup: devices to run on, and the environment recorded with every result."""

from __future__ import annotations

import pytest
import torch

from vision_kernels import backends
from vision_kernels.benchmarking import Case, environment

BACKENDS = ["native", "triton", "reference"]

# The torch.compile baselines compile the same code (nn.Sequential.forward, one function) once per
# shape: raise dynamo's limit so none of them silently falls back to eager.
torch._dynamo.config.recompile_limit = 256
torch._dynamo.config.accumulated_recompile_limit = 4096


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        action="append",
        choices=["cpu", "cuda"],
        help="device(s) to benchmark on (default: cpu, and cuda when present)",
    )
    parser.addoption("--op", action="append", help="benchmark only these ops (e.g. box_iou, nms)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        devices = metafunc.config.getoption("--device") or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
        metafunc.parametrize("device", devices)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    machine_info["vision_kernels"] = environment()


def implementations(cases: list[Case]):
    """(case, implementation) parameters: each baseline, then each backend, plugins' included."""
    for case in cases:
        for baseline in case.baselines:
            yield pytest.param(case, baseline, id=f"{case.name}-{baseline.replace(' ', '_')}")
        for backend in [*BACKENDS, *backends.plugin_backends(case.op)]:
            yield pytest.param(case, backend, id=f"{case.name}-{backend}")


def bench_case(benchmark, request: pytest.FixtureRequest, case: Case, impl: str, device: str, extra=None) -> None:
    """Times one implementation of a case; the extra info is what benchmarks/report.py reads.
    `extra(inputs)`, when given, adds more of it (e.g. the memory saved for backward)."""
    only = request.config.getoption("--op")
    if only and case.op not in only:
        pytest.skip(f"--op {only}")
    if impl not in case.baselines:
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
    if extra is not None:
        benchmark.extra_info.update(extra(impl, inputs))
    benchmark(call)


def bench_bandwidth(
    benchmark, device: str, impl: str, op: str, case: str, shape: str, moved_bytes: int, copy_source: torch.Tensor, run
) -> None:
    """Times `run(impl)` or, for impl "copy", a device copy of `copy_source`, in one group, so
    report.py can state each implementation's bandwidth as a share of the copy's."""
    if device != "cuda":
        pytest.skip("a GPU memory-bandwidth target")
    if impl != "copy" and backends.unavailable_reason(impl, op, device):
        pytest.skip(backends.unavailable_reason(impl, op, device))
    if impl == "copy":
        target = torch.empty_like(copy_source)
        moved_bytes = 2 * copy_source.nbytes  # read + write

        def fn():
            target.copy_(copy_source)
    else:

        def fn():
            run(impl)

    def call():
        fn()
        torch.cuda.synchronize()

    benchmark.group = f"{case} [cuda]"
    benchmark.extra_info.update(
        op=op,
        case=case,
        shape=shape,
        dtype=str(copy_source.dtype).replace("torch.", ""),
        device=device,
        impl=impl,
        baseline="copy",
        kind="bandwidth",
        bytes=moved_bytes,
    )
    benchmark(call)

"""pytest-benchmark setup: devices to run on, and the environment recorded with every result."""

from __future__ import annotations

import pytest
import torch

from vision_kernels.benchmarking import environment


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

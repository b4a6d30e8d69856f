"""Shared fixtures. Without a GPU, Triton kernels run on CPU tensors through Triton's interpreter:
TRITON_INTERPRET must be set before vision_kernels.triton modules are imported."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

# Test-only plugins (tiny families and datasets for the engine's tests): importable as vk_tiny.
PLUGINS_DIR = Path(__file__).parent / "plugins"
sys.path.insert(0, str(PLUGINS_DIR))

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from vision_kernels import backends  # noqa: E402

DEVICES = ["cpu", "cuda"]
CONCRETE_BACKENDS = ["native", "triton", "reference"]


def backend_params(op: str) -> list:
    """(backend, device) pairs for `op`, marked and skipped as needed: a CUDA case needs a GPU, a
    backend that is not available here is skipped with the reason. Backends that installed plugins
    register for `op` (the `register_kernels` hook) are tested like the built-in ones."""
    params = []
    for device in DEVICES:
        for backend in [*CONCRETE_BACKENDS, *backends.plugin_backends(op)]:
            marks = []
            if device == "cuda":
                marks.append(pytest.mark.cuda)
            if backend == "triton":
                marks.append(pytest.mark.triton)
            if device == "cuda" and not torch.cuda.is_available():
                marks.append(pytest.mark.skip(reason="needs a CUDA GPU"))
            else:
                reason = backends.unavailable_reason(backend, op, device)
                if reason is not None:
                    marks.append(pytest.mark.skip(reason=reason))
            params.append(pytest.param(backend, device, marks=marks, id=f"{backend}-{device}"))
    return params


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords and not any(m.name == "skip" for m in item.iter_markers()):
            item.add_marker(skip_cuda)


@pytest.fixture
def builtin_cli(vk_register, vk_cli, tmp_path):
    """vk_cli with the builtin plugin (the first-party families and datasets) registered; `train`
    writes under tmp_path/runs; every command must succeed (its output is the failure message)."""
    from vision_kernels import plugins as builtin

    vk_register(builtin, name="builtin")

    def run(*args):
        if args and args[0] == "train" and "--resume" not in args:
            args = (*args, "--runs-dir", str(tmp_path / "runs"))
        result = vk_cli(*args)
        assert result.exit_code == 0, result.output
        return result

    return run

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

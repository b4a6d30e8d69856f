"""Backend selection: argument, context manager, process default, VK_BACKEND, auto."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
from boxes_data import random_boxes

from vision_kernels import backends, ops


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )


@pytest.fixture
def calls(monkeypatch):
    """Records which implementation each op call reached."""
    seen = []
    original = ops.boxes._implementation

    def spy(op, backend):
        seen.append(backend)
        return original(op, backend)

    monkeypatch.setattr(ops.boxes, "_implementation", spy)
    return seen


def test_auto_on_cpu_is_native(calls):
    ops.box_iou(random_boxes(3), random_boxes(2))
    assert calls == ["native"]


def test_argument_beats_context_beats_default(calls):
    b = random_boxes(3)
    with backends.use_backend("reference"):
        ops.box_iou(b, b)
        ops.box_iou(b, b, backend="native")
        with backends.use_backend("native"):
            ops.box_iou(b, b)
        ops.box_iou(b, b)
    ops.box_iou(b, b)
    assert calls == ["reference", "native", "native", "reference", "native"]


def test_set_backend_is_process_default(calls):
    b = random_boxes(3)
    try:
        backends.set_backend("reference")
        ops.nms(b, torch.rand(3), 0.5)
        assert backends.get_backend() == "reference"
    finally:
        backends.set_backend("auto")
    ops.nms(b, torch.rand(3), 0.5)
    assert calls == ["reference", "native"]


# The built-in backends, then those installed plugins registered (the plugin template adds one).
CHOICES = r"auto, native, triton, reference( \(plugins: [^)]*\))?"


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match="backend must be one of " + CHOICES + "; got 'cuda'"):
        ops.box_iou(random_boxes(3), random_boxes(2), backend="cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        with backends.use_backend("fast"):
            pass


def test_explicit_backend_that_cannot_run_says_why(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(
        RuntimeError, match=r"backend 'triton' cannot run box_iou on cpu: Triton kernels need a CUDA device"
    ):
        ops.box_iou(random_boxes(3), random_boxes(2), backend="triton")


def test_vk_backend_environment_variable():
    code = "from vision_kernels import backends; print(backends.get_backend())"
    assert run_python(code, VK_BACKEND="reference").stdout.strip() == "reference"
    bad = run_python(code, VK_BACKEND="fastest")
    assert bad.returncode != 0
    assert re.search("VK_BACKEND must be one of " + CHOICES + "; got 'fastest'", bad.stderr)


def test_available_backends_lists_what_runs_here():
    assert backends.available_backends("box_iou", "cpu")[0] == "native"
    assert "reference" in backends.available_backends("nms", "cpu")


def test_the_choice_is_resolved_once_per_op_and_device(monkeypatch):
    """The dispatcher query costs microseconds, as much as a small op's kernel: asked once, cached."""
    asked = []
    has_kernel = torch._C._dispatch_has_kernel_for_dispatch_key

    def counting(name, key):
        asked.append(name)
        return has_kernel(name, key)

    monkeypatch.setattr(torch._C, "_dispatch_has_kernel_for_dispatch_key", counting)
    backends.clear_cache()
    first = [backends.resolve("box_iou", torch.device("cpu")) for _ in range(3)]
    assert len(set(first)) == 1
    assert asked.count("vision_kernels::box_iou") <= 1  # none when the extension is missing
    backends.resolve("box_iou", torch.device("cpu"), "reference")
    assert backends.resolve("nms", torch.device("cpu")) == first[0]
    assert asked.count("vision_kernels::box_iou") <= 1

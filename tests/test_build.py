"""build_info(), and the fallback when the extension is missing or built for another torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

import vision_kernels

# Runs the box ops after `setup`, and prints what build_info() and the warnings said.
PROBE = """
import sys, types, warnings, json
{setup}
import torch
import vision_kernels as vk
from vision_kernels import ops
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    b = torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 3.]])
    iou = ops.box_iou(b, b)
    kept = ops.nms(b, torch.tensor([0.9, 0.8]), 0.1)
    giou = ops.box_iou(b, b, "giou", aligned=True)
info = vk.build_info()
print(json.dumps({{
    "iou": iou.tolist(), "kept": kept.tolist(), "giou": giou.tolist(),
    "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
    "native": info["native"], "backends": info["backends"]["box_iou"]["cpu"],
}}))
"""


def probe(setup: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "VK_BACKEND": "auto"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


EXPECTED = {"iou": [[1.0, 1 / 7], [1 / 7, 1.0]], "kept": [0], "giou": [1.0, 1.0]}


def check_values(out: dict) -> None:
    torch.testing.assert_close(torch.tensor(out["iou"]), torch.tensor(EXPECTED["iou"]))
    assert out["kept"] == EXPECTED["kept"] and out["giou"] == EXPECTED["giou"]


def test_build_info_reports_the_build():
    info = vision_kernels.build_info()
    native = info["native"]
    assert native["loaded"] and native["reason"] is None
    assert native["torch_version"] == info["torch"]["built_against"] == info["torch"]["running"] == torch.__version__
    assert native["compiler"].startswith(("gcc", "clang"))
    assert native["openmp"] is not None, "at::parallel_for would run on one thread"
    assert native["cpu_capability"] in native["cpu_capabilities_compiled"].split(",")
    if native["cuda"]:
        assert native["cuda_architectures"] == "80-real,86-real,90-real,90-virtual"
    assert info["backends"]["box_iou"]["cpu"][0] == "native"
    json.dumps(info)  # serializable as is


def test_extension_loaded_is_the_normal_case():
    out = probe("")
    check_values(out)
    assert out["native"]["loaded"] and out["warnings"] == []


def test_missing_extension_falls_back_to_reference_with_one_warning():
    # Block both the extension and its build record, as in a source tree that was never built.
    out = probe("sys.modules['vision_kernels._C'] = None; sys.modules['vision_kernels._build_config'] = None")
    check_values(out)
    assert not out["native"]["loaded"]
    assert "not built" in out["native"]["reason"] and "make install" in out["native"]["reason"]
    assert "native" not in out["backends"] and "reference" in out["backends"]
    assert len(out["warnings"]) == 1 and "fall back to the pure-torch reference" in out["warnings"][0]


def test_extension_for_another_torch_is_refused_before_loading():
    setup = (
        "config = types.ModuleType('vision_kernels._build_config'); config.TORCH_VERSION = '2.0.0+cu118';"
        "sys.modules['vision_kernels._build_config'] = config"
    )
    out = probe(setup)
    check_values(out)
    assert not out["native"]["loaded"]
    assert f"built for torch 2.0.0+cu118 but torch {torch.__version__} is running" in out["native"]["reason"]
    assert len(out["warnings"]) == 1


def test_extension_that_fails_to_load_is_reported():
    out = probe("sys.modules['vision_kernels._C'] = None")
    check_values(out)
    assert "failed to load" in out["native"]["reason"]


def test_every_cpu_capability_matches_the_reference():
    """The CPU kernels are compiled per instruction set; run each one this machine supports."""
    code = """
import torch, vision_kernels as vk
from vision_kernels import ops, reference
g = torch.Generator().manual_seed(0)
b = torch.rand(37, 4, generator=g) * 100; b[:, 2:] += b[:, :2]
c = torch.rand(29, 4, generator=g) * 100; c[:, 2:] += c[:, :2]
for mode in ("iou", "giou", "diou", "ciou", "iof"):
    for dt in (torch.float32, torch.float64, torch.float16):
        torch.testing.assert_close(ops.box_iou(b.to(dt), c.to(dt), mode), reference.box_iou(b.to(dt), c.to(dt), mode))
        a, d = b[:29].to(dt), c.to(dt)
        torch.testing.assert_close(ops.box_iou(a, d, mode, aligned=True), reference.box_iou_aligned(a, d, mode))
s = torch.rand(37, generator=g)
assert torch.equal(ops.nms(b, s, 0.2), reference.nms(b, s, 0.2))
print(vk.build_info()["native"]["cpu_capability"])
"""
    compiled = vision_kernels.build_info()["native"]["cpu_capabilities_compiled"].split(",")
    ran = set()
    for capability in compiled:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "VK_CPU_CAPABILITY": capability},
        )
        assert result.returncode == 0, result.stderr
        ran.add(result.stdout.strip())
    assert "base" in ran and len(ran) >= 1


def configure(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """Runs only CMake's configure step of the extension (seconds, no compilation)."""
    bin_dir = os.path.dirname(sys.executable)
    cmake = os.path.join(bin_dir, "cmake") if os.path.exists(os.path.join(bin_dir, "cmake")) else "cmake"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run(
        [cmake, "-S", root, "-B", str(tmp_path), f"-DPython_EXECUTABLE={sys.executable}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**{k: v for k, v in os.environ.items() if k != "CUDACXX"}, "PATH": f"{bin_dir}:/usr/bin:/bin"},
    )


def test_vk_cuda_on_without_nvcc_fails_loudly(tmp_path):
    result = configure(tmp_path, "-DVK_CUDA=ON", "-DVK_NVCC_SEARCH_PATHS=/nonexistent")
    assert result.returncode != 0
    assert "VK_CUDA=ON but no CUDA compiler (nvcc) was found" in result.stderr


def test_vk_cuda_auto_without_nvcc_and_off_skip_cuda(tmp_path):
    auto = configure(tmp_path / "auto", "-DVK_CUDA=AUTO", "-DVK_NVCC_SEARCH_PATHS=/nonexistent")
    assert auto.returncode == 0, auto.stderr
    assert "CUDA kernels skipped: no CUDA compiler (nvcc) was found" in auto.stdout
    off = configure(tmp_path / "off", "-DVK_CUDA=OFF")
    assert off.returncode == 0, off.stderr
    assert "CUDA kernels skipped: VK_CUDA=OFF" in off.stdout

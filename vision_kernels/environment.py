"""One description of where something ran: versions, commit, CPU/GPU, threads, how the native
extension was built, and which kernel backend serves each op. Benchmark results and run
directories (environment.json) both record `environment()`; `build_info()` is the extension's part
of it."""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: Any = None) -> dict[str, Any]:
    """Versions, commit, CPU/GPU and threads; with `device`, also that device and the backend that
    `auto` picks for each op on it."""
    import vision_kernels
    from vision_kernels import backends

    info = vision_kernels.build_info()
    native = info["native"]
    env: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "vision_kernels": vision_kernels.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "triton": _version("triton"),
        "cpu": _cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_capability": native.get("cpu_capability"),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "native": native,
        "backends": info["backends"],
    }
    if device is not None:
        device = torch.device(device)
        env["device"] = str(device)
        env["auto"] = {op: backends.resolve(op, device, "auto") for op in info["backends"]}
    return env

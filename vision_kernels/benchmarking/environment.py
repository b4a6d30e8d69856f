"""What a benchmark result must record to be comparable: versions, commit, CPU/GPU, threads."""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import re
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
    root = Path(__file__).resolve().parents[2]
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


def environment() -> dict[str, Any]:
    import vision_kernels

    native = vision_kernels.build_info()["native"]
    env: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "vision_kernels": vision_kernels.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "triton": _version("triton"),
        "cpu": _cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_capability": native.get("cpu_capability"),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
    }
    return env


def machine_tag(env: dict[str, Any], device: str) -> str:
    """A file-name-safe name for the machine a result was measured on, e.g. cpu-amd-epyc-2t."""
    if device == "cuda" and env.get("gpu"):
        name = f"cuda-{env['gpu']}"
    else:
        name = f"cpu-{env['cpu']}-{env['cpu_threads']}t"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")

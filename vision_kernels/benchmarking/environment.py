"""What a benchmark result records: `vision_kernels.environment.environment()`, and a file-name tag
for the machine."""

from __future__ import annotations

import re
from typing import Any

from vision_kernels.environment import environment

__all__ = ["environment", "machine_tag"]


def machine_tag(env: dict[str, Any], device: str) -> str:
    """A file-name-safe name for the machine a result was measured on, e.g. cpu-amd-epyc-2t."""
    if device == "cuda" and env.get("gpu"):
        name = f"cuda-{env['gpu']}"
    else:
        name = f"cpu-{env['cpu']}-{env['cpu_threads']}t"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")

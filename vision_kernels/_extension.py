"""Loads the native extension vision_kernels._C, or records why it cannot be used.

The extension is refused, without being loaded, when it was built for another torch than the one
running (its C++ ABI would not match); it then stays unused and ops fall back to the reference
with one warning. build_info() reports the reason.
"""

from __future__ import annotations

import importlib
import platform
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

REBUILD_HINT = "rebuild it with `make install` (or `pip install --no-build-isolation -e .`)"


@dataclass(frozen=True)
class ExtensionStatus:
    module: ModuleType | None
    reason: str | None  # why the extension is not used; None when it is
    built_for: str | None  # torch version it was built against, when known

    @property
    def loaded(self) -> bool:
        return self.module is not None


def _load() -> ExtensionStatus:
    try:
        config = importlib.import_module("vision_kernels._build_config")
    except ImportError:
        return ExtensionStatus(None, f"the native extension is not built; {REBUILD_HINT}", None)
    built_for = config.TORCH_VERSION
    if built_for != torch.__version__:
        reason = (
            f"the native extension was built for torch {built_for} but torch {torch.__version__} "
            f"is running; {REBUILD_HINT}"
        )
        return ExtensionStatus(None, reason, built_for)
    try:
        module = importlib.import_module("vision_kernels._C")
    except (ImportError, OSError) as exc:
        return ExtensionStatus(None, f"the native extension failed to load ({exc}); {REBUILD_HINT}", built_for)
    return ExtensionStatus(module, None, built_for)


STATUS = _load()

_warned = False


def warn_fallback() -> None:
    """Warns, once per process, that ops run on the reference because the extension is unusable."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"vision_kernels: {STATUS.reason}. Ops fall back to the pure-torch reference (slow).",
            RuntimeWarning,
            stacklevel=3,
        )


def build_info() -> dict[str, Any]:
    from vision_kernels import __version__, backends
    from vision_kernels.ops import OPS

    native: dict[str, Any] = dict(STATUS.module.build_info()) if STATUS.loaded else {}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return {
        "version": __version__,
        "python": platform.python_version(),
        "torch": {"built_against": STATUS.built_for, "running": torch.__version__, "cuda": torch.version.cuda},
        "native": {"loaded": STATUS.loaded, "reason": STATUS.reason, **native},
        "triton": backends.triton_version(),
        "backends": {op: {device: backends.available_backends(op, device) for device in devices} for op in OPS},
        "plugin_kernels": _plugin_kernels(),
    }


def _plugin_kernels() -> list[dict[str, Any]]:
    from vision_kernels.registry import get_registry

    registry = get_registry()
    origin = {k: r.name for r in registry.plugins for k in r.registered.get("kernels", [])}
    return [
        {"op": op, "backend": backend, "devices": list(k.devices), "description": k.description,
         "plugin": origin.get(f"{op}/{backend}", "")}
        for (op, backend), k in sorted(registry.kernels.items())
    ]

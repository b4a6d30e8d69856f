"""vision_kernels: fast, exact PyTorch kernels for computer-vision models.

Importing this package is cheap (no torch import): the submodules load on first use, so the `vk`
command line (vision_kernels.cli) starts fast.

    import vision_kernels.ops as vko
    iou = vko.box_iou(boxes1, boxes2, mode="giou")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = ("backends", "nn", "ops", "reference")


def build_info() -> dict[str, Any]:
    """How the native extension was built, whether it loaded (and if not, why), and which
    backends each op has on each device in this process."""
    from vision_kernels._extension import build_info as _build_info

    return _build_info()


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__", "build_info", *_SUBMODULES]

"""Which implementation runs an op: `native` (C++ on CPU, CUDA on GPU), `triton`, `reference`
(pure torch) or `auto`.

The choice, from strongest to weakest: the op's `backend=` argument; the innermost
`use_backend(...)` block; `set_backend(...)`; the VK_BACKEND environment variable (read at import);
`auto`. `auto` picks per op and device the first available backend of AUTO_PREFERENCE, the order
the benchmarks measured (benchmarks/results, README). A backend named explicitly that cannot run
raises an error saying why; `auto` without the native extension falls back to the reference with
one warning.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
from collections.abc import Iterator

import torch

from vision_kernels import _extension
from vision_kernels import registry as _registry  # torch-free: pluggy and the plugin host only

BACKENDS = ("auto", "native", "triton", "reference")

# Fastest first, per device type, as measured by benchmarks/ (see README "Benchmarks").
# CPU: the C++ kernels beat the reference (pure torch) on every op and shape measured; Triton runs on
# CPU only under its interpreter (for tests), so never automatically. CUDA: native first until GPU
# benchmark results say otherwise for an op (add an entry to AUTO_PREFERENCE_BY_OP).
AUTO_PREFERENCE: dict[str, tuple[str, ...]] = {
    "cpu": ("native", "reference"),
    "cuda": ("native", "triton", "reference"),
}
AUTO_PREFERENCE_BY_OP: dict[tuple[str, str], tuple[str, ...]] = {}

# The module defining `vision_kernels::<op>_triton`, imported when the triton backend is first used.
TRITON_MODULES: dict[str, str] = {
    "box_iou": "vision_kernels.triton.box_iou",
    "box_iou_aligned": "vision_kernels.triton.box_iou",
    "box_convert": "vision_kernels.triton.box_convert",
    "nms": "vision_kernels.triton.nms",
    "batched_nms": "vision_kernels.triton.nms",
    "instance_norm": "vision_kernels.triton.norm",
    "batch_norm_act": "vision_kernels.triton.norm",
    "conv_transpose_norm_act": "vision_kernels.triton.conv_transpose",
}
# Ops made of other ops: a backend runs them when it runs every part.
COMPOSITE_OPS: dict[str, tuple[str, ...]] = {"conv_transpose_norm_act": ("batch_norm_act", "instance_norm")}


def plugin_backends(op: str | None = None) -> list[str]:
    """Backends plugins registered (for `op`, or for any op), found through vision_kernels.registry."""
    from vision_kernels.registry import get_registry

    return sorted({backend for (kernel_op, backend) in get_registry().kernels if op is None or kernel_op == op})


def plugin_impl(op: str, backend: str):
    """The function a plugin registered for (op, backend): it takes the reference's arguments."""
    from vision_kernels.registry import get_registry

    return get_registry().kernels[(op, backend)].impl


def _check_name(name: str, source: str) -> str:
    if name not in BACKENDS and name not in plugin_backends():
        extra = plugin_backends()
        choices = ", ".join(BACKENDS) + (f" (plugins: {', '.join(extra)})" if extra else "")
        raise ValueError(f"{source} must be one of {choices}; got {name!r}")
    return name


_default = _check_name(os.environ.get("VK_BACKEND", "auto").strip() or "auto", "VK_BACKEND")
# The use_backend() blocks, innermost last. Process-wide like torch.backends' flags: a plain global
# list is what torch.compile can guard on (it recompiles when the choice changes).
_stack: list[str] = []


def set_backend(name: str) -> None:
    """Sets the process-wide default backend (overridden by use_backend blocks and backend=)."""
    global _default
    _default = _check_name(name, "backend")


def get_backend() -> str:
    """The backend requested for ops called here, before `auto` is resolved."""
    return _stack[-1] if _stack else _default


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Runs the ops called inside the block on backend `name`."""
    _stack.append(_check_name(name, "backend"))
    try:
        yield
    finally:
        _stack.pop()


@functools.cache
def triton_version() -> str | None:
    if importlib.util.find_spec("triton") is None:
        return None
    import triton

    return triton.__version__


def triton_interpreting() -> bool:
    """True when Triton kernels run on CPU tensors through its interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def unavailable_reason(backend: str, op: str, device_type: str) -> str | None:
    """Why `backend` cannot run `op` on `device_type` here, or None when it can."""
    if backend == "reference":
        return None
    if backend not in BACKENDS:  # a plugin's
        from vision_kernels.registry import get_registry

        kernel = get_registry().kernels.get((op, backend))
        if kernel is None:
            return f"no plugin registered backend {backend!r} for {op}"
        return (
            None
            if device_type in kernel.devices
            else f"plugin backend {backend!r} runs {op} on {', '.join(kernel.devices)} only"
        )
    if op in COMPOSITE_OPS:
        for part in COMPOSITE_OPS[op]:
            if (reason := unavailable_reason(backend, part, device_type)) is not None:
                return reason
        if backend != "triton" or op not in TRITON_MODULES:
            return None
    if backend == "native" and op not in COMPOSITE_OPS:
        if not _extension.STATUS.loaded:
            return _extension.STATUS.reason
        key = {"cpu": "CPU", "cuda": "CUDA"}.get(device_type)
        if key is None or not torch._C._dispatch_has_kernel_for_dispatch_key(f"vision_kernels::{op}", key):
            return f"the native extension has no {device_type} kernel for {op} (built without CUDA?)"
        return None
    if backend == "triton":
        if triton_version() is None:
            return "triton is not installed"
        if device_type == "cpu" and not triton_interpreting():
            return "Triton kernels need a CUDA device (or TRITON_INTERPRET=1 to interpret them on CPU)"
        if device_type not in ("cpu", "cuda"):
            return f"Triton kernels do not run on {device_type}"
        if op not in TRITON_MODULES:
            return f"{op} has no Triton kernel"
        try:
            importlib.import_module(TRITON_MODULES[op])
        except Exception as exc:  # a broken triton install must not take the other backends down
            return f"the Triton kernels failed to load ({type(exc).__name__}: {exc})"
        return None
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")  # pragma: no cover


def available_backends(op: str, device_type: str) -> list[str]:
    """The concrete backends that can run `op` on `device_type` in this process, plugins' included."""
    return [b for b in (*BACKENDS[1:], *plugin_backends(op)) if unavailable_reason(b, op, device_type) is None]


def resolve(op: str, device: torch.device, requested: str | None = None) -> str:
    """The concrete backend (native, triton or reference) that runs `op` for tensors on `device`."""
    return _resolve(op, device.type, get_backend() if requested is None else requested)


# What _resolve_uncached found, per (op, device type, requested name), valid while the state it
# depends on stays the same: the plugins' kernels (the registry's generation), the native
# extension's status and Triton's interpreter switch. Asking the dispatcher whether a kernel exists
# costs microseconds per call, as much as a small op's whole kernel; a dict lookup well under one.
_cache: dict[tuple[str, str, str], str] = {}
_cache_state: tuple = ()


def clear_cache() -> None:
    """Forgets every resolved choice (a change of the state above does it anyway; for tests)."""
    _cache.clear()


# Under torch.compile the choice is made once, while tracing, and baked into the graph.
@torch.compiler.assume_constant_result
def _resolve(op: str, device_type: str, name: str) -> str:
    global _cache_state
    state = (_registry.generation(), _extension.STATUS, triton_interpreting())
    if state != _cache_state:
        _cache.clear()
        _cache_state = state
    key = (op, device_type, name)
    found = _cache.get(key)
    if found is None:  # errors are not cached: an unavailable backend raises every time
        found = _cache[key] = _resolve_uncached(op, device_type, name)
    return found


def _resolve_uncached(op: str, device_type: str, name: str) -> str:
    _check_name(name, "backend")
    if name != "auto":
        reason = unavailable_reason(name, op, device_type)
        if reason is not None:
            raise RuntimeError(f"backend {name!r} cannot run {op} on {device_type}: {reason}")
        return name
    preference = AUTO_PREFERENCE_BY_OP.get((op, device_type), AUTO_PREFERENCE.get(device_type, ("reference",)))
    for candidate in preference:
        if unavailable_reason(candidate, op, device_type) is None:
            if candidate == "reference" and not _extension.STATUS.loaded:
                _extension.warn_fallback()
            return candidate
    return "reference"

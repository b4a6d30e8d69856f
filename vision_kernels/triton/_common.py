"""Triton helpers shared by the kernels: loads in the accumulation dtype, exact division, launch.

Compiled Triton rounds differently from the C++/CUDA kernels and the reference unless told not to:
float32 `/` lowers to an approximate division (`div.full.f32`, up to 2 ulp) and multiply-adds are
fused. Kernels therefore divide with `div` (IEEE round-to-nearest) and are launched through
`launch`, which turns FMA contraction off, so that, like the CUDA build (--fmad=false), they give
the reference's values and NMS decides ties at the threshold exactly as the reference does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton


@triton.jit
def load_acc(ptr, mask, FP64: tl.constexpr):
    """Loads and converts to the accumulation dtype: float64 for float64 inputs, else float32."""
    x = tl.load(ptr, mask=mask, other=0.0)
    if FP64:
        x = x.to(tl.float64)
    else:
        x = x.to(tl.float32)
    return x


@triton.jit
def div(num, den):
    """num / den rounded to nearest (float32 `/` in Triton is approximate; float64's is exact)."""
    if num.dtype == tl.float32:
        return tl.div_rn(num, den)
    else:
        return num / den


@triton.jit
def safe_div(num, den):
    """num / den, and 0 where den == 0."""
    nonzero = den != 0
    return tl.where(nonzero, div(num, tl.where(nonzero, den, 1.0)), 0.0)


def scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    """A float argument as a 1-element tensor in the accumulation dtype of `like`: Triton passes a
    Python float as float32, which would round eps for the float64 kernels."""
    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    return torch.full((1,), value, dtype=dtype, device=like.device)


@contextlib.contextmanager
def on_device(t: torch.Tensor) -> Iterator[None]:
    """Launch on `t`'s GPU: Triton takes its device and stream from the current CUDA device."""
    if t.device.type == "cuda":
        with torch.cuda.device(t.device):
            yield
    else:
        yield


def launch(kernel, grid, *args, **meta) -> None:
    """kernel[grid](*args, **meta) through torch.library.wrap_triton, on the device of the first
    tensor argument, without FMA contraction (see the module docstring)."""
    device_tensor = next(a for a in args if isinstance(a, torch.Tensor))
    with on_device(device_tensor):
        wrap_triton(kernel)[grid](*args, **meta, enable_fp_fusion=False)

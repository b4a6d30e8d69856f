"""Triton helpers shared by the kernels: loads in the accumulation dtype, guarded division."""

from __future__ import annotations

import triton
import triton.language as tl


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
def safe_div(num, den):
    """num / den, and 0 where den == 0."""
    nonzero = den != 0
    return tl.where(nonzero, num / tl.where(nonzero, den, 1.0), 0.0)

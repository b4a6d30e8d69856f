"""Triton kernel for box format conversion (xyxy, xywh, cxcywh), through xyxy like torchvision."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op

from vision_kernels.ops import _checks
from vision_kernels.ops._autograd import register_convert_autograd
from vision_kernels.reference.boxes import FORMATS
from vision_kernels.triton._common import launch, load_acc

_FORMAT_ID = {fmt: i for i, fmt in enumerate(FORMATS)}  # xyxy 0, xywh 1, cxcywh 2 (as C++)
_BLOCK = 256


@triton.jit
def _convert_kernel(in_ptr, out_ptr, K, FROM: tl.constexpr, TO: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr):
    k = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = k < K
    c0 = load_acc(in_ptr + k * 4, ok, FP64)
    c1 = load_acc(in_ptr + k * 4 + 1, ok, FP64)
    c2 = load_acc(in_ptr + k * 4 + 2, ok, FP64)
    c3 = load_acc(in_ptr + k * 4 + 3, ok, FP64)
    if FROM == TO:
        o0, o1, o2, o3 = c0, c1, c2, c3
    else:
        if FROM == 1:  # xywh
            x1, y1, x2, y2 = c0, c1, c0 + c2, c1 + c3
        elif FROM == 2:  # cxcywh
            x1, y1, x2, y2 = c0 - 0.5 * c2, c1 - 0.5 * c3, c0 + 0.5 * c2, c1 + 0.5 * c3
        else:
            x1, y1, x2, y2 = c0, c1, c2, c3
        if TO == 1:
            o0, o1, o2, o3 = x1, y1, x2 - x1, y2 - y1
        elif TO == 2:
            o0, o1, o2, o3 = (x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1  # * 0.5 == / 2 exactly
        else:
            o0, o1, o2, o3 = x1, y1, x2, y2
    ty = out_ptr.dtype.element_ty
    tl.store(out_ptr + k * 4, o0.to(ty), mask=ok)
    tl.store(out_ptr + k * 4 + 1, o1.to(ty), mask=ok)
    tl.store(out_ptr + k * 4 + 2, o2.to(ty), mask=ok)
    tl.store(out_ptr + k * 4 + 3, o3.to(ty), mask=ok)


@triton_op(
    "vision_kernels::box_convert_triton", mutates_args=(), schema="(Tensor boxes, str in_fmt, str out_fmt) -> Tensor"
)
def box_convert_triton(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    _checks.check_boxes(boxes, "boxes")
    _checks.check_format(in_fmt, "in_fmt")
    _checks.check_format(out_fmt, "out_fmt")
    src = boxes.contiguous()
    out = torch.empty_like(src)
    count = src.numel() // 4
    if count == 0:
        return out
    launch(
        _convert_kernel,
        (triton.cdiv(count, _BLOCK),),
        src,
        out,
        count,
        FROM=_FORMAT_ID[in_fmt],
        TO=_FORMAT_ID[out_fmt],
        FP64=src.dtype == torch.float64,
        BLOCK=_BLOCK,
    )
    return out


register_convert_autograd("vision_kernels::box_convert_triton")

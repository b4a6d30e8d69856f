"""Triton NMS with torchvision's semantics (kept indices in decreasing score, ties in index order).

1. Sort by score (torch). 2. `_mask_kernel`: for each box i, a bitmask (64 boxes per int64 word)
of the later boxes it suppresses: IoU > threshold and, for batched NMS, the same category.
3. `_keep_kernel`: one program walks the boxes in score order with the "removed" bits in global
scratch, keeping a box unless an earlier kept box suppressed it. The threshold is compared in float,
as torchvision's kernel for the device does (see reference.boxes.nms_threshold).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op

from vision_kernels.ops import _checks
from vision_kernels.reference.boxes import acc_dtype, nms_threshold
from vision_kernels.triton._common import div, launch

_BOXES_PER_WORD = 64
_BLOCK_ROWS = 32
_BLOCK_WORDS = 128


@triton.jit
def _mask_kernel(
    boxes_ptr, cat_ptr, threshold_ptr, mask_ptr, N, WORDS, HAS_CATEGORIES: tl.constexpr, BLOCK_ROWS: tl.constexpr
):
    threshold = tl.load(threshold_ptr)
    word = tl.program_id(0).to(tl.int64)
    rows = tl.program_id(1).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    bits = tl.arange(0, 64)
    cols = word * 64 + bits
    row_ok = rows < N
    col_ok = cols < N
    ax1 = tl.load(boxes_ptr + rows * 4, mask=row_ok, other=0.0)
    ay1 = tl.load(boxes_ptr + rows * 4 + 1, mask=row_ok, other=0.0)
    ax2 = tl.load(boxes_ptr + rows * 4 + 2, mask=row_ok, other=0.0)
    ay2 = tl.load(boxes_ptr + rows * 4 + 3, mask=row_ok, other=0.0)
    bx1 = tl.load(boxes_ptr + cols * 4, mask=col_ok, other=0.0)
    by1 = tl.load(boxes_ptr + cols * 4 + 1, mask=col_ok, other=0.0)
    bx2 = tl.load(boxes_ptr + cols * 4 + 2, mask=col_ok, other=0.0)
    by2 = tl.load(boxes_ptr + cols * 4 + 3, mask=col_ok, other=0.0)
    area_a = (ax2 - ax1) * (ay2 - ay1)
    area_b = (bx2 - bx1) * (by2 - by1)
    w = tl.maximum(tl.minimum(ax2[:, None], bx2[None, :]) - tl.maximum(ax1[:, None], bx1[None, :]), 0.0)
    h = tl.maximum(tl.minimum(ay2[:, None], by2[None, :]) - tl.maximum(ay1[:, None], by1[None, :]), 0.0)
    inter = w * h
    iou = div(inter, area_a[:, None] + area_b[None, :] - inter)  # NaN for 0/0 never suppresses
    hit = (iou > threshold) & (cols[None, :] > rows[:, None]) & col_ok[None, :]
    if HAS_CATEGORIES:
        cat_a = tl.load(cat_ptr + rows, mask=row_ok, other=0)
        cat_b = tl.load(cat_ptr + cols, mask=col_ok, other=0)
        hit = hit & (cat_a[:, None] == cat_b[None, :])
    one = tl.full([64], 1, tl.int64)
    # Bits are distinct, so the sum is their OR (bit 63 wraps to the sign, as intended).
    packed = tl.sum(tl.where(hit, (one << bits.to(tl.int64))[None, :], 0), axis=1)
    tl.store(mask_ptr + rows * WORDS + word, packed, mask=row_ok)


@triton.jit
def _keep_kernel(mask_ptr, removed_ptr, keep_ptr, N, WORDS, BLOCK_WORDS: tl.constexpr):
    for word in range(0, WORDS):
        tl.debug_barrier()  # earlier programs' stores to removed[] are visible
        removed = tl.load(removed_ptr + word)
        for bit in range(0, 64):
            i = word * 64 + bit
            if (i < N) & (((removed >> bit) & 1) == 0):
                tl.store(keep_ptr + i, 1)
                row = mask_ptr + i.to(tl.int64) * WORDS
                removed = removed | tl.load(row + word)
                for start in range(word + 1, WORDS, BLOCK_WORDS):
                    offs = start + tl.arange(0, BLOCK_WORDS)
                    ok = offs < WORDS
                    tl.store(
                        removed_ptr + offs,
                        tl.load(removed_ptr + offs, mask=ok, other=0) | tl.load(row + offs, mask=ok, other=0),
                        mask=ok,
                    )


def _nms(boxes: Tensor, scores: Tensor, categories: Tensor | None, iou_threshold: float) -> Tensor:
    n = boxes.shape[0]
    if triton.cdiv(n, _BLOCK_ROWS) > 65535:
        raise ValueError(f"nms on the triton backend supports at most {65535 * _BLOCK_ROWS} boxes, got {n}")
    order = torch.sort(scores, stable=True, descending=True).indices
    sorted_boxes = boxes.index_select(0, order).to(acc_dtype(boxes.dtype)).contiguous()
    words = triton.cdiv(n, _BOXES_PER_WORD)
    mask = torch.empty((n, max(words, 1)), dtype=torch.int64, device=boxes.device)
    removed = torch.zeros(max(words, 1), dtype=torch.int64, device=boxes.device)
    keep = torch.zeros(n, dtype=torch.int8, device=boxes.device)
    if n > 0:
        cats = categories.to(torch.int64).index_select(0, order).contiguous() if categories is not None else order
        # A tensor, not a scalar argument: Triton would pass a Python float as float32.
        threshold = torch.full(
            (1,),
            nms_threshold(iou_threshold, boxes.dtype, boxes.device.type),
            dtype=sorted_boxes.dtype,
            device=boxes.device,
        )
        grid = (words, triton.cdiv(n, _BLOCK_ROWS))
        launch(
            _mask_kernel,
            grid,
            sorted_boxes,
            cats,
            threshold,
            mask,
            n,
            words,
            HAS_CATEGORIES=categories is not None,
            BLOCK_ROWS=_BLOCK_ROWS,
        )
        launch(_keep_kernel, (1,), mask, removed, keep, n, words, BLOCK_WORDS=_BLOCK_WORDS)
    return order.masked_select(keep.bool())


@triton_op(
    "vision_kernels::nms_triton", mutates_args=(), schema="(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor"
)
def nms_triton(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    _checks.check_nms(boxes, scores, iou_threshold)
    return _nms(boxes, scores, None, iou_threshold)


@triton_op(
    "vision_kernels::batched_nms_triton",
    mutates_args=(),
    schema="(Tensor boxes, Tensor scores, Tensor idxs, float iou_threshold) -> Tensor",
)
def batched_nms_triton(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    _checks.check_batched_nms(boxes, scores, idxs, iou_threshold)
    return _nms(boxes, scores, idxs, iou_threshold)

"""Box overlap (IoU, GIoU, DIoU, CIoU, IoF), box format conversion and NMS in plain torch.

Semantics, shared by every backend:
- Boxes are (x1, y1, x2, y2). Values match torchvision.ops wherever torchvision's are finite;
  where torchvision divides by zero (zero-area boxes, identical points) the ratio is defined as 0,
  so zero-area and degenerate boxes give finite values (IoU 0), never NaN, for finite input.
- float16/bfloat16 inputs are computed in float32 and the result is rounded to the input dtype.
- CIoU's trade-off weight alpha is a constant for autograd (no_grad), as in torchvision.
"""

from __future__ import annotations

import math
import struct

import torch
from torch import Tensor

MODES = ("iou", "giou", "diou", "ciou", "iof")
FORMATS = ("xyxy", "xywh", "cxcywh")
_CIOU_SCALE = 4 / math.pi**2


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype computations run in: float32 for float16/bfloat16, the dtype itself otherwise."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _acc(t: Tensor) -> Tensor:
    return t.to(acc_dtype(t.dtype))


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """num / den, and 0 where den == 0 (with a zero, not NaN, gradient there)."""
    nonzero = den != 0
    return torch.where(nonzero, num / torch.where(nonzero, den, 1.0), 0.0)


def aspect_angle(w: Tensor, h: Tensor) -> Tensor:
    """atan(w / h), continued to h == 0: +-pi/2, or 0 for a point."""
    nonzero = h != 0
    return torch.where(nonzero, torch.atan(w / torch.where(nonzero, h, 1.0)), torch.sign(w) * (math.pi / 2))


def _positive(d: Tensor) -> Tensor:
    """max(d, 0) whose gradient at d == 0 is 0 (touching or identical boxes), as the native and
    Triton backward kernels compute it. Not clamp(min=0): its gradient at exactly 0 changed
    between torch releases (1 in 2.13, 0 in 2.14)."""
    return torch.where(d > 0, d, torch.zeros_like(d))


def overlap(a: Tensor, b: Tensor, mode: str = "iou", eps: float = 1e-7) -> Tensor:
    """Overlap of broadcastable [..., 4] box tensors, element by element (in their dtype)."""
    ax1, ay1, ax2, ay2 = a.unbind(-1)
    bx1, by1, bx2, by2 = b.unbind(-1)
    aw, ah, bw, bh = ax2 - ax1, ay2 - ay1, bx2 - bx1, by2 - by1
    area_a, area_b = aw * ah, bw * bh
    iw = _positive(torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1))
    ih = _positive(torch.minimum(ay2, by2) - torch.maximum(ay1, by1))
    inter = iw * ih
    if mode == "iof":
        return _safe_div(inter, area_a)
    union = area_a + area_b - inter
    iou = _safe_div(inter, union)
    if mode == "iou":
        return iou
    # The smallest box enclosing both.
    cw = _positive(torch.maximum(ax2, bx2) - torch.minimum(ax1, bx1))
    ch = _positive(torch.maximum(ay2, by2) - torch.minimum(ay1, by1))
    if mode == "giou":
        c_area = cw * ch
        return iou - _safe_div(c_area - union, c_area)
    c2 = cw * cw + ch * ch + eps
    dx = (ax1 + ax2) / 2 - (bx1 + bx2) / 2
    dy = (ay1 + ay2) / 2 - (by1 + by2) / 2
    diou = iou - _safe_div(dx * dx + dy * dy, c2)
    if mode == "diou":
        return diou
    dang = aspect_angle(aw, ah) - aspect_angle(bw, bh)
    v = _CIOU_SCALE * (dang * dang)
    with torch.no_grad():
        alpha = _safe_div(v, 1 - iou + v + eps)
    return diou - alpha * v


def box_iou(boxes1: Tensor, boxes2: Tensor, mode: str = "iou", eps: float = 1e-7) -> Tensor:
    """Pairwise overlap: [N,4] x [M,4] -> [N,M], or [B,N,4] x [B,M,4] -> [B,N,M]."""
    out = overlap(_acc(boxes1)[..., :, None, :], _acc(boxes2)[..., None, :, :], mode, eps)
    return out.to(boxes1.dtype)


def box_iou_aligned(boxes1: Tensor, boxes2: Tensor, mode: str = "iou", eps: float = 1e-7) -> Tensor:
    """Element-wise overlap: [..., N, 4] x [..., N, 4] -> [..., N]."""
    return overlap(_acc(boxes1), _acc(boxes2), mode, eps).to(boxes1.dtype)


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Converts [..., 4] boxes between xyxy, xywh and cxcywh, through xyxy like torchvision."""
    if in_fmt == out_fmt:
        return boxes.clone()
    x = _acc(boxes)
    if in_fmt == "xywh":
        x1, y1, w, h = x.unbind(-1)
        x1, y1, x2, y2 = x1, y1, x1 + w, y1 + h
    elif in_fmt == "cxcywh":
        cx, cy, w, h = x.unbind(-1)
        x1, y1, x2, y2 = cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h
    else:
        x1, y1, x2, y2 = x.unbind(-1)
    if out_fmt == "xywh":
        out = (x1, y1, x2 - x1, y2 - y1)
    elif out_fmt == "cxcywh":
        out = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
    else:
        out = (x1, y1, x2, y2)
    return torch.stack(out, dim=-1).to(boxes.dtype)


def _float32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _float32_below(f: float) -> float:
    """The largest float32 smaller than the float32 value f."""
    if f == 0:
        return -_float32(1e-45)
    bits = struct.unpack("I", struct.pack("f", f))[0]
    return struct.unpack("f", struct.pack("I", bits - 1 if f > 0 else bits + 1))[0]


def nms_threshold(iou_threshold: float, dtype: torch.dtype, device_type: str) -> float:
    """The threshold t, exact in the accumulation dtype of `dtype`, for which `iou > t` suppresses
    exactly as torchvision does on `device_type`: its CPU kernel compares the float IoU with the
    double threshold, its CUDA kernel with float(threshold). They differ when an IoU equals
    float(threshold), e.g. 0.3 = 3/10 for integer boxes."""
    if device_type == "cuda":
        return _float32(iou_threshold)
    if acc_dtype(dtype) == torch.float64:
        return iou_threshold
    t = _float32(iou_threshold)
    # Rounded up: x > threshold <=> x >= t <=> x > (the float below t).
    return _float32_below(t) if t > iou_threshold else t


def _greedy_nms(boxes: Tensor, scores: Tensor, categories: Tensor | None, iou_threshold: float) -> Tensor:
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, stable=True, descending=True).indices
    cand = _acc(boxes)[order]
    area = (cand[:, 2] - cand[:, 0]) * (cand[:, 3] - cand[:, 1])
    cats = categories[order] if categories is not None else None
    threshold = nms_threshold(iou_threshold, boxes.dtype, boxes.device.type)
    alive = torch.arange(boxes.shape[0], device=boxes.device)  # positions in score order
    kept = []
    while alive.numel() > 0:
        head, rest = alive[0], alive[1:]
        kept.append(head)
        a, b = cand[head], cand[rest]
        iw = _positive(torch.minimum(a[2], b[:, 2]) - torch.maximum(a[0], b[:, 0]))
        ih = _positive(torch.minimum(a[3], b[:, 3]) - torch.maximum(a[1], b[:, 1]))
        inter = iw * ih
        iou = inter / (area[head] + area[rest] - inter)  # NaN for 0/0: never suppresses
        suppressed = iou > threshold
        if cats is not None:
            suppressed &= cats[rest] == cats[head]
        alive = rest[~suppressed]
    return order[torch.stack(kept)]


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the boxes kept by greedy NMS, in decreasing score (ties in index order)."""
    return _greedy_nms(boxes, scores, None, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category `idxs`; kept indices in decreasing score."""
    return _greedy_nms(boxes, scores, idxs, iou_threshold)

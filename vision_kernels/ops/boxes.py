"""Box overlap, box format conversion and non-maximum suppression."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vision_kernels import backends, reference
from vision_kernels.ops import _checks


def _implementation(op: str, backend: str) -> Callable[..., Tensor]:
    if backend == "native":
        return getattr(torch.ops.vision_kernels, op)
    if backend == "triton":
        return getattr(torch.ops.vision_kernels, f"{op}_triton")
    if backend == "reference":
        return getattr(reference, op)
    return backends.plugin_impl(op, backend)


def box_iou(
    boxes1: Tensor,
    boxes2: Tensor,
    mode: str = "iou",
    aligned: bool = False,
    eps: float = 1e-7,
    *,
    backend: str | None = None,
) -> Tensor:
    """Overlap of two sets of (x1, y1, x2, y2) boxes.

    Args:
        boxes1, boxes2: pairwise (`aligned=False`): [N, 4] and [M, 4] -> [N, M], or batched
            [B, N, 4] and [B, M, 4] -> [B, N, M]. Aligned: both [..., N, 4] -> [..., N].
            float16, bfloat16 (computed in float32), float32 or float64; same dtype and device.
        mode: "iou"; "giou" (generalized, in [-1, 1]); "diou" (minus the squared centre distance
            over the enclosing diagonal); "ciou" (DIoU minus the aspect-ratio term, alpha held
            constant); "iof" (intersection over the area of boxes1).
        aligned: overlap of boxes1[..., i] with boxes2[..., i] only. Differentiable with a fused
            backward: `1 - box_iou(pred, target, "giou", aligned=True)` is the GIoU loss.
        eps: added to the enclosing diagonal (DIoU, CIoU) and to CIoU's alpha denominator, as in
            torchvision. A ratio whose denominator is 0 is 0, never NaN.
        backend: "native", "triton", "reference" or "auto" (see vision_kernels.backends).

    Values equal torchvision.ops.box_iou / generalized_box_iou / distance_box_iou /
    complete_box_iou wherever those are finite.
    """
    _checks.check_mode(mode)
    if aligned:
        _checks.check_aligned(boxes1, boxes2)
        op = "box_iou_aligned"
    else:
        _checks.check_pairwise(boxes1, boxes2)
        op = "box_iou"
    return _implementation(op, backends.resolve(op, boxes1.device, backend))(boxes1, boxes2, mode, eps)


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str, *, backend: str | None = None) -> Tensor:
    """Converts [..., 4] boxes between "xyxy" (corners), "xywh" (corner, width, height: the
    lecture's (x, y, w, h)) and "cxcywh" (centre, width, height). Same values as
    torchvision.ops.box_convert; differentiable."""
    _checks.check_boxes(boxes, "boxes")
    _checks.check_format(in_fmt, "in_fmt")
    _checks.check_format(out_fmt, "out_fmt")
    impl = _implementation("box_convert", backends.resolve("box_convert", boxes.device, backend))
    return impl(boxes, in_fmt, out_fmt)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, *, backend: str | None = None) -> Tensor:
    """Greedy non-maximum suppression, with torchvision.ops.nms's semantics.

    Args:
        boxes: [N, 4] (x1, y1, x2, y2). scores: [N], same dtype and device.
        iou_threshold: a box is dropped when its IoU with a higher-scoring kept box is > this.

    Returns the int64 indices of the kept boxes in decreasing score (ties in index order).
    """
    _checks.check_nms(boxes, scores, iou_threshold)
    impl = _implementation("nms", backends.resolve("nms", boxes.device, backend))
    return impl(boxes, scores, float(iou_threshold))


def batched_nms(
    boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float, *, backend: str | None = None
) -> Tensor:
    """NMS applied independently per category `idxs` ([N] integers), with the semantics of
    torchvision.ops.batched_nms: the kept indices in decreasing score."""
    _checks.check_batched_nms(boxes, scores, idxs, iou_threshold)
    impl = _implementation("batched_nms", backends.resolve("batched_nms", boxes.device, backend))
    return impl(boxes, scores, idxs, float(iou_threshold))

"""Pure-torch implementations of every op: the truth the kernels are tested against, and the
fallback when no kernel backend is available. Written for clarity and exact semantics, not speed."""

from vision_kernels.reference.boxes import batched_nms, box_convert, box_iou, box_iou_aligned, nms
from vision_kernels.reference.norm import batch_norm_act, instance_norm

__all__ = ["batch_norm_act", "batched_nms", "box_convert", "box_iou", "box_iou_aligned", "instance_norm", "nms"]

"""The public functional API. Every function is a torch custom op in the `vision_kernels`
namespace (torch.ops.vision_kernels.*), works under autograd and torch.compile, and runs on the
backend chosen as described in vision_kernels.backends."""

from vision_kernels import _extension
from vision_kernels.ops.boxes import batched_nms, box_convert, box_iou, nms
from vision_kernels.ops.conv import conv_transpose_norm_act
from vision_kernels.ops.norm import instance_norm

if _extension.STATUS.loaded:
    from vision_kernels.ops import _native  # noqa: F401  (fake kernels and autograd of the native ops)

# Ops (as named in torch.ops.vision_kernels) that have backends to choose from.
OPS = ("box_iou", "box_iou_aligned", "box_convert", "nms", "batched_nms", "instance_norm", "conv_transpose_norm_act")

__all__ = ["OPS", "batched_nms", "box_convert", "box_iou", "conv_transpose_norm_act", "instance_norm", "nms"]

"""Fake (meta) kernels and autograd formulas for the native ops defined in csrc/vision_kernels.cpp.

The C++ TORCH_LIBRARY block names this module (set_python_module), so torch imports it when it
needs a fake kernel even if only vision_kernels._C was loaded. Fake kernels run the same argument
checks as the public functions, so errors surface while tracing too.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vision_kernels import reference
from vision_kernels.ops import _checks
from vision_kernels.ops._autograd import (
    register_aligned_autograd,
    register_convert_autograd,
    register_norm_autograd,
    register_pairwise_autograd,
)


@torch.library.register_fake("vision_kernels::box_iou")
def _box_iou_fake(boxes1: Tensor, boxes2: Tensor, mode: str = "iou", eps: float = 1e-7) -> Tensor:
    _checks.check_pairwise(boxes1, boxes2)
    return boxes1.new_empty((*boxes1.shape[:-2], boxes1.shape[-2], boxes2.shape[-2]))


@torch.library.register_fake("vision_kernels::box_iou_aligned")
def _box_iou_aligned_fake(boxes1: Tensor, boxes2: Tensor, mode: str = "iou", eps: float = 1e-7) -> Tensor:
    _checks.check_aligned(boxes1, boxes2)
    return boxes1.new_empty(boxes1.shape[:-1])


@torch.library.register_fake("vision_kernels::box_iou_aligned_backward")
def _box_iou_aligned_backward_fake(
    grad: Tensor, boxes1: Tensor, boxes2: Tensor, mode: str, eps: float
) -> tuple[Tensor, Tensor]:
    _checks.check_aligned(boxes1, boxes2)
    _checks.check_aligned_grad(grad, boxes1)
    # The kernels return contiguous gradients, whatever the inputs' strides.
    return (
        torch.empty_like(boxes1, memory_format=torch.contiguous_format),
        torch.empty_like(boxes2, memory_format=torch.contiguous_format),
    )


@torch.library.register_fake("vision_kernels::box_convert")
def _box_convert_fake(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    _checks.check_boxes(boxes, "boxes")
    return torch.empty_like(boxes, memory_format=torch.contiguous_format)


def _kept_indices(boxes: Tensor) -> Tensor:
    # How many boxes survive depends on the data: an unbacked size (at most N, which may be symbolic
    # here, and new_dynamic_size only takes a static bound).
    count = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((count,), dtype=torch.int64)


@torch.library.register_fake("vision_kernels::nms")
def _nms_fake(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    _checks.check_nms(boxes, scores, iou_threshold)
    return _kept_indices(boxes)


@torch.library.register_fake("vision_kernels::batched_nms")
def _batched_nms_fake(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    _checks.check_batched_nms(boxes, scores, idxs, iou_threshold)
    return _kept_indices(boxes)


register_pairwise_autograd("vision_kernels::box_iou")
register_aligned_autograd("vision_kernels::box_iou_aligned", torch.ops.vision_kernels.box_iou_aligned_backward)
register_convert_autograd("vision_kernels::box_convert")


def instance_norm_output_like(input: Tensor) -> Tensor:
    """An empty output with the strides the kernels give it: the input's when its planes are
    contiguous or channels last, contiguous otherwise (the kernels copy other layouts)."""
    if input.is_contiguous() or _checks.is_channels_last_layout(input):
        return torch.empty_like(input)
    return torch.empty_like(input, memory_format=torch.contiguous_format)


@torch.library.register_fake("vision_kernels::instance_norm")
def _instance_norm_fake(input, weight, bias, eps, activation, negative_slope):
    _checks.check_instance_norm(input, weight, bias)
    _checks.check_activation(activation)
    stats_dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    n, c = input.shape[:2]
    return (
        instance_norm_output_like(input),
        input.new_empty((n, c), dtype=stats_dtype),
        input.new_empty((n, c), dtype=stats_dtype),
    )


@torch.library.register_fake("vision_kernels::instance_norm_backward")
def _instance_norm_backward_fake(grad_out, input, weight, bias, mean, rstd, activation, negative_slope):
    _checks.check_instance_norm(input, weight, bias)

    def param_grad(param):
        return param.new_empty(param.shape) if param is not None else input.new_empty((0,))

    return instance_norm_output_like(input), param_grad(weight), param_grad(bias)


register_norm_autograd("vision_kernels::instance_norm", torch.ops.vision_kernels.instance_norm_backward)


@torch.library.register_fake("vision_kernels::batch_norm_act")
def _batch_norm_act_fake(input, weight, bias, eps, activation, negative_slope):
    _checks.check_instance_norm(input, weight, bias)
    _checks.check_activation(activation, allowed=_checks.ACTIVATIONS_WITH_TANH)
    stats_dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    c = input.shape[1]
    return (
        instance_norm_output_like(input),
        input.new_empty((c,), dtype=stats_dtype),
        input.new_empty((c,), dtype=stats_dtype),
    )


@torch.library.register_fake("vision_kernels::batch_norm_act_backward")
def _batch_norm_act_backward_fake(grad_out, input, weight, bias, mean, rstd, activation, negative_slope):
    return _instance_norm_backward_fake(grad_out, input, weight, bias, mean, rstd, activation, negative_slope)


register_norm_autograd(
    "vision_kernels::batch_norm_act", torch.ops.vision_kernels.batch_norm_act_backward, reference.batch_norm_act
)

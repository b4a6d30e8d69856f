"""Autograd formulas for the box ops, shared by every backend's custom op (native and triton).

- Aligned overlap (the IoU/GIoU/DIoU/CIoU losses): a fused backward op of the same backend, or
  the reference's vector-Jacobian product when a second derivative is asked for.
- Pairwise overlap: the vector-Jacobian product of the reference (not fused; pairwise IoU is
  rarely differentiated, but it must not silently return no gradient).
- box_convert: a constant linear map per box, so the gradient is grad @ J.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from vision_kernels import reference


def _save_boxes(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    boxes1, boxes2, mode, eps = inputs
    ctx.save_for_backward(boxes1, boxes2)
    ctx.mode, ctx.eps = mode, eps


def register_pairwise_autograd(op: str) -> None:
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        boxes1, boxes2 = ctx.saved_tensors
        _, vjp = torch.func.vjp(lambda a, b: reference.box_iou(a, b, ctx.mode, ctx.eps), boxes1, boxes2)
        grad1, grad2 = vjp(grad)
        return grad1, grad2, None, None

    torch.library.register_autograd(op, backward, setup_context=_save_boxes)


def register_aligned_autograd(op: str, backward_op: Callable[..., tuple[Tensor, Tensor]]) -> None:
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        boxes1, boxes2 = ctx.saved_tensors
        if torch.is_grad_enabled():
            # backward(create_graph=True), e.g. for a gradient penalty: the fused op has no
            # derivative of its own, so differentiate the reference instead (slower, exact).
            _, vjp = torch.func.vjp(lambda a, b: reference.box_iou_aligned(a, b, ctx.mode, ctx.eps), boxes1, boxes2)
            grad1, grad2 = vjp(grad)
        else:
            grad1, grad2 = backward_op(grad.contiguous(), boxes1, boxes2, ctx.mode, ctx.eps)
        return grad1, grad2, None, None

    torch.library.register_autograd(op, backward, setup_context=_save_boxes)


# out = J @ box for each conversion, composed through xyxy like the forward.
_TO_XYXY = {
    "xyxy": torch.eye(4, dtype=torch.float64),
    "xywh": torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.float64),
    "cxcywh": torch.tensor([[1, 0, -0.5, 0], [0, 1, 0, -0.5], [1, 0, 0.5, 0], [0, 1, 0, 0.5]], dtype=torch.float64),
}
_FROM_XYXY = {
    "xyxy": torch.eye(4, dtype=torch.float64),
    "xywh": torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [-1, 0, 1, 0], [0, -1, 0, 1]], dtype=torch.float64),
    "cxcywh": torch.tensor([[0.5, 0, 0.5, 0], [0, 0.5, 0, 0.5], [-1, 0, 1, 0], [0, -1, 0, 1]], dtype=torch.float64),
}


def convert_jacobian(in_fmt: str, out_fmt: str) -> Tensor:
    """J with box_convert(x, in_fmt, out_fmt) == x @ J.T for every box x."""
    if in_fmt == out_fmt:
        return torch.eye(4, dtype=torch.float64)
    return _FROM_XYXY[out_fmt] @ _TO_XYXY[in_fmt]


def register_convert_autograd(op: str) -> None:
    def setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        _, ctx.in_fmt, ctx.out_fmt = inputs

    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        jacobian = convert_jacobian(ctx.in_fmt, ctx.out_fmt).to(device=grad.device, dtype=grad.dtype)
        return grad @ jacobian, None, None

    torch.library.register_autograd(op, backward, setup_context=setup)


def register_norm_autograd(
    op: str,
    backward_op: Callable[..., tuple[Tensor, Tensor, Tensor]],
    reference_fn: Callable[..., tuple[Tensor, Tensor, Tensor]] = reference.instance_norm,
) -> None:
    """(out, mean, rstd) = op(input, weight, bias, eps, activation, negative_slope) for instance or
    batch norm (`reference_fn` the matching reference); the statistics are outputs for the
    backward, not differentiable."""

    def setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor, Tensor]) -> None:
        input, weight, bias, eps, activation, negative_slope = inputs
        _, mean, rstd = output
        ctx.save_for_backward(input, weight, bias, mean, rstd)
        ctx.eps, ctx.activation, ctx.negative_slope = eps, activation, negative_slope
        ctx.mark_non_differentiable(mean, rstd)

    def backward(ctx: Any, grad: Tensor, _grad_mean: Tensor, _grad_rstd: Tensor):
        input, weight, bias, mean, rstd = ctx.saved_tensors
        if torch.is_grad_enabled():  # backward(create_graph=True): differentiate the reference
            params = [t for t in (weight, bias) if t is not None]

            def out_of(x: Tensor, *p: Tensor) -> Tensor:
                w = p[0] if weight is not None else None
                b = p[-1] if bias is not None else None
                return reference_fn(x, w, b, ctx.eps, ctx.activation, ctx.negative_slope)[0]

            _, vjp = torch.func.vjp(out_of, input, *params)
            grads = list(vjp(grad))
            grad_input = grads.pop(0)
            grad_weight = grads.pop(0) if weight is not None else None
            grad_bias = grads.pop(0) if bias is not None else None
        else:
            grad_input, grad_weight, grad_bias = backward_op(
                grad, input, weight, bias, mean, rstd, ctx.activation, ctx.negative_slope
            )
            grad_weight = grad_weight if weight is not None else None
            grad_bias = grad_bias if bias is not None else None
        return grad_input, grad_weight, grad_bias, None, None, None

    torch.library.register_autograd(op, backward, setup_context=setup)

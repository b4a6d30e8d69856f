"""Argument checks run before any backend, so every backend rejects bad input with the same clear
message (the C++ kernels repeat them, in csrc/common/box_checks.h, for direct torch.ops calls)."""

from __future__ import annotations

import torch
from torch import Tensor

from vision_kernels.reference.boxes import FORMATS, MODES

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _shape(t: Tensor) -> list[int]:
    return list(t.shape)


def check_tensor(t: object, name: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")


def check_boxes(boxes: Tensor, name: str) -> None:
    check_tensor(boxes, name)
    if boxes.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64), got {boxes.dtype}"
        )
    if boxes.dim() < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape [..., 4] (x1, y1, x2, y2), got {_shape(boxes)}")


def check_same_device_dtype(a: Tensor, a_name: str, b: Tensor, b_name: str) -> None:
    if a.device != b.device:
        raise ValueError(f"{a_name} and {b_name} must be on the same device, got {a.device} and {b.device}")
    if a.dtype != b.dtype:
        raise TypeError(f"{a_name} and {b_name} must have the same dtype, got {a.dtype} and {b.dtype}")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(repr(m) for m in MODES)}, got {mode!r}")


def check_format(fmt: str, name: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"{name} must be one of {', '.join(repr(f) for f in FORMATS)}, got {fmt!r}")


def check_pairwise(boxes1: Tensor, boxes2: Tensor) -> None:
    check_boxes(boxes1, "boxes1")
    check_boxes(boxes2, "boxes2")
    check_same_device_dtype(boxes1, "boxes1", boxes2, "boxes2")
    if boxes1.dim() not in (2, 3) or boxes1.dim() != boxes2.dim():
        raise ValueError(
            "boxes1 and boxes2 must both be [N, 4] and [M, 4], or both [B, N, 4] and [B, M, 4]; "
            f"got {_shape(boxes1)} and {_shape(boxes2)}"
        )
    if boxes1.dim() == 3 and boxes1.shape[0] != boxes2.shape[0]:
        raise ValueError(
            f"boxes1 and boxes2 must have the same batch size B, got {boxes1.shape[0]} and {boxes2.shape[0]}"
        )


def check_aligned(boxes1: Tensor, boxes2: Tensor) -> None:
    check_boxes(boxes1, "boxes1")
    check_boxes(boxes2, "boxes2")
    check_same_device_dtype(boxes1, "boxes1", boxes2, "boxes2")
    if boxes1.shape != boxes2.shape:
        raise ValueError(
            f"aligned boxes1 and boxes2 must have the same shape [..., N, 4], got {_shape(boxes1)} and {_shape(boxes2)}"
        )


def check_aligned_grad(grad: Tensor, boxes1: Tensor) -> None:
    check_tensor(grad, "grad")
    if grad.shape != boxes1.shape[:-1]:
        raise ValueError(
            f"grad must have the shape of the aligned output {list(boxes1.shape[:-1])}, got {_shape(grad)}"
        )
    check_same_device_dtype(grad, "grad", boxes1, "boxes1")


def check_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> None:
    check_boxes(boxes, "boxes")
    check_tensor(scores, "scores")
    if boxes.dim() != 2:
        raise ValueError(f"boxes must have shape [N, 4], got {_shape(boxes)}")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape [N] with N = boxes.shape[0] = {boxes.shape[0]}, got {_shape(scores)}")
    check_same_device_dtype(boxes, "boxes", scores, "scores")
    if not isinstance(iou_threshold, (int, float)):
        raise TypeError(f"iou_threshold must be a float, got {type(iou_threshold).__name__}")


def check_batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> None:
    check_nms(boxes, scores, iou_threshold)
    check_tensor(idxs, "idxs")
    if idxs.dim() != 1 or idxs.shape[0] != boxes.shape[0]:
        raise ValueError(f"idxs must have shape [N] with N = boxes.shape[0] = {boxes.shape[0]}, got {_shape(idxs)}")
    if idxs.dtype.is_floating_point or idxs.dtype.is_complex or idxs.dtype == torch.bool:
        raise TypeError(f"idxs must be an integer tensor of category indices, got {idxs.dtype}")
    if idxs.device != boxes.device:
        raise ValueError(f"idxs and boxes must be on the same device, got {idxs.device} and {boxes.device}")


ACTIVATIONS = ("none", "relu", "leaky_relu")
ACTIVATIONS_WITH_TANH = (*ACTIVATIONS, "tanh")


def check_activation(activation: str, allowed: tuple[str, ...] = ACTIVATIONS) -> None:
    if activation not in allowed:
        raise ValueError(f"activation must be one of {', '.join(repr(a) for a in allowed)}, got {activation!r}")


def check_instance_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None) -> None:
    check_tensor(input, "input")
    if input.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"input must be a floating-point tensor (float16, bfloat16, float32 or float64), got {input.dtype}"
        )
    if input.dim() not in (3, 4, 5):
        raise ValueError(f"input must be [N, C, L], [N, C, H, W] or [N, C, D, H, W], got {_shape(input)}")
    for param, name in ((weight, "weight"), (bias, "bias")):
        if param is None:
            continue
        check_tensor(param, name)
        if param.dim() != 1 or param.shape[0] != input.shape[1]:
            raise ValueError(
                f"{name} must have shape [C] with C = input.shape[1] = {input.shape[1]}, got {_shape(param)}"
            )
        if not param.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point tensor, got {param.dtype}")
        if param.device != input.device:
            raise ValueError(f"{name} and input must be on the same device, got {param.device} and {input.device}")


def check_running_statistics(
    input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, use_input_stats: bool
) -> None:
    for stat, name in ((running_mean, "running_mean"), (running_var, "running_var")):
        if stat is None:
            continue
        check_tensor(stat, name)
        if stat.shape != (input.shape[1],):
            raise ValueError(
                f"{name} must have shape [C] with C = input.shape[1] = {input.shape[1]}, got {_shape(stat)}"
            )
        if stat.device != input.device:
            raise ValueError(f"{name} and input must be on the same device, got {stat.device} and {input.device}")
    if not use_input_stats and (running_mean is None or running_var is None):
        raise ValueError("use_input_stats=False normalizes with running_mean and running_var: pass both")


def is_channels_last_layout(t: Tensor) -> bool:
    """[N, C, *S] stored as [N, *S, C] (channels_last for 4-D, channels_last_3d for 5-D)."""
    return not t.is_contiguous() and t.movedim(1, -1).is_contiguous()


def check_conv_transpose_norm_act(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    groups: int,
    norm: str,
    norm_weight: Tensor | None,
    norm_bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    training: bool,
    activation: str,
) -> None:
    check_tensor(input, "input")
    check_tensor(weight, "weight")
    if input.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"input must be a floating-point tensor (float16, bfloat16, float32 or float64), got {input.dtype}"
        )
    if input.dim() != 4:
        raise ValueError(f"input must be [N, C_in, H, W], got {_shape(input)}")
    if weight.dim() != 4:
        raise ValueError(
            f"weight must be [C_in, C_out / groups, kH, kW] (ConvTranspose2d's layout), got {_shape(weight)}"
        )
    if not isinstance(groups, int) or groups < 1 or input.shape[1] % groups or weight.shape[0] != input.shape[1]:
        raise ValueError(
            f"weight.shape[0] must equal input's C_in = {input.shape[1]}, divisible by groups = {groups}; "
            f"got weight {_shape(weight)}"
        )
    check_same_device_dtype(input, "input", weight, "weight")
    out_channels = weight.shape[1] * groups
    for t, name in (
        (bias, "bias"),
        (norm_weight, "norm_weight"),
        (norm_bias, "norm_bias"),
        (running_mean, "running_mean"),
        (running_var, "running_var"),
    ):
        if t is None:
            continue
        check_tensor(t, name)
        if t.shape != (out_channels,):
            raise ValueError(f"{name} must have shape [C_out] with C_out = {out_channels}, got {_shape(t)}")
        if t.device != input.device:
            raise ValueError(f"{name} and input must be on the same device, got {t.device} and {input.device}")
    if norm not in ("batch", "instance", "none"):
        raise ValueError(f"norm must be one of 'batch', 'instance', 'none', got {norm!r}")
    check_activation(activation, allowed=("relu", "leaky_relu", "tanh", "none"))
    if norm == "none" and any(t is not None for t in (norm_weight, norm_bias, running_mean, running_var)):
        raise ValueError(
            "norm='none' takes no norm_weight, norm_bias or running statistics; "
            "use norm='batch' or 'instance' to normalize"
        )
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var go together: pass both or neither")
    if norm == "batch" and not training and running_mean is None:
        raise ValueError("norm='batch' with training=False normalizes with running_mean and running_var: pass both")

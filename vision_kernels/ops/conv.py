"""ConvTranspose2d + BatchNorm2d / InstanceNorm2d + activation, fused.

- Training (batch statistics): the convolution goes through the dispatcher (oneDNN on CPU, cuDNN on
  CUDA) without its bias (a bias before a normalization only shifts the mean, so it cancels; the
  running mean gets it back), then one fused kernel computes the statistics in one pass and applies
  normalization + activation in the next (vision_kernels::batch_norm_act / instance_norm). Its
  backward fuses the activation and normalization backward; the convolution's goes through the
  dispatcher. Saved for backward: the input and weight (by the convolution) and the convolution's
  output with the [C] statistics (by the norm kernel): the unfused sequence saves the activation's
  output on top.
- Eval with running statistics: the normalization folds into the convolution's weight and bias,
  and the activation runs in the convolution's epilogue (oneDNN's post-op on CPU, when no gradient
  is needed; otherwise an in-place activation right after the convolution).
- The triton backend computes the convolution itself too (vision_kernels/triton/conv_transpose.py:
  implicit GEMM over stride phases, bias and activation in its epilogue) where it supports it
  (groups=1, dilation=1, float16/bfloat16/float32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vision_kernels import backends, reference
from vision_kernels.ops import _checks
from vision_kernels.reference import conv as ref_conv
from vision_kernels.reference import norm as ref_norm

NORMS = ("batch", "instance", "none")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "none")
_MKLDNN_ATTR = {"relu": "relu", "leaky_relu": "leaky_relu", "tanh": "tanh", "none": "none"}


def _pair(v: int | tuple[int, ...] | list[int], name: str) -> list[int]:
    if isinstance(v, int):
        return [v, v]
    if len(v) != 2 or not all(isinstance(i, int) for i in v):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return list(v)


def fold_norm(
    weight: Tensor,
    bias: Tensor | None,
    norm_weight: Tensor | None,
    norm_bias: Tensor | None,
    running_mean: Tensor,
    running_var: Tensor,
    eps: float,
    groups: int,
) -> tuple[Tensor, Tensor]:
    """The weight and bias of a transposed convolution that computes conv then the normalization
    with running statistics: W' = W * s per output channel, b' = (b - mean) * s + beta, where
    s = gamma / sqrt(var + eps). Differentiable in every parameter."""
    scale = torch.rsqrt(running_var.to(weight.dtype) + eps)
    if norm_weight is not None:
        scale = scale * norm_weight
    cin, cog, kh, kw = weight.shape  # transposed: [in, out / groups, kh, kw]
    folded_w = (weight.view(groups, cin // groups, cog, kh, kw) * scale.view(groups, 1, cog, 1, 1)).view_as(weight)
    shift = -running_mean.to(weight.dtype) if bias is None else bias - running_mean
    folded_b = shift * scale + (norm_bias if norm_bias is not None else 0)
    return folded_w, folded_b


def _activate_(y: Tensor, activation: str, negative_slope: float) -> Tensor:
    """The activation in place on a fresh convolution output (its backward needs only the output)."""
    if activation == "relu":
        return y.relu_()
    if activation == "leaky_relu":
        return F.leaky_relu_(y, negative_slope)
    if activation == "tanh":
        return y.tanh_()
    return y


def conv_bias_act(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride,
    padding,
    output_padding,
    groups,
    dilation,
    activation: str,
    negative_slope: float,
) -> Tensor:
    """act(conv_transpose2d(input, weight, bias)), the activation in the convolution's epilogue."""
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (input, weight, bias))
    if (
        input.device.type == "cpu"
        and input.dtype in (torch.float32, torch.bfloat16)
        and not needs_grad
        and not torch.compiler.is_compiling()
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_transpose_pointwise")
    ):
        scalars = [negative_slope] if activation == "leaky_relu" else []
        return torch.ops.mkldnn._convolution_transpose_pointwise(
            input,
            weight,
            bias,
            padding,
            output_padding,
            stride,
            dilation,
            groups,
            _MKLDNN_ATTR[activation],
            scalars,
            "",
        )
    y = F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return _activate_(y, activation, negative_slope)


class _CancelledBias(torch.autograd.Function):
    """Returns `out` unchanged and gives `bias` the zero gradient it has mathematically: a bias
    before a normalization with batch statistics cancels, so the kernels skip it, yet the unfused
    sequence leaves a (zero) gradient on it that optimizers (weight decay) see."""

    @staticmethod
    def forward(ctx, out: Tensor, bias: Tensor) -> Tensor:
        ctx.bias_shape, ctx.bias_dtype = bias.shape, bias.dtype
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, grad.new_zeros(ctx.bias_shape, dtype=ctx.bias_dtype)


def _norm_op(norm: str, backend: str):
    name = "batch_norm_act" if norm == "batch" else "instance_norm"
    if backend == "triton":
        return getattr(torch.ops.vision_kernels, f"{name}_triton")
    return getattr(torch.ops.vision_kernels, name)


def conv_transpose_norm_act(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
    *,
    norm: str = "batch",
    norm_weight: Tensor | None = None,
    norm_bias: Tensor | None = None,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
    activation: str = "relu",
    negative_slope: float = 0.01,
    backend: str | None = None,
) -> Tensor:
    """act(norm(F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups,
    dilation))), fused (see the module docstring).

    norm: "batch" (F.batch_norm semantics: batch statistics when `training`, biased variance to
    normalize, unbiased for the running variance, updated in place with `momentum`; running
    statistics when not training), "instance" (F.instance_norm: input statistics when `training` or
    without running statistics) or "none". norm_weight/norm_bias: the norm's affine parameters.
    activation: "relu", "leaky_relu" (negative_slope), "tanh" or "none".
    momentum: a float, as F.batch_norm takes it (nn.BatchNorm2d turns momentum=None into the
    cumulative average 1 / num_batches_tracked before calling; vision_kernels.nn does the same).
    """
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    output_padding, dilation = _pair(output_padding, "output_padding"), _pair(dilation, "dilation")
    if torch.is_autocast_enabled(input.device.type):
        # As autocast runs F.conv_transpose2d: input, weight and bias in the autocast dtype (the
        # casts are differentiable, so fp32 master weights get their gradients); the norm's
        # parameters and running statistics stay fp32, as nn.BatchNorm2d keeps them under autocast.
        dtype = torch.get_autocast_dtype(input.device.type)
        input, weight = input.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    _checks.check_conv_transpose_norm_act(
        input, weight, bias, groups, norm, norm_weight, norm_bias, running_mean, running_var, training, activation
    )
    name = backends.resolve("conv_transpose_norm_act", input.device, backend)
    if name not in backends.BACKENDS:
        return backends.plugin_impl("conv_transpose_norm_act", name)(
            input,
            weight,
            bias,
            stride,
            padding,
            output_padding,
            groups,
            dilation,
            norm=norm,
            norm_weight=norm_weight,
            norm_bias=norm_bias,
            running_mean=running_mean,
            running_var=running_var,
            training=training,
            momentum=momentum,
            eps=eps,
            activation=activation,
            negative_slope=negative_slope,
        )
    if name == "reference":
        return ref_conv.conv_transpose_norm_act(
            input,
            weight,
            bias,
            stride,
            padding,
            output_padding,
            groups,
            dilation,
            norm=norm,
            norm_weight=norm_weight,
            norm_bias=norm_bias,
            running_mean=running_mean,
            running_var=running_var,
            training=training,
            momentum=momentum,
            eps=eps,
            activation=activation,
            negative_slope=negative_slope,
        )
    batch_statistics = (norm == "batch" and training) or (norm == "instance" and (training or running_mean is None))
    if norm == "none" or not batch_statistics:
        if norm != "none":
            weight, bias = fold_norm(weight, bias, norm_weight, norm_bias, running_mean, running_var, eps, groups)
        return conv_bias_act(
            input, weight, bias, stride, padding, output_padding, groups, dilation, activation, negative_slope
        )
    y = F.conv_transpose2d(input, weight, None, stride, padding, output_padding, groups, dilation)
    out, mean, rstd = _norm_op(norm, name)(y, norm_weight, norm_bias, eps, activation, negative_slope)
    if bias is not None and bias.requires_grad and torch.is_grad_enabled():
        out = _CancelledBias.apply(out, bias)
    if running_mean is not None or running_var is not None:
        if bias is not None:  # the statistics are of the convolution without its bias ([C] or [N, C])
            mean = mean + bias.detach().to(mean.dtype)
        if norm == "batch":
            count = y.shape[0] * y.shape[2] * y.shape[3]
            ref_norm.update_batch_running_statistics(running_mean, running_var, mean, rstd, eps, momentum, count)
        else:
            ref_norm.update_running_statistics(
                running_mean, running_var, mean, rstd, eps, momentum, y.shape[2] * y.shape[3]
            )
    return out


__all__ = ["conv_transpose_norm_act", "fold_norm", "reference"]

"""Instance norm and batch norm (batch statistics) with a fused activation, in plain torch: the
definition every backend is tested against.

Statistics per (sample, channel) plane for instance norm, per channel over the batch for batch
norm: mean and biased variance, computed in float32 (float64 for float64 input) by torch.var_mean
(never E[x^2] - E[x]^2); y = act((x - mean) * rstd * weight + bias) with rstd = 1 / sqrt(var +
eps); activation none, relu, leaky_relu or tanh.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vision_kernels.reference.boxes import acc_dtype

ACTIVATIONS = ("none", "relu", "leaky_relu", "tanh")


def activate(z: Tensor, activation: str, negative_slope: float) -> Tensor:
    if activation == "relu":
        return F.relu(z)
    if activation == "leaky_relu":
        return F.leaky_relu(z, negative_slope)
    if activation == "tanh":
        return torch.tanh(z)
    return z


def _per_channel(t: Tensor, ndim: int, dtype: torch.dtype) -> Tensor:
    return t.to(dtype).view(1, -1, *([1] * (ndim - 2)))


def _normalize(
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    activation: str,
    negative_slope: float,
    dims: tuple[int, ...],
) -> tuple[Tensor, Tensor, Tensor]:
    """act(normalize over `dims`, then affine); returns (out, mean, rstd) with `dims` kept."""
    acc = acc_dtype(input.dtype)
    x = input.to(acc)
    if any(input.shape[d] == 0 for d in dims) or input.numel() == 0:  # nothing to average: mean 0, var 0
        shape = [1 if d in dims else size for d, size in enumerate(input.shape)]
        mean = x.new_zeros(shape)
        var = torch.zeros_like(mean)
    else:
        var, mean = torch.var_mean(x, dim=dims, unbiased=False, keepdim=True)
    rstd = torch.rsqrt(var + eps)
    z = (x - mean) * rstd
    if weight is not None:
        z = z * _per_channel(weight, input.dim(), acc)
    if bias is not None:
        z = z + _per_channel(bias, input.dim(), acc)
    return activate(z, activation, negative_slope).to(input.dtype), mean, rstd


def instance_norm(
    input: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    activation: str = "none",
    negative_slope: float = 0.01,
) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (out, mean, rstd): out like input, mean and rstd [N, C] in the accumulation dtype."""
    out, mean, rstd = _normalize(input, weight, bias, eps, activation, negative_slope, tuple(range(2, input.dim())))
    n, c = input.shape[:2]
    return out, mean.reshape(n, c), rstd.reshape(n, c)


def batch_norm_act(
    input: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    activation: str = "none",
    negative_slope: float = 0.01,
) -> tuple[Tensor, Tensor, Tensor]:
    """Batch norm with the batch's statistics (training mode), then the activation. Returns
    (out, mean, rstd) with [C] statistics in the accumulation dtype."""
    dims = (0, *range(2, input.dim()))
    out, mean, rstd = _normalize(input, weight, bias, eps, activation, negative_slope, dims)
    return out, mean.reshape(-1), rstd.reshape(-1)


def normalize_with_statistics(
    input: Tensor,
    mean: Tensor,
    var: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    activation: str,
    negative_slope: float,
) -> Tensor:
    """act((x - mean) / sqrt(var + eps) * weight + bias) with given per-channel [C] statistics:
    instance norm in eval mode with running statistics, as torch's."""
    acc = acc_dtype(input.dtype)
    x = input.to(acc)
    scale = torch.rsqrt(var.to(acc) + eps)
    if weight is not None:
        scale = scale * weight.to(acc)
    z = (x - _per_channel(mean, input.dim(), acc)) * _per_channel(scale, input.dim(), acc)
    if bias is not None:
        z = z + _per_channel(bias, input.dim(), acc)
    return activate(z, activation, negative_slope).to(input.dtype)


def update_running_statistics(
    running_mean: Tensor | None,
    running_var: Tensor | None,
    mean: Tensor,
    rstd: Tensor,
    eps: float,
    momentum: float,
    plane_size: int,
) -> None:
    """torch's instance-norm update, in place: each sample's statistics move the running ones by
    `momentum` (unbiased variance), and the results are averaged over the batch."""
    with torch.no_grad():
        if running_mean is not None:
            new = (1 - momentum) * running_mean.double() + momentum * mean.double()
            running_mean.copy_(new.mean(0))
        if running_var is not None:
            if plane_size < 2:
                raise ValueError(
                    "updating running_var needs more than 1 spatial element per plane (its unbiased "
                    f"variance divides by S - 1), got S = {plane_size}"
                )
            var = (rstd.double() ** -2 - eps).clamp(min=0) * (plane_size / (plane_size - 1))
            new = (1 - momentum) * running_var.double() + momentum * var
            running_var.copy_(new.mean(0))


def update_batch_running_statistics(
    running_mean: Tensor | None,
    running_var: Tensor | None,
    mean: Tensor,
    rstd: Tensor,
    eps: float,
    momentum: float,
    count: int,
) -> None:
    """torch's batch-norm update, in place: running = (1 - momentum) * running + momentum * batch,
    with the unbiased variance of the `count` values per channel."""
    with torch.no_grad():
        if running_mean is not None:
            running_mean.copy_((1 - momentum) * running_mean.double() + momentum * mean.double())
        if running_var is not None:
            if count < 2:
                raise ValueError(f"updating running_var needs more than 1 value per channel, got {count}")
            var = (rstd.double() ** -2 - eps).clamp(min=0) * (count / (count - 1))
            running_var.copy_((1 - momentum) * running_var.double() + momentum * var)


def plane_size(input: Tensor) -> int:
    return math.prod(input.shape[2:])

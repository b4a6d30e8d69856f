"""ConvTranspose2d, then batch norm / instance norm / nothing, then an activation: the unfused
torch sequence, which defines what the fused backends compute."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from vision_kernels.reference.norm import activate


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
) -> Tensor:
    y = F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if norm == "batch":
        y = F.batch_norm(y, running_mean, running_var, norm_weight, norm_bias, training, momentum, eps)
    elif norm == "instance":
        use_input_stats = training or running_mean is None
        y = F.instance_norm(y, running_mean, running_var, norm_weight, norm_bias, use_input_stats, momentum, eps)
    return activate(y, activation, negative_slope)

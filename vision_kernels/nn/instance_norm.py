"""Drop-in instance-norm modules running vision_kernels.ops.instance_norm.

InstanceNorm1d/2d/3d subclass torch's classes and replace only the call to F.instance_norm:
constructor, parameters, buffers and state_dict keys, input checks, inputs without a batch
dimension, affine, track_running_stats with torch's momentum semantics (momentum=None leaves the
running statistics unchanged, as torch's InstanceNorm does) and eval behaviour are torch's own.
InstanceNormAct1d/2d/3d add the activation (relu or leaky_relu) fused into the same kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vision_kernels import ops


class _VkInstanceNorm:
    """Mixin over torch's _InstanceNorm: computes with vision_kernels.ops.instance_norm."""

    activation: str = "none"
    negative_slope: float = 0.01
    backend: str | None = None

    def _apply_instance_norm(self, input: Tensor) -> Tensor:
        return ops.instance_norm(
            input,
            self.weight,
            self.bias,
            self.eps,
            self.activation,
            self.negative_slope,
            running_mean=self.running_mean,
            running_var=self.running_var,
            use_input_stats=self.training or not self.track_running_stats,
            momentum=self.momentum if self.momentum is not None else 0.0,
            backend=self.backend,
        )


class InstanceNorm1d(_VkInstanceNorm, nn.InstanceNorm1d):
    """torch.nn.InstanceNorm1d on vision_kernels' kernels."""


class InstanceNorm2d(_VkInstanceNorm, nn.InstanceNorm2d):
    """torch.nn.InstanceNorm2d on vision_kernels' kernels."""


class InstanceNorm3d(_VkInstanceNorm, nn.InstanceNorm3d):
    """torch.nn.InstanceNorm3d on vision_kernels' kernels."""


class _ActMixin:
    """Adds the activation to the constructor of a vision_kernels InstanceNorm class."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        activation: str = "relu",
        negative_slope: float = 0.01,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        if activation not in ("none", "relu", "leaky_relu"):
            raise ValueError(f"activation must be one of 'none', 'relu', 'leaky_relu', got {activation!r}")
        self.activation = activation
        self.negative_slope = negative_slope

    def extra_repr(self) -> str:
        act = self.activation + (f"(negative_slope={self.negative_slope})" if self.activation == "leaky_relu" else "")
        return f"{super().extra_repr()}, activation={act}"


class InstanceNormAct1d(_ActMixin, InstanceNorm1d):
    """InstanceNorm1d then an activation ('relu', 'leaky_relu' with negative_slope, or 'none') in
    one kernel; the parameter and buffer names of nn.Sequential(nn.InstanceNorm1d(...), nn.ReLU())."""


class InstanceNormAct2d(_ActMixin, InstanceNorm2d):
    """InstanceNorm2d then an activation ('relu', 'leaky_relu' with negative_slope, or 'none') in
    one kernel; the parameter and buffer names of nn.Sequential(nn.InstanceNorm2d(...), nn.ReLU())."""


class InstanceNormAct3d(_ActMixin, InstanceNorm3d):
    """InstanceNorm3d then an activation ('relu', 'leaky_relu' with negative_slope, or 'none') in
    one kernel; the parameter and buffer names of nn.Sequential(nn.InstanceNorm3d(...), nn.ReLU())."""


TORCH_TO_VK = {nn.InstanceNorm1d: InstanceNorm1d, nn.InstanceNorm2d: InstanceNorm2d, nn.InstanceNorm3d: InstanceNorm3d}
TORCH_TO_VK_ACT = {
    nn.InstanceNorm1d: InstanceNormAct1d,
    nn.InstanceNorm2d: InstanceNormAct2d,
    nn.InstanceNorm3d: InstanceNormAct3d,
}

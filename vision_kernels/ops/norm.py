"""Instance normalization with a fused activation."""

from __future__ import annotations

import torch
from torch import Tensor

from vision_kernels import backends, reference
from vision_kernels.ops import _checks
from vision_kernels.reference import norm as ref


def _implementation(backend: str):
    if backend == "native":
        return torch.ops.vision_kernels.instance_norm
    if backend == "triton":
        return torch.ops.vision_kernels.instance_norm_triton
    if backend == "reference":
        return reference.instance_norm
    return backends.plugin_impl("instance_norm", backend)


def instance_norm(
    input: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    activation: str = "none",
    negative_slope: float = 0.01,
    *,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    backend: str | None = None,
) -> Tensor:
    """Instance normalization of each (sample, channel) plane, then an activation, in one kernel.

    Args:
        input: [N, C, L], [N, C, H, W] or [N, C, D, H, W]; contiguous or channels last (the output
            keeps the layout); float16, bfloat16, float32 or float64.
        weight, bias: optional [C] affine parameters.
        activation: "none", "relu" or "leaky_relu" (with `negative_slope`).
        running_mean, running_var, use_input_stats, momentum: as torch.nn.functional.instance_norm:
            with use_input_stats (training), running statistics given are updated in place with
            torch's formula; without it (eval), they normalize instead of the input's statistics.
        backend: "native", "triton", "reference" or "auto" (see vision_kernels.backends).

    Statistics are computed in float32 (float64 for float64 input), by two passes in double on CPU;
    the result equals F.instance_norm followed by the activation, and is differentiable in input,
    weight and bias with a fused backward.
    """
    _checks.check_instance_norm(input, weight, bias)
    _checks.check_activation(activation)
    _checks.check_running_statistics(input, running_mean, running_var, use_input_stats)
    if not use_input_stats:
        return ref.normalize_with_statistics(
            input, running_mean, running_var, weight, bias, eps, activation, negative_slope
        )
    impl = _implementation(backends.resolve("instance_norm", input.device, backend))
    out, mean, rstd = impl(input, weight, bias, eps, activation, negative_slope)
    if running_mean is not None or running_var is not None:
        ref.update_running_statistics(running_mean, running_var, mean, rstd, eps, momentum, ref.plane_size(input))
    return out

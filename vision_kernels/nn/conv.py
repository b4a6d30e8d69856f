"""ConvTranspose2d + BatchNorm2d / InstanceNorm2d + activation as one fused module.

ConvTransposeNormAct2d *is* an nn.Sequential(ConvTranspose2d, norm, activation): same parameter and
buffer names ("0.weight", "1.running_mean", ...), so a state_dict of the unfused Sequential loads
into it and back; only its forward differs: one call to vision_kernels.ops.conv_transpose_norm_act.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vision_kernels import ops


def activation_of(module: nn.Module | None) -> tuple[str, float] | None:
    """("relu" | "leaky_relu" | "tanh" | "none", negative_slope) for an activation module fuse can
    fold (None: absent or Identity), or None for anything else."""
    if module is None or type(module) is nn.Identity:
        return "none", 0.01
    if type(module) is nn.ReLU:
        return "relu", 0.01
    if type(module) is nn.LeakyReLU:
        return "leaky_relu", module.negative_slope
    if type(module) is nn.Tanh:
        return "tanh", 0.01
    return None


def _norm_kind(norm: nn.Module | None) -> str:
    if norm is None or type(norm) is nn.Identity:
        return "none"
    return "batch" if isinstance(norm, nn.modules.batchnorm._BatchNorm) else "instance"


def _fold_key(tensors: tuple[Tensor | None, ...], eps: float) -> tuple:
    """Changes whenever one of the tensors is replaced or modified in place (optimizer steps,
    load_state_dict, .to())."""
    return (eps, *((t.data_ptr(), t._version, t.dtype, t.device) if t is not None else None for t in tensors))


def _cached_fold(conv: nn.ConvTranspose2d, norm: nn.Module) -> tuple[Tensor, Tensor]:
    """conv's weight and bias with the eval-mode norm folded in, computed once per parameter state
    (eval, no gradient needed: inference)."""
    tensors = (conv.weight, conv.bias, norm.weight, norm.bias, norm.running_mean, norm.running_var)
    key = _fold_key(tensors, norm.eps)
    cache = conv.__dict__.get("_vk_fold_cache")
    if cache is None or cache[0] != key:
        with torch.no_grad():
            folded = ops.conv.fold_norm(
                conv.weight,
                conv.bias,
                norm.weight,
                norm.bias,
                norm.running_mean,
                norm.running_var,
                norm.eps,
                conv.groups,
            )
        cache = conv.__dict__["_vk_fold_cache"] = (key, folded)
    return cache[1]


def fused_forward(
    conv: nn.ConvTranspose2d,
    norm: nn.Module | None,
    activation: str,
    negative_slope: float,
    input: Tensor,
    output_size: list[int] | None = None,
    backend: str | None = None,
) -> Tensor:
    """act(norm(conv(input))) with the modules' own parameters, buffers and train/eval state,
    through one fused op; the running statistics are updated as the modules would."""
    if conv.padding_mode != "zeros":
        raise ValueError(f"only padding_mode='zeros' is supported for ConvTranspose2d, got {conv.padding_mode!r}")
    output_padding = conv._output_padding(
        input, output_size, conv.stride, conv.padding, conv.kernel_size, 2, conv.dilation
    )
    kind = _norm_kind(norm)
    kwargs = {}
    if kind == "batch":
        # nn.BatchNorm2d.forward's bookkeeping: momentum=None is the cumulative average.
        factor = 0.0 if norm.momentum is None else norm.momentum
        if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
            norm.num_batches_tracked.add_(1)
            factor = 1.0 / float(norm.num_batches_tracked) if norm.momentum is None else norm.momentum
        training = norm.training or (norm.running_mean is None and norm.running_var is None)
        tracked = not norm.training or norm.track_running_stats
        kwargs = dict(
            running_mean=norm.running_mean if tracked else None,
            running_var=norm.running_var if tracked else None,
            training=training,
            momentum=factor,
        )
    elif kind == "instance":
        kwargs = dict(
            running_mean=norm.running_mean,
            running_var=norm.running_var,
            training=norm.training or not norm.track_running_stats,
            momentum=norm.momentum if norm.momentum is not None else 0.0,
        )
    if kind != "none":
        kwargs.update(norm_weight=norm.weight, norm_bias=norm.bias, eps=norm.eps)
        inference = not torch.is_grad_enabled() or not any(
            t is not None and t.requires_grad for t in (input, conv.weight, conv.bias, norm.weight, norm.bias)
        )
        if (
            not kwargs["training"]
            and kwargs["running_mean"] is not None
            and inference
            and (not torch.compiler.is_compiling())
        ):
            weight, bias = _cached_fold(conv, norm)
            return ops.conv_transpose_norm_act(
                input,
                weight,
                bias,
                conv.stride,
                conv.padding,
                output_padding,
                conv.groups,
                conv.dilation,
                norm="none",
                activation=activation,
                negative_slope=negative_slope,
                backend=backend,
            )
    return ops.conv_transpose_norm_act(
        input,
        conv.weight,
        conv.bias,
        conv.stride,
        conv.padding,
        output_padding,
        conv.groups,
        conv.dilation,
        norm=kind,
        activation=activation,
        negative_slope=negative_slope,
        backend=backend,
        **kwargs,
    )


class ConvTransposeNormAct2d(nn.Sequential):
    """nn.Sequential(nn.ConvTranspose2d, nn.BatchNorm2d or nn.InstanceNorm2d, activation), fused.

    Args: those of nn.ConvTranspose2d; norm = "batch", "instance" or "none"; activation = "relu",
    "leaky_relu" (negative_slope), "tanh" or "none"; eps, momentum, affine, track_running_stats of
    the norm (affine and track_running_stats default to the norm class's own defaults).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        norm: str = "batch",
        activation: str = "relu",
        negative_slope: float = 0.01,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool | None = None,
        track_running_stats: bool | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        factory = {"device": device, "dtype": dtype}
        conv = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation, **factory
        )
        if norm == "batch":
            norm_module = nn.BatchNorm2d(
                out_channels,
                eps,
                momentum,
                True if affine is None else affine,
                True if track_running_stats is None else track_running_stats,
                **factory,
            )
        elif norm == "instance":
            norm_module = nn.InstanceNorm2d(
                out_channels, eps, momentum, bool(affine), bool(track_running_stats), **factory
            )
        elif norm == "none":
            norm_module = nn.Identity()
        else:
            raise ValueError(f"norm must be one of 'batch', 'instance', 'none', got {norm!r}")
        act_modules = {"relu": nn.ReLU, "tanh": nn.Tanh, "none": nn.Identity}
        if activation == "leaky_relu":
            act = nn.LeakyReLU(negative_slope)
        elif activation in act_modules:
            act = act_modules[activation]()
        else:
            raise ValueError(f"activation must be one of 'relu', 'leaky_relu', 'tanh', 'none', got {activation!r}")
        super().__init__(conv, norm_module, act)

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        activation, slope = activation_of(self[2])
        return fused_forward(self[0], self[1], activation, slope, input, output_size)


class FusedConvTranspose2d(nn.ConvTranspose2d):
    """What fuse() puts in place of a ConvTranspose2d followed by a norm and/or an activation: the
    same module (same parameters, same state_dict), whose forward also applies the norm module that
    follows it (kept in place, with its parameters and buffers, now passing its input through) and
    the activation."""

    fused_norm: nn.Module | None
    fused_activation: tuple[str, float]

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        return fused_forward(self, self.fused_norm, *self.fused_activation, input, output_size)

    def extra_repr(self) -> str:
        norm = type(self.fused_norm).__name__.removeprefix("Applied") if self.fused_norm is not None else "none"
        return f"{super().extra_repr()}, fused: {norm} + {self.fused_activation[0]}"


def _applied(norm_class: type) -> type:
    def forward(self, input: Tensor) -> Tensor:
        return input

    return type(
        f"Applied{norm_class.__name__}",
        (norm_class,),
        {
            "forward": forward,
            "__doc__": f"A {norm_class.__name__} whose normalization the preceding FusedConvTranspose2d "
            "already applied: it keeps its parameters and buffers and passes its input through.",
            "__module__": __name__,
        },
    )


AppliedBatchNorm2d = _applied(nn.BatchNorm2d)
AppliedInstanceNorm2d = _applied(nn.InstanceNorm2d)

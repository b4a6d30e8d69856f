"""Triton instance norm and batch norm (batch statistics) with a fused activation, forward and
backward. Both reduce the same per-plane chunks; batch norm merges a channel's planes too.

Each (sample, channel) plane is cut into chunks of CHUNK elements, so that one large plane (batch
1 at 256x256 and up) spreads over many programs. Per chunk, statistics by two passes: the sum of
x - pivot (the chunk's first element, so float32 sums stay accurate when the mean is large next to
the spread), then the sum of squared deviations from the chunk mean. Chunks merge by Chan's formula
(exact, in float64, on [planes, chunks] values); no atomics anywhere, so results are deterministic.
The backward sums sum(g_z) and sum(g_z * xhat) per chunk the same way. Contiguous planes and
channels-last input have their own reduction kernels (tiles of rows x channels, so loads are
coalesced); the elementwise kernels serve both layouts.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op

from vision_kernels import reference
from vision_kernels.ops import _checks
from vision_kernels.ops._autograd import register_norm_autograd
from vision_kernels.triton._common import div, launch, load_acc

_ACTIVATION_ID = {"none": 0, "relu": 1, "leaky_relu": 2}
_CHUNK = 4096  # elements of a plane per program (contiguous layout)
_BLOCK = 1024
_ROWS, _CHANNELS = 16, 64  # channels-last tile
_ROW_CHUNK = 256  # rows per program (channels last)
FORWARD_SCHEMA = (
    "(Tensor input, Tensor? weight, Tensor? bias, float eps, str activation, float negative_slope)"
    " -> (Tensor, Tensor, Tensor)"
)
BACKWARD_SCHEMA = (
    "(Tensor grad_out, Tensor input, Tensor? weight, Tensor? bias, Tensor mean, Tensor rstd, str activation,"
    " float negative_slope) -> (Tensor, Tensor, Tensor)"
)


@triton.jit
def _activate(z, ACT: tl.constexpr, slope):
    if ACT == 1:
        z = tl.where(z > 0, z, 0.0)
    elif ACT == 2:
        z = tl.where(z > 0, z, z * slope)
    return z


@triton.jit
def _activation_slope(z, ACT: tl.constexpr, slope):
    if ACT == 1:
        d = tl.where(z > 0, 1.0, 0.0)
    elif ACT == 2:
        d = tl.where(z > 0, 1.0, slope)
    else:
        d = z * 0.0 + 1.0
    return d


@triton.jit
def _plane_stats_kernel(x_ptr, partial_ptr, S, C, CHUNKS, FP64: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    plane = tl.program_id(0).to(tl.int64) // CHUNKS  # one axis: axes 1 and 2 stop at 65535 programs
    chunk = tl.program_id(0).to(tl.int64) % CHUNKS
    start = chunk * CHUNK
    x = x_ptr + plane * S
    count = tl.minimum(S - start, CHUNK)
    pivot = load_acc(x + start, True, FP64)
    acc = tl.zeros([BLOCK], dtype=pivot.dtype)
    for off in range(0, CHUNK, BLOCK):
        i = start + off + tl.arange(0, BLOCK)
        ok = (i < S) & (off + tl.arange(0, BLOCK) < CHUNK)
        acc += tl.where(ok, load_acc(x + i, ok, FP64) - pivot, 0.0)
    mean = pivot + div(tl.sum(acc, axis=0), count.to(pivot.dtype))
    acc = tl.zeros([BLOCK], dtype=pivot.dtype)
    for off in range(0, CHUNK, BLOCK):
        i = start + off + tl.arange(0, BLOCK)
        ok = (i < S) & (off + tl.arange(0, BLOCK) < CHUNK)
        d = tl.where(ok, load_acc(x + i, ok, FP64) - mean, 0.0)
        acc += d * d
    out = partial_ptr + (plane * CHUNKS + chunk) * 3
    tl.store(out, count.to(pivot.dtype))
    tl.store(out + 1, mean)
    tl.store(out + 2, tl.sum(acc, axis=0))


@triton.jit
def _cl_stats_kernel(
    x_ptr,
    partial_ptr,
    S,
    C,
    CHUNKS,
    FP64: tl.constexpr,
    ROW_CHUNK: tl.constexpr,
    ROWS: tl.constexpr,
    CHANNELS: tl.constexpr,
):
    chunk = tl.program_id(0).to(tl.int64)
    n = tl.program_id(1).to(tl.int64)
    c = tl.program_id(2).to(tl.int64) * CHANNELS + tl.arange(0, CHANNELS)
    c_ok = c < C
    start = chunk * ROW_CHUNK
    x = x_ptr + n * S * C
    count = tl.minimum(S - start, ROW_CHUNK)
    pivot = load_acc(x + start * C + c, c_ok, FP64)
    acc = tl.zeros([ROWS, CHANNELS], dtype=pivot.dtype)
    for off in range(0, ROW_CHUNK, ROWS):
        r = start + off + tl.arange(0, ROWS)
        ok = ((r < S) & (off + tl.arange(0, ROWS) < ROW_CHUNK))[:, None] & c_ok[None, :]
        acc += tl.where(ok, load_acc(x + r[:, None] * C + c[None, :], ok, FP64) - pivot[None, :], 0.0)
    mean = pivot + div(tl.sum(acc, axis=0), count.to(pivot.dtype))
    acc = tl.zeros([ROWS, CHANNELS], dtype=pivot.dtype)
    for off in range(0, ROW_CHUNK, ROWS):
        r = start + off + tl.arange(0, ROWS)
        ok = ((r < S) & (off + tl.arange(0, ROWS) < ROW_CHUNK))[:, None] & c_ok[None, :]
        d = tl.where(ok, load_acc(x + r[:, None] * C + c[None, :], ok, FP64) - mean[None, :], 0.0)
        acc += d * d
    out = partial_ptr + ((n * C + c) * CHUNKS + chunk) * 3
    tl.store(out, (mean * 0.0 + count).to(pivot.dtype), mask=c_ok)
    tl.store(out + 1, mean, mask=c_ok)
    tl.store(out + 2, tl.sum(acc, axis=0), mask=c_ok)


@triton.jit
def _plane_and_channel(i, S, C, CL: tl.constexpr):
    """Plane (n * C + c) and channel of flat element i, for either layout."""
    if CL:
        c = i % C
        plane = (i // (S * C)) * C + c
    else:
        plane = i // S
        c = plane % C
    return plane, c


@triton.jit
def _apply_kernel(
    x_ptr,
    y_ptr,
    mean_ptr,
    rstd_ptr,
    w_ptr,
    b_ptr,
    slope_ptr,
    S,
    C,
    TOTAL,
    HAS_W: tl.constexpr,
    HAS_B: tl.constexpr,
    ACT: tl.constexpr,
    CL: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = i < TOTAL
    plane, c = _plane_and_channel(i, S, C, CL)
    x = load_acc(x_ptr + i, ok, FP64)
    z = (x - load_acc(mean_ptr + plane, ok, FP64)) * load_acc(rstd_ptr + plane, ok, FP64)
    if HAS_W:
        z = z * load_acc(w_ptr + c, ok, FP64)
    if HAS_B:
        z = z + load_acc(b_ptr + c, ok, FP64)
    z = _activate(z, ACT, load_acc(slope_ptr, True, FP64))
    tl.store(y_ptr + i, z.to(y_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _grad_terms(x, g, mean, rstd, w, b, slope, ACT: tl.constexpr):
    """(g_z, xhat): the gradient through the activation, and the normalized input."""
    xhat = (x - mean) * rstd
    return g * _activation_slope(xhat * w + b, ACT, slope), xhat


@triton.jit
def _plane_grad_sums_kernel(
    x_ptr,
    g_ptr,
    mean_ptr,
    rstd_ptr,
    w_ptr,
    b_ptr,
    slope_ptr,
    partial_ptr,
    S,
    C,
    CHUNKS,
    HAS_W: tl.constexpr,
    HAS_B: tl.constexpr,
    ACT: tl.constexpr,
    FP64: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK: tl.constexpr,
):
    plane = tl.program_id(0).to(tl.int64) // CHUNKS
    chunk = tl.program_id(0).to(tl.int64) % CHUNKS
    c = plane % C
    mean = load_acc(mean_ptr + plane, True, FP64)
    rstd = load_acc(rstd_ptr + plane, True, FP64)
    w = load_acc(w_ptr + c, True, FP64) if HAS_W else mean * 0.0 + 1.0
    b = load_acc(b_ptr + c, True, FP64) if HAS_B else mean * 0.0
    slope = load_acc(slope_ptr, True, FP64)
    acc_a = tl.zeros([BLOCK], dtype=mean.dtype)
    acc_b = tl.zeros([BLOCK], dtype=mean.dtype)
    start = chunk * CHUNK
    for off in range(0, CHUNK, BLOCK):
        i = start + off + tl.arange(0, BLOCK)
        ok = (i < S) & (off + tl.arange(0, BLOCK) < CHUNK)
        gz, xhat = _grad_terms(
            load_acc(x_ptr + plane * S + i, ok, FP64),
            load_acc(g_ptr + plane * S + i, ok, FP64),
            mean,
            rstd,
            w,
            b,
            slope,
            ACT,
        )
        acc_a += tl.where(ok, gz, 0.0)
        acc_b += tl.where(ok, gz * xhat, 0.0)
    out = partial_ptr + (plane * CHUNKS + chunk) * 2
    tl.store(out, tl.sum(acc_a, axis=0))
    tl.store(out + 1, tl.sum(acc_b, axis=0))


@triton.jit
def _cl_grad_sums_kernel(
    x_ptr,
    g_ptr,
    mean_ptr,
    rstd_ptr,
    w_ptr,
    b_ptr,
    slope_ptr,
    partial_ptr,
    S,
    C,
    CHUNKS,
    HAS_W: tl.constexpr,
    HAS_B: tl.constexpr,
    ACT: tl.constexpr,
    FP64: tl.constexpr,
    ROW_CHUNK: tl.constexpr,
    ROWS: tl.constexpr,
    CHANNELS: tl.constexpr,
):
    chunk = tl.program_id(0).to(tl.int64)
    n = tl.program_id(1).to(tl.int64)
    c = tl.program_id(2).to(tl.int64) * CHANNELS + tl.arange(0, CHANNELS)
    c_ok = c < C
    mean = load_acc(mean_ptr + n * C + c, c_ok, FP64)
    rstd = load_acc(rstd_ptr + n * C + c, c_ok, FP64)
    w = load_acc(w_ptr + c, c_ok, FP64) if HAS_W else mean * 0.0 + 1.0
    b = load_acc(b_ptr + c, c_ok, FP64) if HAS_B else mean * 0.0
    slope = load_acc(slope_ptr, True, FP64)
    acc_a = tl.zeros([ROWS, CHANNELS], dtype=mean.dtype)
    acc_b = tl.zeros([ROWS, CHANNELS], dtype=mean.dtype)
    start = chunk * ROW_CHUNK
    base = n * S * C
    for off in range(0, ROW_CHUNK, ROWS):
        r = start + off + tl.arange(0, ROWS)
        ok = ((r < S) & (off + tl.arange(0, ROWS) < ROW_CHUNK))[:, None] & c_ok[None, :]
        at = base + r[:, None] * C + c[None, :]
        gz, xhat = _grad_terms(
            load_acc(x_ptr + at, ok, FP64),
            load_acc(g_ptr + at, ok, FP64),
            mean[None, :],
            rstd[None, :],
            w[None, :],
            b[None, :],
            slope,
            ACT,
        )
        acc_a += tl.where(ok, gz, 0.0)
        acc_b += tl.where(ok, gz * xhat, 0.0)
    out = partial_ptr + ((n * C + c) * CHUNKS + chunk) * 2
    tl.store(out, tl.sum(acc_a, axis=0), mask=c_ok)
    tl.store(out + 1, tl.sum(acc_b, axis=0), mask=c_ok)


@triton.jit
def _grad_apply_kernel(
    x_ptr,
    g_ptr,
    gx_ptr,
    mean_ptr,
    rstd_ptr,
    w_ptr,
    b_ptr,
    slope_ptr,
    mean_a_ptr,
    mean_b_ptr,
    S,
    C,
    TOTAL,
    HAS_W: tl.constexpr,
    HAS_B: tl.constexpr,
    ACT: tl.constexpr,
    CL: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = i < TOTAL
    plane, c = _plane_and_channel(i, S, C, CL)
    mean = load_acc(mean_ptr + plane, ok, FP64)
    rstd = load_acc(rstd_ptr + plane, ok, FP64)
    w = load_acc(w_ptr + c, ok, FP64) if HAS_W else mean * 0.0 + 1.0
    b = load_acc(b_ptr + c, ok, FP64) if HAS_B else mean * 0.0
    gz, xhat = _grad_terms(
        load_acc(x_ptr + i, ok, FP64),
        load_acc(g_ptr + i, ok, FP64),
        mean,
        rstd,
        w,
        b,
        load_acc(slope_ptr, True, FP64),
        ACT,
    )
    gx = rstd * w * (gz - load_acc(mean_a_ptr + plane, ok, FP64) - xhat * load_acc(mean_b_ptr + plane, ok, FP64))
    tl.store(gx_ptr + i, gx.to(gx_ptr.dtype.element_ty), mask=ok)


class _Problem:
    """The input in a layout the kernels read, and what they need to know about it."""

    def __init__(
        self, input: Tensor, weight: Tensor | None, bias: Tensor | None, activation: str, negative_slope: float
    ):
        self.channels_last = _checks.is_channels_last_layout(input)
        self.x = input if self.channels_last else input.contiguous()
        self.n, self.c = input.shape[:2]
        self.s = math.prod(input.shape[2:])
        self.acc = torch.float64 if input.dtype == torch.float64 else torch.float32
        self.fp64 = self.acc == torch.float64
        self.weight = weight.to(self.acc).contiguous() if weight is not None else None
        self.bias = bias.to(self.acc).contiguous() if bias is not None else None
        self.slope = torch.full((1,), negative_slope, dtype=self.acc, device=input.device)
        self.act = _ACTIVATION_ID[activation]

    def per_plane(self, stats: Tensor, per_instance: bool) -> Tensor:
        """Group statistics ([N * C, ...] or per channel [C, ...]) as one row per plane n * C + c."""
        return stats.contiguous() if per_instance else stats.repeat(self.n, *([1] * (stats.dim() - 1)))

    def like_x(self, t: Tensor) -> Tensor:
        """`t` (shaped like the input) in the layout of self.x."""
        return t.movedim(1, -1).contiguous().movedim(-1, 1) if self.channels_last else t.contiguous()

    def params(self) -> tuple:
        dummy = self.slope  # any tensor: kernels read weight/bias only when HAS_W/HAS_B
        return (self.weight if self.weight is not None else dummy, self.bias if self.bias is not None else dummy)

    def chunks(self) -> int:
        return triton.cdiv(self.s, _ROW_CHUNK if self.channels_last else _CHUNK)

    def reduce(self, plane_kernel, cl_kernel, tensors: tuple, width: int, **meta) -> Tensor:
        """Runs a reduction kernel over every chunk; returns its partials [N * C, chunks, width]."""
        chunks = self.chunks()
        partial = torch.empty((self.n * self.c, chunks, width), dtype=self.acc, device=self.x.device)
        if self.channels_last:
            grid = (chunks, self.n, triton.cdiv(self.c, _CHANNELS))
            launch(
                cl_kernel,
                grid,
                *tensors,
                partial,
                self.s,
                self.c,
                chunks,
                FP64=self.fp64,
                ROW_CHUNK=_ROW_CHUNK,
                ROWS=_ROWS,
                CHANNELS=_CHANNELS,
                **meta,
            )
        else:
            launch(
                plane_kernel,
                (chunks * self.n * self.c,),
                *tensors,
                partial,
                self.s,
                self.c,
                chunks,
                FP64=self.fp64,
                CHUNK=_CHUNK,
                BLOCK=_BLOCK,
                **meta,
            )
        return partial


def _forward(
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    activation: str,
    negative_slope: float,
    per_instance: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    _checks.check_instance_norm(input, weight, bias)
    _checks.check_activation(activation, allowed=_checks.ACTIVATIONS_WITH_TANH)
    p = _Problem(input, weight, bias, activation, negative_slope)
    y = torch.empty_like(p.x)
    stats_shape = (p.n, p.c) if per_instance else (p.c,)
    if p.n * p.c == 0 or p.s == 0:
        mean = torch.zeros(stats_shape, dtype=p.acc, device=input.device)
        return y, mean, torch.full_like(mean, eps**-0.5)
    partial = p.reduce(_plane_stats_kernel, _cl_stats_kernel, (p.x,), 3).double()  # [N * C, chunks, 3]
    if not per_instance:  # a channel's group: its planes n = 0..N-1 in order, each plane's chunks in order
        partial = partial.view(p.n, p.c, -1, 3).transpose(0, 1).reshape(p.c, -1, 3)
    # Chan's merge, exact: mean = sum(n_j mean_j) / n, M2 = sum(M2_j + n_j (mean_j - mean)^2).
    counts, means, m2s = partial.unbind(-1)
    total = counts.sum(1)
    mean = (counts * means).sum(1) / total
    m2 = (m2s + counts * (means - mean[:, None]) ** 2).sum(1)
    rstd = torch.rsqrt((m2 / total).clamp(min=0) + eps)
    mean, rstd = mean.to(p.acc), rstd.to(p.acc)
    w, b = p.params()
    launch(
        _apply_kernel,
        (triton.cdiv(y.numel(), _BLOCK),),
        p.x,
        y,
        p.per_plane(mean, per_instance),
        p.per_plane(rstd, per_instance),
        w,
        b,
        p.slope,
        p.s,
        p.c,
        y.numel(),
        HAS_W=p.weight is not None,
        HAS_B=p.bias is not None,
        ACT=p.act,
        CL=p.channels_last,
        FP64=p.fp64,
        BLOCK=_BLOCK,
    )
    return y, mean.view(stats_shape), rstd.view(stats_shape)


def _backward(
    grad_out: Tensor,
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    mean: Tensor,
    rstd: Tensor,
    activation: str,
    negative_slope: float,
    per_instance: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    _checks.check_instance_norm(input, weight, bias)
    p = _Problem(input, weight, bias, activation, negative_slope)
    g = p.like_x(grad_out)
    grad_x = torch.empty_like(p.x)
    mean_planes = p.per_plane(mean.to(p.acc).reshape(-1), per_instance)
    rstd_planes = p.per_plane(rstd.to(p.acc).reshape(-1), per_instance)
    w, b = p.params()
    meta = dict(HAS_W=p.weight is not None, HAS_B=p.bias is not None, ACT=p.act)
    if p.n * p.c > 0 and p.s > 0:
        partial = p.reduce(
            _plane_grad_sums_kernel, _cl_grad_sums_kernel, (p.x, g, mean_planes, rstd_planes, w, b, p.slope), 2, **meta
        )
        plane_sums = partial.double().sum(1)  # [N * C, 2], chunks added in order
    else:
        plane_sums = torch.zeros((p.n * p.c, 2), dtype=torch.float64, device=input.device)
    channel_sums = plane_sums.view(p.n, p.c, 2).sum(0)  # the batch added in order
    group_sums, count = (plane_sums, p.s) if per_instance else (channel_sums, p.n * p.s)
    if grad_x.numel() > 0:
        means = p.per_plane((group_sums / count).to(p.acc), per_instance)
        launch(
            _grad_apply_kernel,
            (triton.cdiv(grad_x.numel(), _BLOCK),),
            p.x,
            g,
            grad_x,
            mean_planes,
            rstd_planes,
            w,
            b,
            p.slope,
            means[:, 0].contiguous(),
            means[:, 1].contiguous(),
            p.s,
            p.c,
            grad_x.numel(),
            CL=p.channels_last,
            FP64=p.fp64,
            BLOCK=_BLOCK,
            **meta,
        )
    grad_w = channel_sums[:, 1].to(weight.dtype, copy=True) if weight is not None else input.new_empty((0,))
    grad_b = channel_sums[:, 0].to(bias.dtype, copy=True) if bias is not None else input.new_empty((0,))
    return grad_x, grad_w, grad_b


@triton_op("vision_kernels::instance_norm_triton", mutates_args=(), schema=FORWARD_SCHEMA)
def instance_norm_triton(
    input: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, activation: str, negative_slope: float
) -> tuple[Tensor, Tensor, Tensor]:
    return _forward(input, weight, bias, eps, activation, negative_slope, per_instance=True)


@triton_op("vision_kernels::instance_norm_backward_triton", mutates_args=(), schema=BACKWARD_SCHEMA)
def instance_norm_backward_triton(
    grad_out: Tensor,
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    mean: Tensor,
    rstd: Tensor,
    activation: str,
    negative_slope: float,
) -> tuple[Tensor, Tensor, Tensor]:
    return _backward(grad_out, input, weight, bias, mean, rstd, activation, negative_slope, per_instance=True)


@triton_op("vision_kernels::batch_norm_act_triton", mutates_args=(), schema=FORWARD_SCHEMA)
def batch_norm_act_triton(
    input: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, activation: str, negative_slope: float
) -> tuple[Tensor, Tensor, Tensor]:
    return _forward(input, weight, bias, eps, activation, negative_slope, per_instance=False)


@triton_op("vision_kernels::batch_norm_act_backward_triton", mutates_args=(), schema=BACKWARD_SCHEMA)
def batch_norm_act_backward_triton(
    grad_out: Tensor,
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    mean: Tensor,
    rstd: Tensor,
    activation: str,
    negative_slope: float,
) -> tuple[Tensor, Tensor, Tensor]:
    return _backward(grad_out, input, weight, bias, mean, rstd, activation, negative_slope, per_instance=False)


register_norm_autograd("vision_kernels::instance_norm_triton", torch.ops.vision_kernels.instance_norm_backward_triton)
register_norm_autograd(
    "vision_kernels::batch_norm_act_triton",
    torch.ops.vision_kernels.batch_norm_act_backward_triton,
    reference.batch_norm_act,
)

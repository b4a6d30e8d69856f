"""Triton ConvTranspose2d as implicit GEMM over stride phases, with bias and activation fused into
the epilogue.

An output row oh receives input row ih through kernel row kh when oh = ih * s - p + kh. Grouping
output rows by phase ph = (oh + p) mod s, the rows of one phase are fed only by the taps
kh = ph, ph + s, ph + 2s, ... and, writing oh = j * s + ph - p, tap number t reads input row
ih = j - t. So each of the s x s phases is a dense convolution over its own taps: no zeros are
inserted and none multiplied. Per phase, a GEMM of [output pixels of the phase] x [C_in * taps] by
[C_in * taps] x [C_out], accumulated in float32 (tl.dot: TF32 on GPUs for float32 inputs, as
cuDNN's default for convolutions in torch), then + bias and the activation before the store.

Supported: groups=1, dilation=1, float16/bfloat16/float32 (the op falls back to the dispatcher's
convolution otherwise). The backward goes through the dispatcher (aten.convolution_backward).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op

from vision_kernels.triton import norm  # noqa: F401  (the norm ops the fused op uses with this one)
from vision_kernels.triton._common import div, launch

_ACTIVATION_ID = {"none": 0, "relu": 1, "leaky_relu": 2, "tanh": 3}
SCHEMA = (
    "(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[2] padding, int[2] output_padding,"
    " str activation, float negative_slope) -> Tensor"
)
_BLOCK_M, _BLOCK_N, _BLOCK_K = 64, 64, 32


@triton.jit
def _tanh(z):
    e = tl.exp(-2.0 * tl.abs(z))
    t = div(1.0 - e, 1.0 + e)
    return tl.where(z < 0, -t, t)


@triton.jit
def _phase_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    N,
    CIN,
    H,
    W,
    COUT,
    OH,
    OW,
    sxn,
    sxc,
    sxh,
    sxw,
    swi,
    swo,
    swh,
    sww,
    syn,
    syc,
    syh,
    syw,
    S_H,
    S_W,
    P_H,
    P_W,
    PH,
    PW,
    J0_H,
    J0_W,
    CNT_H,
    CNT_W,
    TAPS_H,
    TAPS_W,
    slope,
    HAS_BIAS: tl.constexpr,
    ACT: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    m = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    co = tl.program_id(1).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    per_image = CNT_H * CNT_W
    m_ok = m < N * per_image
    n = m // per_image
    jh = J0_H + (m % per_image) // CNT_W
    jw = J0_W + (m % per_image) % CNT_W
    co_ok = co < COUT
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for th in range(0, TAPS_H):
        ih = jh - th
        kh = PH + th * S_H
        for tw in range(0, TAPS_W):
            iw = jw - tw
            kw = PW + tw * S_W
            pix_ok = m_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            x_base = x_ptr + n * sxn + ih * sxh + iw * sxw
            w_base = w_ptr + kh * swh + kw * sww
            for c0 in range(0, CIN, BLOCK_K):
                ci = c0 + tl.arange(0, BLOCK_K)
                ci_ok = ci < CIN
                a = tl.load(x_base[:, None] + ci[None, :] * sxc, mask=pix_ok[:, None] & ci_ok[None, :], other=0.0)
                b = tl.load(
                    w_base + ci[:, None] * swi + co[None, :] * swo, mask=ci_ok[:, None] & co_ok[None, :], other=0.0
                )
                acc = tl.dot(a, b, acc)
    if HAS_BIAS:
        acc += tl.load(b_ptr + co, mask=co_ok, other=0.0).to(tl.float32)[None, :]
    if ACT == 1:
        acc = tl.where(acc > 0, acc, 0.0)
    elif ACT == 2:
        acc = tl.where(acc > 0, acc, acc * slope)
    elif ACT == 3:
        acc = _tanh(acc)
    oh = jh * S_H + PH - P_H
    ow = jw * S_W + PW - P_W
    y = y_ptr + (n * syn + oh * syh + ow * syw)[:, None] + co[None, :] * syc
    tl.store(y, acc.to(y_ptr.dtype.element_ty), mask=m_ok[:, None] & co_ok[None, :])


def supported(input: Tensor, weight: Tensor, groups: int, dilation: list[int]) -> bool:
    """Whether the Triton kernel computes this convolution (else the dispatcher's does)."""
    return groups == 1 and list(dilation) == [1, 1] and input.dtype in (torch.float16, torch.bfloat16, torch.float32)


def _phase_rows(size_out: int, stride: int, padding: int, phase: int) -> tuple[int, int]:
    """(j0, count): the output indices o = j * stride + phase - padding in [0, size_out)."""
    j0 = -((phase - padding) // stride)  # the smallest j with o >= 0
    count = max(0, (size_out - 1 - (phase - padding)) // stride - j0 + 1)
    return j0, count


@triton_op("vision_kernels::conv_transpose_bias_act_triton", mutates_args=(), schema=SCHEMA)
def conv_transpose_bias_act_triton(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: list[int],
    padding: list[int],
    output_padding: list[int],
    activation: str,
    negative_slope: float,
) -> Tensor:
    n, cin, h, w = input.shape
    _, cout, kh, kw = weight.shape
    oh = (h - 1) * stride[0] - 2 * padding[0] + kh + output_padding[0]
    ow = (w - 1) * stride[1] - 2 * padding[1] + kw + output_padding[1]
    y = input.new_empty((n, cout, oh, ow))
    if y.numel() == 0:
        return y
    for ph in range(stride[0]):
        j0h, cnt_h = _phase_rows(oh, stride[0], padding[0], ph)
        taps_h = max(0, (kh - ph + stride[0] - 1) // stride[0])
        for pw in range(stride[1]):
            j0w, cnt_w = _phase_rows(ow, stride[1], padding[1], pw)
            taps_w = max(0, (kw - pw + stride[1] - 1) // stride[1])
            if cnt_h * cnt_w == 0:
                continue
            grid = (triton.cdiv(n * cnt_h * cnt_w, _BLOCK_M), triton.cdiv(cout, _BLOCK_N))
            launch(
                _phase_kernel,
                grid,
                input,
                weight,
                bias if bias is not None else weight,
                y,
                n,
                cin,
                h,
                w,
                cout,
                oh,
                ow,
                *input.stride(),
                *weight.stride(),
                *y.stride(),
                stride[0],
                stride[1],
                padding[0],
                padding[1],
                ph,
                pw,
                j0h,
                j0w,
                cnt_h,
                cnt_w,
                taps_h,
                taps_w,
                negative_slope,
                HAS_BIAS=bias is not None,
                ACT=_ACTIVATION_ID[activation],
                BLOCK_M=_BLOCK_M,
                BLOCK_N=_BLOCK_N,
                BLOCK_K=_BLOCK_K,
            )
    return y


def _setup(ctx, inputs, output):
    input, weight, bias, stride, padding, output_padding, activation, negative_slope = inputs
    ctx.save_for_backward(input, weight, output)
    ctx.has_bias, ctx.stride, ctx.padding, ctx.output_padding = bias is not None, stride, padding, output_padding
    ctx.activation, ctx.negative_slope = activation, negative_slope


def _backward(ctx, grad: Tensor):
    input, weight, out = ctx.saved_tensors
    # Through the activation, from its output (as torch's in-place ReLU/LeakyReLU/Tanh do).
    if ctx.activation == "relu":
        grad = grad * (out > 0)
    elif ctx.activation == "leaky_relu":
        grad = torch.where(out > 0, grad, grad * ctx.negative_slope)
    elif ctx.activation == "tanh":
        grad = grad * (1 - out * out)
    grad_input, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
        grad,
        input,
        weight,
        [weight.shape[1]] if ctx.has_bias else None,
        ctx.stride,
        ctx.padding,
        [1, 1],
        True,
        ctx.output_padding,
        1,
        [True, True, ctx.has_bias],
    )
    return grad_input, grad_weight, grad_bias if ctx.has_bias else None, None, None, None, None, None


torch.library.register_autograd("vision_kernels::conv_transpose_bias_act_triton", _backward, setup_context=_setup)

"""Triton kernels for box overlap: pairwise ([B,]N x [B,]M), aligned, and the aligned backward.

The formulas follow csrc/common/box_math.h line by line. The CIoU aspect angles atan(w / h) are
computed per box with torch before the launch (Triton's interpreter has no atan, and per box it
costs nothing next to the N x M pairs), so kernels only read them.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op

from vision_kernels.ops import _checks
from vision_kernels.ops._autograd import register_aligned_autograd, register_pairwise_autograd
from vision_kernels.reference.boxes import MODES, acc_dtype, aspect_angle
from vision_kernels.triton._common import div, launch, load_acc, safe_div, scalar

CIOU_SCALE = tl.constexpr(4 / math.pi**2)  # globals read by @triton.jit must be constexpr
_MODE_ID = {mode: i for i, mode in enumerate(MODES)}  # iou 0, giou 1, diou 2, ciou 3, iof 4 (as C++)
PAIRWISE_SCHEMA = '(Tensor boxes1, Tensor boxes2, str mode="iou", float eps=1e-07) -> Tensor'
BACKWARD_SCHEMA = "(Tensor grad, Tensor boxes1, Tensor boxes2, str mode, float eps) -> (Tensor, Tensor)"


@triton.jit
def _overlap(ax1, ay1, ax2, ay2, acx, acy, a_ang, bx1, by1, bx2, by2, bcx, bcy, b_ang, eps, MODE: tl.constexpr):
    area_a = (ax2 - ax1) * (ay2 - ay1)
    area_b = (bx2 - bx1) * (by2 - by1)
    iw = tl.maximum(tl.minimum(ax2, bx2) - tl.maximum(ax1, bx1), 0.0)
    ih = tl.maximum(tl.minimum(ay2, by2) - tl.maximum(ay1, by1), 0.0)
    inter = iw * ih
    if MODE == 4:  # iof
        result = safe_div(inter, area_a)
    else:
        uni = area_a + area_b - inter
        iou = safe_div(inter, uni)
        result = iou
        if MODE != 0:
            cw = tl.maximum(tl.maximum(ax2, bx2) - tl.minimum(ax1, bx1), 0.0)
            ch = tl.maximum(tl.maximum(ay2, by2) - tl.minimum(ay1, by1), 0.0)
            if MODE == 1:  # giou
                c_area = cw * ch
                result = iou - safe_div(c_area - uni, c_area)
            else:  # diou, ciou
                c2 = cw * cw + ch * ch + eps
                dx = acx - bcx
                dy = acy - bcy
                result = iou - safe_div(dx * dx + dy * dy, c2)
                if MODE == 3:
                    dang = a_ang - b_ang
                    v = CIOU_SCALE * (dang * dang)
                    alpha = safe_div(v, 1.0 - iou + v + eps)
                    result = result - alpha * v
    return result


@triton.jit
def _load_box(ptr, idx, mask, ang_ptr, FP64: tl.constexpr, MODE: tl.constexpr):
    x1 = load_acc(ptr + idx * 4, mask, FP64)
    y1 = load_acc(ptr + idx * 4 + 1, mask, FP64)
    x2 = load_acc(ptr + idx * 4 + 2, mask, FP64)
    y2 = load_acc(ptr + idx * 4 + 3, mask, FP64)
    if MODE == 3:
        ang = load_acc(ang_ptr + idx, mask, FP64)
    else:
        ang = x1 * 0.0
    return x1, y1, x2, y2, (x1 + x2) * 0.5, (y1 + y2) * 0.5, ang  # * 0.5 == / 2 exactly


@triton.jit
def _pairwise_kernel(
    b1_ptr,
    b2_ptr,
    ang1_ptr,
    ang2_ptr,
    out_ptr,
    N,
    M,
    eps_ptr,
    MODE: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    # Axis 0 covers all (row block, column block) tiles of a batch: axes 1 and 2 are limited to
    # 65535 programs, axis 0 is not (N up to 2**31 rows).
    col_blocks = tl.cdiv(M, BLOCK_M)
    tile = tl.program_id(0).to(tl.int64)
    batch = tl.program_id(1).to(tl.int64)
    rows = (tile // col_blocks) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = (tile % col_blocks) * BLOCK_M + tl.arange(0, BLOCK_M)
    eps = tl.load(eps_ptr)
    row_ok = rows < N
    col_ok = cols < M
    ax1, ay1, ax2, ay2, acx, acy, a_ang = _load_box(b1_ptr, batch * N + rows, row_ok, ang1_ptr, FP64, MODE)
    bx1, by1, bx2, by2, bcx, bcy, b_ang = _load_box(b2_ptr, batch * M + cols, col_ok, ang2_ptr, FP64, MODE)
    val = _overlap(
        ax1[:, None],
        ay1[:, None],
        ax2[:, None],
        ay2[:, None],
        acx[:, None],
        acy[:, None],
        a_ang[:, None],
        bx1[None, :],
        by1[None, :],
        bx2[None, :],
        by2[None, :],
        bcx[None, :],
        bcy[None, :],
        b_ang[None, :],
        eps,
        MODE,
    )
    out = out_ptr + (batch * N + rows)[:, None] * M + cols[None, :]
    tl.store(out, val.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & col_ok[None, :])


@triton.jit
def _aligned_kernel(
    b1_ptr, b2_ptr, ang1_ptr, ang2_ptr, out_ptr, K, eps_ptr, MODE: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr
):
    eps = tl.load(eps_ptr)
    k = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = k < K
    ax1, ay1, ax2, ay2, acx, acy, a_ang = _load_box(b1_ptr, k, ok, ang1_ptr, FP64, MODE)
    bx1, by1, bx2, by2, bcx, bcy, b_ang = _load_box(b2_ptr, k, ok, ang2_ptr, FP64, MODE)
    val = _overlap(ax1, ay1, ax2, ay2, acx, acy, a_ang, bx1, by1, bx2, by2, bcx, bcy, b_ang, eps, MODE)
    tl.store(out_ptr + k, val.to(out_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _max_share(p, q):
    """Share of d max(p, q) that goes to p: torch.maximum splits ties in halves."""
    return tl.where(p > q, 1.0, tl.where(p == q, 0.5, 0.0))


@triton.jit
def _min_share(p, q):
    return tl.where(p < q, 1.0, tl.where(p == q, 0.5, 0.0))


@triton.jit
def _aligned_backward_kernel(
    grad_ptr,
    b1_ptr,
    b2_ptr,
    ang1_ptr,
    ang2_ptr,
    g1_ptr,
    g2_ptr,
    K,
    eps_ptr,
    MODE: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    eps = tl.load(eps_ptr)
    k = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = k < K
    g = load_acc(grad_ptr + k, ok, FP64)
    ax1, ay1, ax2, ay2, acx, acy, a_ang = _load_box(b1_ptr, k, ok, ang1_ptr, FP64, MODE)
    bx1, by1, bx2, by2, bcx, bcy, b_ang = _load_box(b2_ptr, k, ok, ang2_ptr, FP64, MODE)
    aw = ax2 - ax1
    ah = ay2 - ay1
    bw = bx2 - bx1
    bh = by2 - by1
    area_a = aw * ah
    area_b = bw * bh
    iw_raw = tl.minimum(ax2, bx2) - tl.maximum(ax1, bx1)
    ih_raw = tl.minimum(ay2, by2) - tl.maximum(ay1, by1)
    iw = tl.maximum(iw_raw, 0.0)
    ih = tl.maximum(ih_raw, 0.0)
    inter = iw * ih

    zero = g * 0.0
    g_inter = zero
    g_area_a = zero
    g_area_b = zero
    g_cw = zero
    g_ch = zero
    g_dx = zero
    g_dy = zero
    g_ang_a = zero
    g_ang_b = zero
    cw_raw = zero
    ch_raw = zero
    if MODE == 4:  # iof = inter / area_a
        nz = area_a != 0
        den = tl.where(nz, area_a, 1.0)
        g_inter = tl.where(nz, div(g, den), 0.0)
        g_area_a = tl.where(nz, 0.0 - g * div(div(inter, den), den), 0.0)
    else:
        uni = area_a + area_b - inter
        iou = safe_div(inter, uni)
        g_uni = zero
        if MODE != 0:
            cw_raw = tl.maximum(ax2, bx2) - tl.minimum(ax1, bx1)
            ch_raw = tl.maximum(ay2, by2) - tl.minimum(ay1, by1)
            cw = tl.maximum(cw_raw, 0.0)
            ch = tl.maximum(ch_raw, 0.0)
            if MODE == 1:  # giou = iou - t, t = (c_area - uni) / c_area
                c_area = cw * ch
                nz = c_area != 0
                den = tl.where(nz, c_area, 1.0)
                t = div(c_area - uni, den)
                g_num = tl.where(nz, div(0.0 - g, den), 0.0)
                g_c_area = tl.where(nz, g_num + g * div(t, den), 0.0)
                g_uni = g_uni - g_num
                g_cw = g_cw + g_c_area * ch
                g_ch = g_ch + g_c_area * cw
            else:  # diou / ciou = iou - rho2 / c2 [- alpha * v]
                c2 = cw * cw + ch * ch + eps
                dx = acx - bcx
                dy = acy - bcy
                nz = c2 != 0
                den = tl.where(nz, c2, 1.0)
                rho2 = dx * dx + dy * dy
                g_rho2 = tl.where(nz, div(0.0 - g, den), 0.0)
                g_c2 = tl.where(nz, g * div(div(rho2, den), den), 0.0)
                g_cw = g_cw + g_c2 * (2.0 * cw)
                g_ch = g_ch + g_c2 * (2.0 * ch)
                g_dx = g_rho2 * (2.0 * dx)
                g_dy = g_rho2 * (2.0 * dy)
                if MODE == 3:
                    dang = a_ang - b_ang
                    v = CIOU_SCALE * (dang * dang)
                    alpha = safe_div(v, 1.0 - iou + v + eps)
                    g_dang = ((0.0 - g) * alpha) * CIOU_SCALE * (2.0 * dang)
                    g_ang_a = g_dang
                    g_ang_b = 0.0 - g_dang
        nzu = uni != 0
        den_u = tl.where(nzu, uni, 1.0)
        g_inter = g_inter + tl.where(nzu, div(g, den_u), 0.0)
        g_uni = g_uni - tl.where(nzu, g * div(div(inter, den_u), den_u), 0.0)
        g_area_a = g_area_a + g_uni
        g_area_b = g_area_b + g_uni
        g_inter = g_inter - g_uni

    # Intersection: iw = clamp(min(ax2, bx2) - max(ax1, bx1), 0); clamp passes the gradient only above 0.
    g_iw = tl.where(iw_raw > 0, g_inter * ih, 0.0)
    g_ih = tl.where(ih_raw > 0, g_inter * iw, 0.0)
    s2 = _min_share(ax2, bx2)
    s1 = _max_share(ax1, bx1)
    t2 = _min_share(ay2, by2)
    t1 = _max_share(ay1, by1)
    gax2 = g_iw * s2
    gbx2 = g_iw * (1.0 - s2)
    gax1 = 0.0 - g_iw * s1
    gbx1 = 0.0 - g_iw * (1.0 - s1)
    gay2 = g_ih * t2
    gby2 = g_ih * (1.0 - t2)
    gay1 = 0.0 - g_ih * t1
    gby1 = 0.0 - g_ih * (1.0 - t1)
    if MODE != 0 and MODE != 4:  # enclosing box
        g_cwr = tl.where(cw_raw > 0, g_cw, 0.0)
        g_chr = tl.where(ch_raw > 0, g_ch, 0.0)
        s2 = _max_share(ax2, bx2)
        s1 = _min_share(ax1, bx1)
        t2 = _max_share(ay2, by2)
        t1 = _min_share(ay1, by1)
        gax2 += g_cwr * s2
        gbx2 += g_cwr * (1.0 - s2)
        gax1 -= g_cwr * s1
        gbx1 -= g_cwr * (1.0 - s1)
        gay2 += g_chr * t2
        gby2 += g_chr * (1.0 - t2)
        gay1 -= g_chr * t1
        gby1 -= g_chr * (1.0 - t1)
    # Centres: dx = (ax1 + ax2) / 2 - (bx1 + bx2) / 2.
    gax1 += g_dx * 0.5
    gax2 += g_dx * 0.5
    gbx1 -= g_dx * 0.5
    gbx2 -= g_dx * 0.5
    gay1 += g_dy * 0.5
    gay2 += g_dy * 0.5
    gby1 -= g_dy * 0.5
    gby2 -= g_dy * 0.5
    # Areas and aspect angles through w = x2 - x1, h = y2 - y1; angle = atan(w / h) where h != 0.
    g_aw = g_area_a * ah
    g_ah = g_area_a * aw
    g_bw = g_area_b * bh
    g_bh = g_area_b * bw
    if MODE == 3:
        nza = ah != 0
        ha = tl.where(nza, ah, 1.0)
        ra = div(aw, ha)
        gra = div(g_ang_a, 1.0 + ra * ra)
        g_aw += tl.where(nza, div(gra, ha), 0.0)
        g_ah -= tl.where(nza, gra * div(ra, ha), 0.0)
        nzb = bh != 0
        hb = tl.where(nzb, bh, 1.0)
        rb = div(bw, hb)
        grb = div(g_ang_b, 1.0 + rb * rb)
        g_bw += tl.where(nzb, div(grb, hb), 0.0)
        g_bh -= tl.where(nzb, grb * div(rb, hb), 0.0)
    gax2 += g_aw
    gax1 -= g_aw
    gay2 += g_ah
    gay1 -= g_ah
    gbx2 += g_bw
    gbx1 -= g_bw
    gby2 += g_bh
    gby1 -= g_bh

    ty = g1_ptr.dtype.element_ty
    tl.store(g1_ptr + k * 4, gax1.to(ty), mask=ok)
    tl.store(g1_ptr + k * 4 + 1, gay1.to(ty), mask=ok)
    tl.store(g1_ptr + k * 4 + 2, gax2.to(ty), mask=ok)
    tl.store(g1_ptr + k * 4 + 3, gay2.to(ty), mask=ok)
    tl.store(g2_ptr + k * 4, gbx1.to(ty), mask=ok)
    tl.store(g2_ptr + k * 4 + 1, gby1.to(ty), mask=ok)
    tl.store(g2_ptr + k * 4 + 2, gbx2.to(ty), mask=ok)
    tl.store(g2_ptr + k * 4 + 3, gby2.to(ty), mask=ok)


def _angles(boxes: Tensor, mode: str) -> Tensor:
    """Per-box atan(w / h) for CIoU (a placeholder for other modes: the kernels do not read it)."""
    if mode != "ciou":
        return boxes
    b = boxes.to(acc_dtype(boxes.dtype))
    return aspect_angle(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]).contiguous()


_BLOCK = 256
_BLOCK_N, _BLOCK_M = 32, 64


@triton_op("vision_kernels::box_iou_triton", mutates_args=(), schema=PAIRWISE_SCHEMA)
def box_iou_triton(boxes1: Tensor, boxes2: Tensor, mode: str = "iou", eps: float = 1e-7) -> Tensor:
    _checks.check_mode(mode)
    _checks.check_pairwise(boxes1, boxes2)
    b1, b2 = boxes1.contiguous(), boxes2.contiguous()
    n, m = b1.shape[-2], b2.shape[-2]
    batches = b1.shape[0] if b1.dim() == 3 else 1
    if batches > 65535:
        raise ValueError(f"box_iou on the triton backend supports at most 65535 batches, got {batches}")
    out = b1.new_empty((*b1.shape[:-2], n, m))
    if out.numel() == 0:
        return out
    grid = (triton.cdiv(n, _BLOCK_N) * triton.cdiv(m, _BLOCK_M), batches)
    launch(
        _pairwise_kernel,
        grid,
        b1,
        b2,
        _angles(b1, mode),
        _angles(b2, mode),
        out,
        n,
        m,
        scalar(eps, b1),
        MODE=_MODE_ID[mode],
        FP64=b1.dtype == torch.float64,
        BLOCK_N=_BLOCK_N,
        BLOCK_M=_BLOCK_M,
    )
    return out


@triton_op("vision_kernels::box_iou_aligned_triton", mutates_args=(), schema=PAIRWISE_SCHEMA)
def box_iou_aligned_triton(boxes1: Tensor, boxes2: Tensor, mode: str = "iou", eps: float = 1e-7) -> Tensor:
    _checks.check_mode(mode)
    _checks.check_aligned(boxes1, boxes2)
    b1, b2 = boxes1.contiguous(), boxes2.contiguous()
    out = b1.new_empty(b1.shape[:-1])
    count = out.numel()
    if count == 0:
        return out
    launch(
        _aligned_kernel,
        (triton.cdiv(count, _BLOCK),),
        b1,
        b2,
        _angles(b1, mode),
        _angles(b2, mode),
        out,
        count,
        scalar(eps, b1),
        MODE=_MODE_ID[mode],
        FP64=b1.dtype == torch.float64,
        BLOCK=_BLOCK,
    )
    return out


@triton_op("vision_kernels::box_iou_aligned_backward_triton", mutates_args=(), schema=BACKWARD_SCHEMA)
def box_iou_aligned_backward_triton(
    grad: Tensor, boxes1: Tensor, boxes2: Tensor, mode: str, eps: float
) -> tuple[Tensor, Tensor]:
    _checks.check_mode(mode)
    _checks.check_aligned(boxes1, boxes2)
    _checks.check_aligned_grad(grad, boxes1)
    b1, b2, g = boxes1.contiguous(), boxes2.contiguous(), grad.contiguous()
    grad1, grad2 = torch.empty_like(b1), torch.empty_like(b2)
    count = g.numel()
    if count == 0:
        return grad1, grad2
    launch(
        _aligned_backward_kernel,
        (triton.cdiv(count, _BLOCK),),
        g,
        b1,
        b2,
        _angles(b1, mode),
        _angles(b2, mode),
        grad1,
        grad2,
        count,
        scalar(eps, b1),
        MODE=_MODE_ID[mode],
        FP64=b1.dtype == torch.float64,
        BLOCK=_BLOCK,
    )
    return grad1, grad2


register_pairwise_autograd("vision_kernels::box_iou_triton")
register_aligned_autograd(
    "vision_kernels::box_iou_aligned_triton", torch.ops.vision_kernels.box_iou_aligned_backward_triton
)

"""box_iou (pairwise, batched, aligned) on every backend against the reference and torchvision."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.ops as tvo
from boxes_data import FLOAT_DTYPES, assert_close, box_cases, degenerate_boxes, non_contiguous, random_boxes
from conftest import backend_params

from vision_kernels import ops, reference

MODES = ["iou", "giou", "diou", "ciou", "iof"]
TORCHVISION = {
    "iou": tvo.box_iou,
    "giou": tvo.generalized_box_iou,
    "diou": tvo.distance_box_iou,
    "ciou": tvo.complete_box_iou,
}


def expected_loop(boxes1: torch.Tensor, boxes2: torch.Tensor, mode: str) -> torch.Tensor:
    """A scalar double-precision loop over pairs, straight from the papers' definitions."""
    out = torch.zeros(len(boxes1), len(boxes2), dtype=torch.float64)
    for i, a in enumerate(boxes1.double().tolist()):
        for j, b in enumerate(boxes2.double().tolist()):
            area_a = (a[2] - a[0]) * (a[3] - a[1])
            area_b = (b[2] - b[0]) * (b[3] - b[1])
            inter = max(min(a[2], b[2]) - max(a[0], b[0]), 0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0)
            if mode == "iof":
                out[i, j] = inter / area_a if area_a else 0.0
                continue
            union = area_a + area_b - inter
            iou = inter / union if union else 0.0
            cw = max(a[2], b[2]) - min(a[0], b[0])
            ch = max(a[3], b[3]) - min(a[1], b[1])
            if mode == "iou":
                out[i, j] = iou
            elif mode == "giou":
                out[i, j] = iou - ((cw * ch - union) / (cw * ch) if cw * ch else 0.0)
            else:
                rho2 = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + ((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2) ** 2
                c2 = cw**2 + ch**2 + 1e-7
                out[i, j] = iou - rho2 / c2
                if mode == "ciou":
                    v = (
                        4
                        / math.pi**2
                        * (math.atan2(a[2] - a[0], a[3] - a[1]) - math.atan2(b[2] - b[0], b[3] - b[1])) ** 2
                    )
                    alpha = v / (1 - iou + v + 1e-7) if v else 0.0
                    out[i, j] -= alpha * v
    return out


# ---- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend,device", backend_params("box_iou"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_pairwise_matches_reference(backend, device, dtype, mode):
    for name, (b1, b2) in box_cases(dtype).items():
        b1, b2 = b1.to(device), b2.to(device)
        out = ops.box_iou(b1, b2, mode, backend=backend)
        assert out.shape == (len(b1), len(b2)) and out.dtype == dtype and out.device.type == device
        assert torch.isfinite(out).all(), name
        assert_close(out.cpu(), reference.box_iou(b1.cpu(), b2.cpu(), mode))


@pytest.mark.parametrize("backend,device", backend_params("box_iou"))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("mode", ["iou", "giou", "diou", "ciou"])
def test_pairwise_matches_torchvision(backend, device, dtype, mode):
    for name in ("random", "integer", "small", "large"):
        b1, b2 = (b.to(device) for b in box_cases(dtype)[name])
        expected = TORCHVISION[mode](b1, b2)
        assert_close(ops.box_iou(b1, b2, mode, backend=backend), expected)


@pytest.mark.parametrize("mode", MODES)
def test_reference_matches_loop(mode):
    for name, (b1, b2) in box_cases(torch.float64).items():
        if name == "degenerate" and mode in ("diou", "ciou"):
            continue  # the loop has no zero guards for c2 in these; checked below for finiteness
        assert_close(reference.box_iou(b1, b2, mode), expected_loop(b1, b2, mode))


@pytest.mark.parametrize("backend,device", backend_params("box_iou"))
@pytest.mark.parametrize("mode", MODES)
def test_degenerate_boxes_are_finite_and_zero_overlap(backend, device, mode):
    deg = degenerate_boxes().to(device)
    out = ops.box_iou(deg, deg, mode, backend=backend)
    assert torch.isfinite(out).all()
    zero_area = (deg[:, 2] - deg[:, 0]) * (deg[:, 3] - deg[:, 1]) == 0
    if mode in ("iou", "iof"):
        # A zero-area box overlaps nothing, itself included.
        assert (out[zero_area] == 0).all() and (out[:, zero_area] == 0).all()
    elif mode in ("giou", "diou"):
        assert ((out >= -1) & (out <= 1)).all()


@pytest.mark.parametrize("backend,device", backend_params("box_iou"))
@pytest.mark.parametrize("mode", MODES)
def test_batched_matches_per_image(backend, device, mode):
    b1 = random_boxes(3, 12, seed=10).to(device)
    b2 = random_boxes(3, 5, seed=11).to(device)
    out = ops.box_iou(b1, b2, mode, backend=backend)
    assert out.shape == (3, 12, 5)
    for i in range(3):
        assert_close(out[i], ops.box_iou(b1[i], b2[i], mode, backend="reference"))


@pytest.mark.parametrize("backend,device", backend_params("box_iou_aligned"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_aligned_is_the_diagonal(backend, device, dtype, mode):
    for b1, b2 in box_cases(dtype).values():
        n = min(len(b1), len(b2))
        b1, b2 = b1[:n].to(device), b2[:n].to(device)
        out = ops.box_iou(b1, b2, mode, aligned=True, backend=backend)
        assert out.shape == (n,) and out.dtype == dtype
        assert_close(out.cpu(), reference.box_iou(b1.cpu(), b2.cpu(), mode).diagonal())
    # Any leading dimensions.
    b1, b2 = (
        random_boxes(2, 3, 6, seed=12, dtype=dtype).to(device),
        random_boxes(2, 3, 6, seed=13, dtype=dtype).to(device),
    )
    out = ops.box_iou(b1, b2, mode, aligned=True, backend=backend)
    assert out.shape == (2, 3, 6)
    assert_close(out.cpu(), reference.box_iou_aligned(b1.cpu(), b2.cpu(), mode))


@pytest.mark.parametrize("backend,device", backend_params("box_iou"))
def test_non_contiguous_inputs(backend, device):
    b1, b2 = random_boxes(9, seed=14), random_boxes(6, seed=15)
    expected = reference.box_iou(b1, b2, "giou")
    out = ops.box_iou(non_contiguous(b1).to(device), non_contiguous(b2).to(device), "giou", backend=backend)
    assert_close(out.cpu(), expected)
    # A transposed batch view.
    bb1 = random_boxes(5, 2, seed=16).transpose(0, 1)
    bb2 = random_boxes(3, 2, seed=17).transpose(0, 1)
    out = ops.box_iou(bb1.to(device), bb2.to(device), backend=backend)
    assert_close(out.cpu(), reference.box_iou(bb1.contiguous(), bb2.contiguous()))
    out = ops.box_iou(non_contiguous(b1[:6]).to(device), b2.to(device), "ciou", aligned=True, backend=backend)
    assert_close(out.cpu(), reference.box_iou_aligned(b1[:6], b2, "ciou"))


@pytest.mark.parametrize("backend,device", backend_params("box_iou"))
@pytest.mark.parametrize(
    "shape1,shape2,aligned,out_shape",
    [
        ((0, 4), (5, 4), False, (0, 5)),
        ((5, 4), (0, 4), False, (5, 0)),
        ((0, 4), (0, 4), False, (0, 0)),
        ((2, 0, 4), (2, 3, 4), False, (2, 0, 3)),
        ((0, 3, 4), (0, 2, 4), False, (0, 3, 2)),
        ((0, 4), (0, 4), True, (0,)),
        ((3, 0, 4), (3, 0, 4), True, (3, 0)),
    ],
)
def test_empty_inputs_give_empty_outputs(backend, device, shape1, shape2, aligned, out_shape):
    b1, b2 = torch.zeros(shape1, device=device), torch.zeros(shape2, device=device)
    for mode in MODES:
        out = ops.box_iou(b1, b2, mode, aligned=aligned, backend=backend)
        assert out.shape == out_shape and out.dtype == torch.float32


# ---- gradients -----------------------------------------------------------------------------------


def overlapping_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 pairs that overlap and have no ties between coordinates (away from the kinks of
    min/max/clamp, where finite differences are meaningless)."""
    g = torch.Generator().manual_seed(seed)
    a = random_boxes(n, seed=seed, dtype=torch.float64) + 5
    b = a + (torch.rand(n, 4, generator=g, dtype=torch.float64) - 0.5) * 4
    return a.requires_grad_(), b.requires_grad_()


@pytest.mark.parametrize("backend,device", backend_params("box_iou_aligned"))
@pytest.mark.parametrize("mode", MODES)
def test_aligned_gradcheck_float64(backend, device, mode):
    a, b = overlapping_pairs(6, seed=20)
    a, b = a.detach().to(device).requires_grad_(), b.detach().to(device).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: ops.box_iou(x, y, mode, aligned=True, backend=backend), (a, b))


def reference_grads(b1, b2, mode, grad_out):
    x, y = b1.detach().cpu().requires_grad_(), b2.detach().cpu().requires_grad_()
    reference.box_iou_aligned(x, y, mode).backward(grad_out.cpu())
    return x.grad, y.grad


@pytest.mark.parametrize("backend,device", backend_params("box_iou_aligned"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_aligned_backward_matches_reference_autograd(backend, device, dtype, mode):
    deg = degenerate_boxes(dtype)
    inputs = {
        "random": (random_boxes(40, seed=21, dtype=dtype), random_boxes(40, seed=22, dtype=dtype)),
        # Every pair of the degenerate set: identical boxes (ties everywhere), points, touching edges.
        "degenerate": (deg.repeat_interleave(len(deg), 0), deg.repeat(len(deg), 1)),
        "overlapping": tuple(t.detach().to(dtype) for t in overlapping_pairs(30, seed=23)),
    }
    for name, (b1, b2) in inputs.items():
        grad_out = torch.randn(len(b1), generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
        x, y = b1.to(device).requires_grad_(), b2.to(device).requires_grad_()
        ops.box_iou(x, y, mode, aligned=True, backend=backend).backward(grad_out.to(device))
        gx, gy = reference_grads(b1, b2, mode, grad_out)
        assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all(), name
        rtol, atol = {torch.float64: (1e-9, 1e-10), torch.float32: (1e-4, 1e-5)}.get(dtype, (2e-2, 2e-2))
        for got, want in ((x.grad, gx), (y.grad, gy)):
            torch.testing.assert_close(got.cpu(), want, rtol=rtol, atol=atol, msg=lambda m, case=name: f"{case}: {m}")


@pytest.mark.parametrize("backend,device", backend_params("box_iou"))
def test_pairwise_backward_through_reference(backend, device):
    a, b = overlapping_pairs(5, seed=24)
    a, b = a.detach().to(device).requires_grad_(), b.detach().to(device).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: ops.box_iou(x, y, "giou", backend=backend), (a, b))


@pytest.mark.parametrize("backend,device", backend_params("box_iou_aligned"))
@pytest.mark.parametrize("mode", ["iou", "giou", "diou", "iof"])  # CIoU's alpha is a no_grad constant
def test_aligned_double_backward(backend, device, mode):
    a, b = overlapping_pairs(4, seed=26)
    a, b = a.detach().to(device).requires_grad_(), b.detach().to(device).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda x, y: ops.box_iou(x, y, mode, aligned=True, backend=backend), (a, b))


def test_giou_loss_equals_torchvision_loss_and_gradient():
    a, b = overlapping_pairs(20, seed=25)
    ours = (1 - ops.box_iou(a, b, "giou", aligned=True)).sum()
    ga, gb = torch.autograd.grad(ours, (a, b))
    theirs = tvo.generalized_box_iou_loss(a, b, reduction="sum")
    ta, tb = torch.autograd.grad(theirs, (a, b))
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(ga, ta)
    torch.testing.assert_close(gb, tb)


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize(
    "b1,b2,kwargs,error,message",
    [
        (torch.zeros(3, 5), torch.zeros(2, 4), {}, ValueError, r"boxes1 must have shape \[\.\.\., 4\].*got \[3, 5\]"),
        (torch.zeros(3, 4), torch.zeros(2, 3), {}, ValueError, r"boxes2 must have shape \[\.\.\., 4\].*got \[2, 3\]"),
        (torch.zeros(2, 3, 4), torch.zeros(4, 3, 4), {}, ValueError, r"same batch size B, got 2 and 4"),
        (
            torch.zeros(3, 4),
            torch.zeros(2, 3, 4),
            {},
            ValueError,
            r"both be \[N, 4\] and \[M, 4\].*got \[3, 4\] and \[2, 3, 4\]",
        ),
        (torch.zeros(4), torch.zeros(4), {}, ValueError, r"both be \[N, 4\] and \[M, 4\]"),
        (
            torch.zeros(3, 4),
            torch.zeros(2, 4),
            {"aligned": True},
            ValueError,
            r"same shape .*got \[3, 4\] and \[2, 4\]",
        ),
        (
            torch.zeros(3, 4, dtype=torch.long),
            torch.zeros(2, 4),
            {},
            TypeError,
            r"boxes1 must be a floating-point tensor.*got torch.int64",
        ),
        (
            torch.zeros(3, 4),
            torch.zeros(2, 4, dtype=torch.int32),
            {},
            TypeError,
            r"boxes2 must be a floating-point.*int32",
        ),
        (
            torch.zeros(3, 4),
            torch.zeros(2, 4, dtype=torch.float64),
            {},
            TypeError,
            r"same dtype, got torch.float32 and torch.float64",
        ),
        (torch.zeros(3, 4), torch.zeros(2, 4, device="meta"), {}, ValueError, r"same device, got cpu and meta"),
        (
            torch.zeros(3, 4),
            torch.zeros(2, 4),
            {"mode": "dice"},
            ValueError,
            r"mode must be one of 'iou', .*got 'dice'",
        ),
        ([[0, 0, 1, 1]], torch.zeros(2, 4), {}, TypeError, r"boxes1 must be a torch.Tensor, got list"),
    ],
)
def test_bad_input_errors_name_the_argument(backend, b1, b2, kwargs, error, message):
    with pytest.raises(error, match=message):
        ops.box_iou(b1, b2, backend=backend, **kwargs)


@pytest.mark.parametrize(
    "call,error,message",
    [
        (
            lambda: torch.ops.vision_kernels.box_iou(torch.zeros(3, 5), torch.zeros(2, 4)),
            ValueError,
            r"boxes1 must have shape \[\.\.\., 4\]",
        ),
        (
            lambda: torch.ops.vision_kernels.box_iou(torch.zeros(2, 3, 4), torch.zeros(4, 3, 4)),
            ValueError,
            "same batch size B, got 2 and 4",
        ),
        (
            lambda: torch.ops.vision_kernels.box_iou(torch.zeros(3, 4, dtype=torch.long), torch.zeros(2, 4)),
            TypeError,
            "floating-point",
        ),
        (
            lambda: torch.ops.vision_kernels.box_iou(torch.zeros(3, 4), torch.zeros(2, 4), "dice"),
            ValueError,
            "mode must be one of",
        ),
        (
            lambda: torch.ops.vision_kernels.box_iou_aligned(torch.zeros(3, 4), torch.zeros(2, 4)),
            ValueError,
            "same shape",
        ),
        (
            lambda: torch.ops.vision_kernels.box_iou_aligned_backward(
                torch.zeros(2), torch.zeros(3, 4), torch.zeros(3, 4), "iou", 0.0
            ),
            ValueError,
            r"grad must have the shape of the aligned output \[3\], got \[2\]",
        ),
    ],
)
def test_native_op_called_directly_checks_too(call, error, message):
    pytest.importorskip("vision_kernels._C")
    with pytest.raises(error, match=message):
        call()


@pytest.mark.triton
def test_triton_ops_called_directly_check_too():
    from vision_kernels import backends

    for op in ("box_iou", "nms"):  # also imports the modules defining the ops
        if backends.unavailable_reason("triton", op, "cpu"):
            pytest.skip(backends.unavailable_reason("triton", op, "cpu"))
    t = torch.ops.vision_kernels
    with pytest.raises(ValueError, match="same batch size B, got 2 and 4"):
        t.box_iou_triton(torch.zeros(2, 3, 4), torch.zeros(4, 3, 4))
    with pytest.raises(TypeError, match="same dtype"):
        t.box_iou_aligned_triton(torch.zeros(3, 4), torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"grad must have the shape of the aligned output \[3\], got \[5\]"):
        t.box_iou_aligned_backward_triton(torch.zeros(5), torch.zeros(3, 4), torch.zeros(3, 4), "iou", 0.0)
    with pytest.raises(ValueError, match="scores must have shape"):
        t.nms_triton(torch.zeros(3, 4), torch.zeros(2), 0.5)


# ---- torch.library ---------------------------------------------------------------------------


@pytest.fixture
def native():
    pytest.importorskip("vision_kernels._C")
    return torch.ops.vision_kernels


@pytest.mark.parametrize("mode", MODES)
def test_opcheck_native_box_ops(native, mode):
    b1, b2 = random_boxes(7, seed=30), random_boxes(5, seed=31)
    bb1, bb2 = random_boxes(2, 7, seed=32), random_boxes(2, 5, seed=33)
    a1, a2 = (t.detach() for t in overlapping_pairs(6, seed=34))
    for args in [(b1, b2, mode, 1e-7), (bb1, bb2, mode, 1e-7), (torch.zeros(0, 4), b2, mode, 1e-7)]:
        torch.library.opcheck(native.box_iou.default, args)
    for args in [
        (a1, a2, mode, 1e-7),
        (a1.float(), a2.float(), mode, 1e-7),
        (a1.reshape(2, 3, 4), a2.reshape(2, 3, 4), mode, 1e-7),
    ]:
        torch.library.opcheck(native.box_iou_aligned.default, args)
        grad = torch.randn(args[0].shape[:-1], dtype=args[0].dtype)
        torch.library.opcheck(native.box_iou_aligned_backward.default, (grad, *args))

"""What only a GPU can check: opcheck and torch.compile over the Triton ops (Triton's interpreter
cannot run on fake tensors), and the native CUDA kernels against the CPU ones on large inputs."""

from __future__ import annotations

import pytest
import torch
from boxes_data import random_boxes

from vision_kernels import backends, ops

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def _needs_gpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")


def _triton_ops():
    for op in backends.TRITON_MODULES:
        if backends.unavailable_reason("triton", op, "cuda") is not None:
            pytest.skip(backends.unavailable_reason("triton", op, "cuda"))
    return torch.ops.vision_kernels


@pytest.mark.triton
@pytest.mark.parametrize("mode", ["iou", "giou", "diou", "ciou", "iof"])
def test_opcheck_triton_box_ops(mode):
    t = _triton_ops()
    b1, b2 = random_boxes(37, seed=1).cuda(), random_boxes(29, seed=2).cuda()
    torch.library.opcheck(t.box_iou_triton.default, (b1, b2, mode, 1e-7))
    torch.library.opcheck(t.box_iou_triton.default, (b1.reshape(1, 37, 4), b2.reshape(1, 29, 4), mode, 1e-7))
    a1, a2 = b1[:29].double(), b2.double()
    torch.library.opcheck(t.box_iou_aligned_triton.default, (a1, a2, mode, 1e-7))
    torch.library.opcheck(
        t.box_iou_aligned_backward_triton.default,
        (torch.randn(29, device="cuda", dtype=torch.float64), a1, a2, mode, 1e-7),
    )
    torch.library.opcheck(t.box_convert_triton.default, (b1, "xywh", "cxcywh"))


@pytest.mark.triton
def test_opcheck_triton_nms():
    t = _triton_ops()
    boxes, scores = random_boxes(200, seed=3).cuda(), torch.rand(200, device="cuda")
    torch.library.opcheck(t.nms_triton.default, (boxes, scores, 0.5))
    idxs = torch.randint(0, 4, (200,), device="cuda")
    torch.library.opcheck(t.batched_nms_triton.default, (boxes, scores, idxs, 0.5))


@pytest.mark.parametrize("backend", ["native", pytest.param("triton", marks=pytest.mark.triton)])
def test_compile_fullgraph_on_gpu(backend):
    if backend == "triton":
        _triton_ops()
    torch._dynamo.reset()

    def step(pred, target, scores):
        loss = (1 - ops.box_iou(pred, target, "giou", aligned=True)).mean()
        keep = ops.nms(pred.detach(), scores, 0.5)
        return loss, keep

    pred = (random_boxes(256, seed=4) + 1).cuda().requires_grad_()
    target, scores = random_boxes(256, seed=5).cuda(), torch.rand(256, device="cuda")
    with backends.use_backend(backend):
        loss, keep = torch.compile(step, fullgraph=True)(pred, target, scores)
        loss.backward()
        eager_loss, eager_keep = step(pred, target, scores)
    torch.testing.assert_close(loss, eager_loss)
    assert torch.equal(keep, eager_keep)


@pytest.mark.parametrize("backend", ["native", pytest.param("triton", marks=pytest.mark.triton)])
def test_large_inputs_match_cpu(backend):
    if backend == "triton":
        _triton_ops()
    a, b = random_boxes(3000, seed=6), random_boxes(2000, seed=7)
    for mode in ("iou", "giou", "ciou"):
        expected = ops.box_iou(a, b, mode, backend="native")
        got = ops.box_iou(a.cuda(), b.cuda(), mode, backend=backend).cpu()
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    scores = torch.rand(3000)
    assert torch.equal(
        ops.nms(a.cuda(), scores.cuda(), 0.5, backend=backend).cpu(), ops.nms(a, scores, 0.5, backend="native")
    )

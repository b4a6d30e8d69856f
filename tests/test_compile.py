"""torch.compile(fullgraph=True) over code that calls the ops (native backend, on CPU)."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops as tvo
from boxes_data import random_boxes

from vision_kernels import ops, reference

pytestmark = pytest.mark.skipif(
    not ops._extension.STATUS.loaded, reason="compile tests exercise the native ops' fake kernels"
)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def detection_postprocess(boxes_xywh, scores, labels, targets):
    boxes = ops.box_convert(boxes_xywh, "xywh", "xyxy")
    matched = ops.box_iou(boxes, targets).amax(dim=1)
    keep = ops.batched_nms(boxes, scores * matched, labels, 0.5)
    return boxes[keep], keep


def giou_loss(pred, target):
    return (1 - ops.box_iou(pred, target, "ciou", aligned=True)).mean()


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_fullgraph_forward_with_data_dependent_nms(backend):
    boxes = ops.box_convert(random_boxes(60, seed=1), "xyxy", "xywh")
    scores = torch.rand(60, generator=torch.Generator().manual_seed(2))
    labels = torch.randint(0, 3, (60,), generator=torch.Generator().manual_seed(3))
    targets = random_boxes(5, seed=4)
    compiled = torch.compile(detection_postprocess, fullgraph=True, backend=backend)
    got_boxes, got_keep = compiled(boxes, scores, labels, targets)
    want_boxes, want_keep = detection_postprocess(boxes, scores, labels, targets)
    assert torch.equal(got_keep, want_keep)
    torch.testing.assert_close(got_boxes, want_boxes)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_fullgraph_loss_backward(backend):
    pred = (random_boxes(32, seed=5) + 1).requires_grad_()
    target = random_boxes(32, seed=6)
    compiled = torch.compile(giou_loss, fullgraph=True, backend=backend)
    loss = compiled(pred, target)
    (grad,) = torch.autograd.grad(loss, pred)
    ref_pred = pred.detach().clone().requires_grad_()
    ref_loss = (1 - reference.box_iou_aligned(ref_pred, target, "ciou")).mean()
    (ref_grad,) = torch.autograd.grad(ref_loss, ref_pred)
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad, ref_grad)


def test_fullgraph_batched_pairwise_and_dynamic_shapes():
    compiled = torch.compile(lambda a, b: ops.box_iou(a, b, "giou"), fullgraph=True, backend="aot_eager", dynamic=True)
    for n, m in [(5, 7), (9, 3)]:
        a, b = random_boxes(2, n, seed=n), random_boxes(2, m, seed=m)
        torch.testing.assert_close(compiled(a, b), torch.stack([tvo.generalized_box_iou(a[i], b[i]) for i in range(2)]))


def test_backend_choice_is_made_while_tracing_and_guarded():
    from torch._dynamo.testing import CompileCounterWithBackend

    from vision_kernels import backends

    counter = CompileCounterWithBackend("aot_eager")
    fn = torch.compile(lambda a, b: ops.box_iou(a, b), fullgraph=True, backend=counter)
    a = random_boxes(4, seed=7)
    expected = reference.box_iou(a, a)
    torch.testing.assert_close(fn(a, a), expected)
    assert "vision_kernels.box_iou" in str(counter.graphs[-1].graph)
    with backends.use_backend("reference"):  # a changed choice recompiles
        torch.testing.assert_close(fn(a, a), expected)
    assert counter.frame_count == 2
    assert "vision_kernels.box_iou" not in str(counter.graphs[-1].graph)

"""nms and batched_nms on every backend against torchvision and the reference."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops as tvo
from boxes_data import degenerate_boxes, non_contiguous, random_boxes
from conftest import backend_params

from vision_kernels import ops, reference

THRESHOLDS = [0.0, 0.3, 0.5, 0.7, 1.0]
# Triton's interpreter warns on the 0/0 IoU of zero-area boxes, which (as in torchvision) never suppresses.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")


def detections(n: int, seed: int, dtype=torch.float32, integer: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Detector-like output: clusters of jittered boxes around n // 8 objects, plus random scores."""
    g = torch.Generator().manual_seed(seed)
    objects = random_boxes(max(n // 8, 1), scale=200, seed=seed, dtype=torch.float64)
    pick = torch.randint(len(objects), (n,), generator=g)
    boxes = objects[pick] + (torch.rand(n, 4, generator=g, dtype=torch.float64) - 0.5) * 8
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2])
    if integer:
        boxes = boxes.round()
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    return boxes.to(dtype), scores.to(dtype)


def torchvision_nms(boxes, scores, threshold, device="cpu"):
    """torchvision's answer on `device` (its CPU and CUDA kernels compare the threshold differently,
    and each backend follows the one for its device), as CPU indices."""
    # torchvision has no float16/bfloat16 CPU kernel; ours computes those in float32 exactly.
    if boxes.dtype in (torch.float16, torch.bfloat16):
        boxes, scores = boxes.float(), scores.float()
    return tvo.nms(boxes.to(device), scores.to(device), threshold).cpu()


@pytest.mark.parametrize("backend,device", backend_params("nms"))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_nms_matches_torchvision(backend, device, dtype, threshold):
    n = 60 if backend == "triton" else 300
    for seed, integer in [(0, False), (1, True)]:
        boxes, scores = detections(n, seed, dtype, integer)
        expected = torchvision_nms(boxes, scores, threshold, device)
        kept = ops.nms(boxes.to(device), scores.to(device), threshold, backend=backend)
        assert kept.dtype == torch.int64 and kept.device.type == device
        assert torch.equal(kept.cpu(), expected), (seed, integer)


@pytest.mark.parametrize("backend,device", backend_params("nms"))
def test_nms_score_ties_keep_index_order(backend, device):
    boxes = random_boxes(40, seed=3)
    scores = torch.tensor([0.5, 0.25] * 20)
    boxes[12] = boxes[2]  # a duplicate with the same score: the lower index wins
    kept = ops.nms(boxes.to(device), scores.to(device), 0.5, backend=backend).cpu()
    assert torch.equal(kept, torchvision_nms(boxes, scores, 0.5, device))
    assert 2 in kept and 12 not in kept
    assert torch.equal(kept[kept % 2 == 0], kept[: (kept % 2 == 0).sum()])  # score 0.5 first, index order


@pytest.mark.parametrize("backend,device", backend_params("nms"))
def test_nms_degenerate_boxes(backend, device):
    boxes = degenerate_boxes()
    scores = torch.linspace(1, 0.1, len(boxes))
    for threshold in (0.0, 0.5):
        kept = ops.nms(boxes.to(device), scores.to(device), threshold, backend=backend).cpu()
        assert torch.equal(kept, torchvision_nms(boxes, scores, threshold, device))


@pytest.mark.parametrize("backend,device", backend_params("nms"))
def test_nms_empty_and_non_contiguous(backend, device):
    empty = ops.nms(torch.zeros(0, 4, device=device), torch.zeros(0, device=device), 0.5, backend=backend)
    assert empty.shape == (0,) and empty.dtype == torch.int64
    boxes, scores = detections(50, seed=4)
    kept = ops.nms(non_contiguous(boxes).to(device), scores.to(device), 0.5, backend=backend)
    assert torch.equal(kept.cpu(), torchvision_nms(boxes, scores, 0.5, device))


def test_threshold_semantics_follow_torchvision_per_device():
    # IoU of these integer boxes is exactly 3/10, and float32(0.3) > 0.3: torchvision's CPU kernel
    # (double compare) suppresses, its CUDA kernel (float compare) does not.
    boxes = torch.tensor([[0.0, 0, 10, 1], [7, 0, 10, 1]])
    scores = torch.tensor([0.9, 0.8])
    assert (
        reference.boxes.nms_threshold(0.3, torch.float32, "cpu")
        < 0.3
        < reference.boxes.nms_threshold(0.3, torch.float32, "cuda")
    )
    assert reference.box_iou(boxes[:1], boxes[1:]).item() == torch.tensor(0.3).item()
    assert tvo.nms(boxes, scores, 0.3).tolist() == [0]
    for backend in ("native", "reference"):
        assert ops.nms(boxes, scores, 0.3, backend=backend).tolist() == [0]


# ---- batched_nms ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend,device", backend_params("batched_nms"))
@pytest.mark.parametrize("idx_dtype", [torch.int64, torch.int32], ids=str)
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_batched_nms_matches_torchvision(backend, device, idx_dtype, threshold):
    n = 60 if backend == "triton" else 400
    boxes, scores = detections(n, seed=5)
    idxs = torch.randint(-2, 5, (n,), generator=torch.Generator().manual_seed(6)).to(idx_dtype)
    kept = ops.batched_nms(boxes.to(device), scores.to(device), idxs.to(device), threshold, backend=backend)
    on = (boxes.to(device), scores.to(device), idxs.to(device), threshold)
    assert torch.equal(kept.cpu(), tvo.boxes._batched_nms_vanilla(*on).cpu())
    assert torch.equal(kept.cpu(), tvo.batched_nms(*on).cpu())


@pytest.mark.parametrize("backend,device", backend_params("batched_nms"))
def test_batched_nms_one_category_is_nms(backend, device):
    boxes, scores = detections(80, seed=7)
    idxs = torch.full((80,), 3)
    kept = ops.batched_nms(boxes.to(device), scores.to(device), idxs.to(device), 0.5, backend=backend)
    assert torch.equal(kept.cpu(), torchvision_nms(boxes, scores, 0.5, device))


@pytest.mark.parametrize("backend,device", backend_params("batched_nms"))
def test_batched_nms_empty(backend, device):
    kept = ops.batched_nms(
        torch.zeros(0, 4, device=device),
        torch.zeros(0, device=device),
        torch.zeros(0, dtype=torch.long, device=device),
        0.5,
        backend=backend,
    )
    assert kept.shape == (0,) and kept.dtype == torch.int64


def test_batched_nms_large_coordinates_are_exact_per_class():
    """torchvision's coordinate-offset trick loses float32 precision on large offsets; the
    per-category definition (its per-class path) is what batched_nms means."""
    boxes, scores = detections(300, seed=8)
    boxes = boxes * 50 + 1e4
    idxs = torch.randint(0, 60, (300,), generator=torch.Generator().manual_seed(9))
    expected = tvo.boxes._batched_nms_vanilla(boxes, scores, idxs, 0.5)
    for backend in ("native", "reference"):
        assert torch.equal(ops.batched_nms(boxes, scores, idxs, 0.5, backend=backend), expected)


# ---- errors and torch.library --------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize(
    "args,error,message",
    [
        ((torch.zeros(3, 5), torch.zeros(3), 0.5), ValueError, r"boxes must have shape \[\.\.\., 4\].*got \[3, 5\]"),
        ((torch.zeros(2, 3, 4), torch.zeros(3), 0.5), ValueError, r"boxes must have shape \[N, 4\], got \[2, 3, 4\]"),
        (
            (torch.zeros(3, 4), torch.zeros(4), 0.5),
            ValueError,
            r"scores must have shape \[N\] with N = boxes.shape\[0\] = 3, got \[4\]",
        ),
        (
            (torch.zeros(3, 4, dtype=torch.int32), torch.zeros(3), 0.5),
            TypeError,
            r"boxes must be a floating-point tensor.*int32",
        ),
        (
            (torch.zeros(3, 4), torch.zeros(3, dtype=torch.float64), 0.5),
            TypeError,
            r"boxes and scores must have the same dtype",
        ),
        (
            (torch.zeros(3, 4), torch.zeros(3, device="meta"), 0.5),
            ValueError,
            r"boxes and scores must be on the same device",
        ),
    ],
)
def test_nms_bad_input(backend, args, error, message):
    with pytest.raises(error, match=message):
        ops.nms(*args, backend=backend)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_batched_nms_bad_idxs(backend):
    boxes, scores = torch.zeros(3, 4), torch.zeros(3)
    with pytest.raises(TypeError, match=r"idxs must be an integer tensor of category indices, got torch.float32"):
        ops.batched_nms(boxes, scores, torch.zeros(3), 0.5, backend=backend)
    with pytest.raises(ValueError, match=r"idxs must have shape \[N\] with N = boxes.shape\[0\] = 3, got \[2\]"):
        ops.batched_nms(boxes, scores, torch.zeros(2, dtype=torch.long), 0.5, backend=backend)


def test_opcheck_native_nms():
    pytest.importorskip("vision_kernels._C")
    boxes, scores = detections(40, seed=10)
    idxs = torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(11))
    for args in [
        (boxes, scores, 0.5),
        (boxes.double(), scores.double(), 0.3),
        (torch.zeros(0, 4), torch.zeros(0), 0.5),
    ]:
        torch.library.opcheck(torch.ops.vision_kernels.nms.default, args)
    torch.library.opcheck(torch.ops.vision_kernels.batched_nms.default, (boxes, scores, idxs, 0.5))

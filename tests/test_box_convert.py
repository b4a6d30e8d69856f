"""box_convert on every backend against torchvision and the reference, with gradients."""

from __future__ import annotations

import itertools

import pytest
import torch
import torchvision.ops as tvo
from boxes_data import FLOAT_DTYPES, assert_close, non_contiguous, random_boxes
from conftest import backend_params

from vision_kernels import ops, reference

FORMATS = ["xyxy", "xywh", "cxcywh"]
PAIRS = list(itertools.product(FORMATS, FORMATS))


@pytest.mark.parametrize("backend,device", backend_params("box_convert"))
@pytest.mark.parametrize("in_fmt,out_fmt", PAIRS)
def test_matches_torchvision_exactly(backend, device, in_fmt, out_fmt):
    for dtype in (torch.float32, torch.float64):
        boxes = random_boxes(50, seed=1, dtype=dtype)
        out = ops.box_convert(boxes.to(device), in_fmt, out_fmt, backend=backend)
        assert torch.equal(out.cpu(), tvo.box_convert(boxes, in_fmt, out_fmt))


@pytest.mark.parametrize("backend,device", backend_params("box_convert"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_dtypes_shapes_and_layouts(backend, device, dtype):
    boxes = random_boxes(2, 3, 7, seed=2, dtype=dtype)
    for in_fmt, out_fmt in PAIRS:
        out = ops.box_convert(boxes.to(device), in_fmt, out_fmt, backend=backend)
        assert out.shape == boxes.shape and out.dtype == dtype
        assert_close(out.cpu(), reference.box_convert(boxes, in_fmt, out_fmt))
        nc = ops.box_convert(non_contiguous(boxes).to(device), in_fmt, out_fmt, backend=backend)
        assert_close(nc.cpu(), out.cpu())
    assert ops.box_convert(torch.zeros(0, 4, dtype=dtype, device=device), "xywh", "xyxy", backend=backend).shape == (
        0,
        4,
    )


@pytest.mark.parametrize("backend,device", backend_params("box_convert"))
@pytest.mark.parametrize("in_fmt,out_fmt", PAIRS)
def test_gradient(backend, device, in_fmt, out_fmt):
    boxes = random_boxes(5, seed=3, dtype=torch.float64).to(device).requires_grad_()
    assert torch.autograd.gradcheck(lambda b: ops.box_convert(b, in_fmt, out_fmt, backend=backend), (boxes,))


def test_round_trip():
    boxes = random_boxes(100, seed=4, dtype=torch.float64)
    for fmt in ("xywh", "cxcywh"):
        assert_close(ops.box_convert(ops.box_convert(boxes, "xyxy", fmt), fmt, "xyxy"), boxes)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_bad_input(backend):
    with pytest.raises(ValueError, match=r"in_fmt must be one of 'xyxy', 'xywh', 'cxcywh', got 'xyzw'"):
        ops.box_convert(torch.zeros(2, 4), "xyzw", "xyxy", backend=backend)
    with pytest.raises(ValueError, match=r"out_fmt must be one of"):
        ops.box_convert(torch.zeros(2, 4), "xyxy", "yolo", backend=backend)
    with pytest.raises(ValueError, match=r"boxes must have shape \[\.\.\., 4\]"):
        ops.box_convert(torch.zeros(2, 5), "xyxy", "xywh", backend=backend)
    with pytest.raises(TypeError, match=r"boxes must be a floating-point tensor"):
        ops.box_convert(torch.zeros(2, 4, dtype=torch.int16), "xyxy", "xywh", backend=backend)


def test_opcheck_native_box_convert():
    pytest.importorskip("vision_kernels._C")
    for in_fmt, out_fmt in PAIRS:
        torch.library.opcheck(torch.ops.vision_kernels.box_convert.default, (random_boxes(6, seed=5), in_fmt, out_fmt))
    torch.library.opcheck(
        torch.ops.vision_kernels.box_convert.default, (random_boxes(2, 3, seed=6).double(), "xywh", "cxcywh")
    )

"""Hypothesis properties of the box ops, on the native and reference backends."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vision_kernels import ops

BACKENDS = ["native", "reference"]
# Subnormal sizes (< 1.2e-38) are left out: their areas round so coarsely that GIoU can exceed IoU.
coordinate = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_subnormal=False, width=32)
extent = st.floats(min_value=0, max_value=1e3, allow_nan=False, allow_subnormal=False, width=32)


@st.composite
def boxes(draw, min_size: int = 1, max_size: int = 12, positive: bool = False) -> torch.Tensor:
    """Valid xyxy boxes (x1 <= x2, y1 <= y2); with `positive`, of positive width and height."""
    size = st.floats(min_value=0.125, max_value=1e3, width=32) if positive else extent
    rows = draw(st.lists(st.tuples(coordinate, coordinate, size, size), min_size=min_size, max_size=max_size))
    t = torch.tensor(rows, dtype=torch.float64)
    return torch.cat([t[:, :2], t[:, :2] + t[:, 2:]], dim=1).float()


prop = settings(max_examples=60, deadline=None)


@prop
@given(a=boxes(), b=boxes(), backend=st.sampled_from(BACKENDS))
def test_iou_and_iof_in_unit_interval_and_iof_dominates(a, b, backend):
    iou = ops.box_iou(a, b, "iou", backend=backend)
    iof = ops.box_iou(a, b, "iof", backend=backend)
    assert ((iou >= 0) & (iou <= 1)).all()
    assert ((iof >= 0) & (iof <= 1 + 1e-6)).all()
    assert (iof >= iou - 1e-6).all()


@prop
@given(a=boxes(), b=boxes(), backend=st.sampled_from(BACKENDS), mode=st.sampled_from(["iou", "giou", "diou", "ciou"]))
def test_symmetric(a, b, backend, mode):
    torch.testing.assert_close(ops.box_iou(a, b, mode, backend=backend), ops.box_iou(b, a, mode, backend=backend).T)


@prop
@given(
    a=boxes(positive=True),
    backend=st.sampled_from(BACKENDS),
    mode=st.sampled_from(["iou", "giou", "diou", "ciou", "iof"]),
)
def test_a_box_overlaps_itself_fully(a, backend, mode):
    assert torch.equal(ops.box_iou(a, a, mode, aligned=True, backend=backend), torch.ones(len(a)))
    assert torch.equal(ops.box_iou(a, a, mode, backend=backend).diagonal(), torch.ones(len(a)))


@prop
@given(a=boxes(), b=boxes(), backend=st.sampled_from(BACKENDS))
def test_giou_and_diou_in_minus_one_one_and_below_iou(a, b, backend):
    iou = ops.box_iou(a, b, "iou", backend=backend)
    for mode in ("giou", "diou"):
        v = ops.box_iou(a, b, mode, backend=backend)
        assert ((v >= -1) & (v <= 1)).all()
        assert (v <= iou + 1e-6).all()


@prop
@given(a=boxes(positive=True), b=boxes(positive=True), shift=coordinate, backend=st.sampled_from(BACKENDS))
def test_translation_invariant(a, b, shift, backend):
    a64, b64 = a.double(), b.double()
    moved = ops.box_iou(a64 + shift, b64 + shift, "giou", backend=backend)
    torch.testing.assert_close(moved, ops.box_iou(a64, b64, "giou", backend=backend), rtol=1e-6, atol=1e-6)


@prop
@given(
    b=boxes(max_size=40),
    data=st.data(),
    backend=st.sampled_from(BACKENDS),
    threshold=st.floats(min_value=0, max_value=1),
)
def test_nms_keeps_a_maximal_non_overlapping_set(b, data, backend, threshold):
    n = len(b)
    scores = torch.tensor(data.draw(st.lists(st.floats(0, 1, width=32), min_size=n, max_size=n)), dtype=torch.float32)
    kept = ops.nms(b, scores, threshold, backend=backend)
    assert len(set(kept.tolist())) == len(kept)
    assert (scores[kept][:-1] >= scores[kept][1:]).all()  # decreasing score
    iou = ops.box_iou(b, b, backend="reference").double()
    kept_iou = iou[kept][:, kept] - torch.eye(len(kept), dtype=torch.float64) * 2
    assert (kept_iou <= threshold + 1e-6).all()  # no two kept boxes overlap too much
    dropped = torch.tensor(sorted(set(range(n)) - set(kept.tolist())), dtype=torch.long)
    for d in dropped.tolist():  # every dropped box was suppressed by a kept box
        assert (iou[d, kept] > threshold - 1e-6).any()


@prop
@given(b=boxes(), fmt=st.sampled_from(["xywh", "cxcywh"]), backend=st.sampled_from(BACKENDS))
def test_convert_round_trip(b, fmt, backend):
    back = ops.box_convert(ops.box_convert(b.double(), "xyxy", fmt, backend=backend), fmt, "xyxy", backend=backend)
    torch.testing.assert_close(back, b.double(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batched_nms_never_suppresses_across_categories(backend):
    b = torch.tensor([[0.0, 0, 10, 10]] * 4)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert ops.batched_nms(b, scores, torch.tensor([0, 1, 0, 1]), 0.5, backend=backend).tolist() == [0, 1]

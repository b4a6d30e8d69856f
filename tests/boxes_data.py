"""Box tensors for the tests: random, degenerate, extreme scales, non-contiguous."""

from __future__ import annotations

import torch
from torch import Tensor

FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# (rtol, atol) per dtype for comparisons with the reference (computed from the same input).
TOLERANCE = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-6),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (1e-2, 1e-2),
}


def random_boxes(
    *shape: int,
    scale: float = 100.0,
    max_size: float | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    integer: bool = False,
) -> Tensor:
    """Valid (x1 <= x2, y1 <= y2) boxes of shape [*shape, 4] in a scale x scale image."""
    g = torch.Generator().manual_seed(seed)
    max_size = scale / 3 if max_size is None else max_size
    xy = torch.rand(*shape, 2, generator=g, dtype=torch.float64) * scale
    wh = torch.rand(*shape, 2, generator=g, dtype=torch.float64) * max_size
    boxes = torch.cat([xy, xy + wh], dim=-1)
    if integer:
        boxes = boxes.round()
    return boxes.to(dtype)


def degenerate_boxes(dtype: torch.dtype = torch.float32) -> Tensor:
    """Zero-width, zero-height and point boxes, identical, nested, touching and disjoint boxes."""
    return torch.tensor(
        [
            [0, 0, 10, 10],
            [0, 0, 10, 10],  # identical to the first
            [2, 2, 5, 5],  # nested
            [10, 0, 20, 10],  # touching edge
            [5, 5, 5, 5],  # point inside
            [30, 30, 30, 30],  # point outside
            [0, 3, 10, 3],  # zero height
            [4, 0, 4, 10],  # zero width
            [0, 0, 0, 0],  # point at the corner
            [50, 50, 60, 70],  # disjoint
        ],
        dtype=dtype,
    )


def box_cases(dtype: torch.dtype) -> dict[str, tuple[Tensor, Tensor]]:
    """Named (boxes1, boxes2) pairwise inputs covering the kinds of data the kernels must handle."""
    deg = degenerate_boxes(dtype)
    cases = {
        "random": (random_boxes(13, seed=1, dtype=dtype), random_boxes(17, seed=2, dtype=dtype)),
        "integer": (
            random_boxes(11, seed=3, integer=True, dtype=dtype),
            random_boxes(9, seed=4, integer=True, dtype=dtype),
        ),
        "degenerate": (deg, deg),
        "small": (random_boxes(7, scale=1e-3, seed=5, dtype=dtype), random_boxes(8, scale=1e-3, seed=6, dtype=dtype)),
    }
    if dtype != torch.float16:  # float16 tops out at 65504
        big1 = random_boxes(7, scale=1e3, seed=7, dtype=torch.float64) + 1e5
        big2 = random_boxes(8, scale=1e3, seed=8, dtype=torch.float64) + 1e5
        cases["large"] = (big1.to(dtype), big2.to(dtype))
    return cases


def non_contiguous(boxes: Tensor) -> Tensor:
    """The same values as `boxes`, in a tensor whose last dimension has stride 2."""
    wide = torch.zeros(*boxes.shape[:-1], 8, dtype=boxes.dtype)
    wide[..., ::2] = boxes
    out = wide[..., ::2]
    assert not out.is_contiguous()
    return out


def assert_close(actual: Tensor, expected: Tensor, dtype: torch.dtype | None = None) -> None:
    rtol, atol = TOLERANCE[dtype or expected.dtype]
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=False)

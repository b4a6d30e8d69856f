"""Batching for detection datasets, whose targets hold a different number of boxes per image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def detection_collate(
    batch: Sequence[tuple[torch.Tensor, dict[str, Any]]],
) -> tuple[torch.Tensor | list[torch.Tensor], list[dict[str, Any]]]:
    """(images, targets) from a list of (image, target) items.

    Images are stacked into [N, C, H, W] when they all have the same shape, else returned as a
    list (detection models resize per image); targets stay a list of dicts, since their boxes
    cannot be stacked."""
    images = [image for image, _ in batch]
    targets = [target for _, target in batch]
    if images and len({tuple(image.shape) for image in images}) == 1:
        return torch.stack(images), targets
    return images, targets

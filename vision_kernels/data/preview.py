"""A look at a dataset (`vk data show`): its splits' sizes, classes, one item, and a sample grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

# A fixed palette for masks: background black, then distinct colours (VOC-like).
PALETTE = torch.tensor(
    [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128], [0, 128, 128], [128, 128, 128],
     [64, 0, 0], [192, 0, 0], [64, 128, 0], [192, 128, 0], [64, 0, 128], [192, 0, 128], [64, 128, 128]],
    dtype=torch.float32,
) / 255  # fmt: skip


def colour_mask(mask: Tensor) -> Tensor:
    """int [H, W] labels -> RGB [3, H, W]; 255 (ignore) white."""
    out = PALETTE[mask.clamp(0, 254) % len(PALETTE)].permute(2, 0, 1)
    return torch.where((mask == 255)[None], torch.ones_like(out), out)


def _rgb(image: Tensor) -> Tensor:
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def _boxes_drawn(image: Tensor, boxes: Tensor) -> Tensor:
    from torchvision.utils import draw_bounding_boxes

    uint8 = (_rgb(image) * 255).round().to(torch.uint8)
    return draw_bounding_boxes(uint8, boxes.reshape(-1, 4), colors="yellow").float() / 255


def visual(item: Any) -> Tensor:
    """One picture of an item: the image, with its boxes drawn, its mask beside it, or its pair."""
    if isinstance(item, Tensor):
        return _rgb(item)
    image, target = item[0], item[1]
    if isinstance(target, Tensor) and target.dim() == 2 and target.shape == image.shape[-2:]:
        return torch.cat([_rgb(image), colour_mask(target)], dim=-1)
    if isinstance(target, Tensor) and target.dim() == 3:  # a paired image
        return torch.cat([_rgb(image), _rgb(target)], dim=-1)
    if isinstance(target, dict):
        boxes = target.get("boxes", target.get("box"))
        if boxes is not None and len(boxes):
            return _boxes_drawn(image, boxes)
    return _rgb(image)


def preview(entry: Any, options: dict[str, Any], output: Path, count: int = 16) -> dict[str, Any]:
    """Loads every split of the registered dataset `entry`, writes a grid of `count` items of the
    first, and returns {"counts": {split: n}, "classes": [...], "item": the first item}."""
    from vision_kernels.viz.grid import save_image

    splits = {split: entry.load(split=split, **options) for split in entry.splits}
    first = next(iter(splits.values()))
    if len(first) == 0:
        raise ValueError(f"dataset {entry.name!r} is empty with options {options}")
    picks = torch.linspace(0, len(first) - 1, min(count, len(first))).long().unique().tolist()
    pictures = [visual(first[i]) for i in picks]
    height = max(p.shape[-2] for p in pictures)
    width = max(p.shape[-1] for p in pictures)
    padded = torch.stack([torch.nn.functional.pad(p, (0, width - p.shape[-1], 0, height - p.shape[-2]), value=1.0)
                          for p in pictures])  # fmt: skip
    save_image(padded, output)
    return {"counts": {s: len(d) for s, d in splits.items()}, "classes": list(getattr(first, "classes", []) or []),
            "item": first[0]}  # fmt: skip

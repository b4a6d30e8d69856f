"""Image grids, and PNG files to and from float tensors in [0, 1] (channels first)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from vision_kernels.data.images import read_image


def _as_batch(images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """[N, C, H, W] from a 4-d tensor, one [C, H, W] image, or a list of equal-sized [C, H, W]."""
    if not isinstance(images, torch.Tensor):
        images = list(images)
        if not images:
            raise ValueError("make_grid needs at least one image")
        shapes = {tuple(image.shape) for image in images}
        if len(shapes) != 1:
            raise ValueError(f"images must all have the same shape, got {sorted(shapes)}")
        images = torch.stack(images)
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W] or [C, H, W], got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("make_grid needs at least one image")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]}")
    return images if images.is_floating_point() else images.float()


def make_grid(
    images: torch.Tensor | Sequence[torch.Tensor], nrow: int | None = None, padding: int = 2, pad_value: float = 1.0
) -> torch.Tensor:
    """Tile N images into one [C, H', W'] image, `nrow` images per row (default ceil(sqrt(N))).

    Every image gets a `padding`-pixel border of `pad_value` (shared between neighbours, as in
    torchvision.utils.make_grid), and empty cells of the last row are `pad_value` too. The grid
    keeps the images' channel count, dtype and device."""
    batch = _as_batch(images)
    n, channels, height, width = batch.shape
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if nrow < 1 or padding < 0:
        raise ValueError(f"nrow must be >= 1 and padding >= 0, got nrow={nrow}, padding={padding}")
    columns = min(nrow, n)
    rows = math.ceil(n / columns)
    cell_h, cell_w = height + padding, width + padding
    grid = batch.new_full((channels, rows * cell_h + padding, columns * cell_w + padding), pad_value)
    for index, image in enumerate(batch):
        top = (index // columns) * cell_h + padding
        left = (index % columns) * cell_w + padding
        grid[:, top : top + height, left : left + width] = image
    return grid


def save_image(image: torch.Tensor, path: str | Path) -> None:
    """Write a [C, H, W] (or [H, W]) image, or an [N, C, H, W] batch as a grid, to a PNG file.

    Values are clamped to [0, 1] and rounded to 8 bits; 1 channel gives a grayscale ("L") PNG,
    3 channels an RGB one. The parent directory is created if needed."""
    image = image.detach()
    if image.dim() == 4:
        image = image[0] if image.shape[0] == 1 else make_grid(image)
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"save_image needs [C, H, W] or [N, C, H, W] with C = 1 or 3, got {tuple(image.shape)}")
    pixels = image.float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).cpu()
    # uint8 [H, W] arrays become "L" images and [H, W, 3] ones "RGB".
    array = pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).contiguous().numpy()
    picture = Image.fromarray(array)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, format="PNG")


def load_image(path: str | Path) -> torch.Tensor:
    """Read an image file as a [C, H, W] float32 tensor in [0, 1] (vision_kernels.data.images.read_image).

    Grayscale gives 1 channel, 16-bit grayscale 1 channel scaled by 65535, colour 3 channels
    (alpha is dropped). A missing, truncated or non-image file raises DataError (a ValueError)
    "image '<path>' is not a readable image: <reason>"."""
    return read_image(path)

"""Paired image translation in the pix2pix layout: each file holds the two images side by side."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from vision_kernels.data.errors import DataError
from vision_kernels.data.images import list_images, read_image

DIRECTIONS = ("AtoB", "BtoA")


def split_pair(image: torch.Tensor, path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(left half, right half) of a [C, H, W] side-by-side image, split at width // 2.

    An odd width is a DataError rather than a dropped column: it means the file is not an A|B
    pair of equal halves (a wrong folder, or a resized export), and the halves would not align."""
    width = image.shape[-1]
    if width % 2:
        raise DataError(
            f"image {str(path)!r} is {width} pixels wide: a side-by-side A|B pair needs an even width "
            "(two halves of the same size)",
            path,
        )
    half = width // 2
    return image[..., :half].clone(), image[..., half:].clone()


class PairedImages(Dataset):
    """Aligned image pairs for pix2pix, each stored as one image with A on the left, B on the right::

        root/<split>/<name>.jpg     e.g. facades/train/1.jpg, 512x256: A = left 256x256, B = right

    Images are found by suffix (IMAGE_SUFFIXES), recursively, sorted. Items are (A, B), each
    [C, H, W/2] float32 in [0, 1]; `direction="BtoA"` swaps them so that the first element is
    always the generator's input. `channels` forces 1 or 3 channels (see read_image). A missing
    split folder or one without images is a DataError at construction; an image that does not
    decode or has an odd width, at read time."""

    def __init__(
        self, root: str | Path, split: str = "train", direction: str = "AtoB", channels: int | None = None
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.root = Path(root)
        self.split = split
        self.direction = direction
        self.channels = channels
        self.folder = self.root / split
        if not self.folder.is_dir():
            raise DataError(
                f"split folder {str(self.folder)!r} does not exist: the pix2pix layout is root/<split>/<image> "
                "with A and B side by side",
                self.folder,
            )
        self.files: list[Path] = list_images(self.folder)
        if not self.files:
            raise DataError(f"split folder {str(self.folder)!r} has no images", self.folder)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.files[index]
        a, b = split_pair(read_image(path, self.channels), path)
        return (a, b) if self.direction == "AtoB" else (b, a)

    def source(self, index: int) -> str:
        """The side-by-side image file of item `index`."""
        return str(self.files[index])

    def check(self, index: int) -> str | None:
        """None when item `index` is usable, else the problem (decodes the image, checks its width)."""
        try:
            self[index]
        except DataError as error:
            return str(error)
        return None

"""Unpaired image translation in the CycleGAN layout: two folders of images, one per domain."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from vision_kernels.data.errors import DataError
from vision_kernels.data.images import list_images, read_image


def _domain_files(folder: Path) -> list[Path]:
    """The images of one domain folder; DataError naming the folder when it is missing or empty."""
    if not folder.is_dir():
        raise DataError(
            f"domain folder {str(folder)!r} does not exist: the CycleGAN layout is root/<split>A and "
            "root/<split>B (e.g. trainA/ and trainB/)",
            folder,
        )
    files = list_images(folder)
    if not files:
        raise DataError(f"domain folder {str(folder)!r} has no images", folder)
    return files


class UnpairedImages(Dataset):
    """Images of two domains with no correspondence between them (CycleGAN, DiscoGAN)::

        root/<split>A/<image>     e.g. horse2zebra/trainA/n02381460_2.jpg
        root/<split>B/<image>     e.g. horse2zebra/trainB/n02391049_2.jpg

    The length is max(len(A), len(B)), so one epoch shows every image of both domains at least
    once. Item i is (A[i % len(A)], B[order[i % len(B)]]) with `order` a permutation of B drawn
    once from `seed` (None: sorted order). The pairing is fixed (no per-epoch state, so workers,
    resume and DDP need nothing special) and the engine shuffles the indices; the permutation only
    keeps A and B files that happen to share a sort position (e.g. a paired dataset split into two
    folders) from always meeting. The pairing does not matter to the losses, which treat each image
    on its own.

    Items are (A, B), each [C, H, W] float32 in [0, 1]; `channels` forces 1 or 3 channels (use 3
    when a photo domain holds a few grayscale images, or batches will not stack). Missing or empty
    folders are a DataError at construction; an image that does not decode, at read time."""

    def __init__(
        self, root: str | Path, split: str = "train", channels: int | None = None, seed: int | None = 0
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.channels = channels
        self.files_a: list[Path] = _domain_files(self.root / f"{split}A")
        self.files_b: list[Path] = _domain_files(self.root / f"{split}B")
        count_b = len(self.files_b)
        if seed is None:
            self.order_b: list[int] = list(range(count_b))
        else:
            self.order_b = torch.randperm(count_b, generator=torch.Generator().manual_seed(seed)).tolist()

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def pair(self, index: int) -> tuple[Path, Path]:
        """The (A file, B file) of item `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return self.files_a[index % len(self.files_a)], self.files_b[self.order_b[index % len(self.files_b)]]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path_a, path_b = self.pair(index)
        return read_image(path_a, self.channels), read_image(path_b, self.channels)

    def source(self, index: int) -> str:
        """The A file of item `index` (a problem with its B file names that file in the message)."""
        return str(self.pair(index)[0])

    def check(self, index: int) -> str | None:
        """None when both images of item `index` decode, else the problem."""
        try:
            self[index]
        except DataError as error:
            return str(error)
        return None

"""Classification images sorted into one folder per class."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from vision_kernels.data.errors import DataError
from vision_kernels.data.images import list_images, read_image


def split_root(root: str | Path, split: str | None) -> Path:
    """root/<split> when a split is named and that folder exists, else root itself."""
    root = Path(root)
    if split is not None and (root / split).is_dir():
        return root / split
    return root


class ImageFolder(Dataset):
    """Images labelled by the folder they sit in (torchvision's ImageFolder layout)::

        root/<class>/<image>          e.g. root/cat/001.png, root/dog/a/002.jpg
        root/<split>/<class>/<image>  when `split` is given and root/<split> exists

    Class folders are the non-hidden subfolders, sorted by name: the label of an image is its
    class folder's index in `classes`. Images are found recursively by suffix (IMAGE_SUFFIXES);
    other files are ignored. An empty class folder keeps its label; no images at all is a
    DataError. Items are (image [C, H, W] float32 in [0, 1], label: int); `channels` forces 1 or
    3 channels (see read_image)."""

    def __init__(self, root: str | Path, split: str | None = None, channels: int | None = None) -> None:
        self.root = split_root(root, split)
        self.channels = channels
        if not self.root.is_dir():
            raise DataError(f"image folder {str(self.root)!r} does not exist", self.root)
        self.classes: list[str] = sorted(
            entry.name for entry in self.root.iterdir() if entry.is_dir() and not entry.name.startswith(".")
        )
        if not self.classes:
            raise DataError(
                f"image folder {str(self.root)!r} has no class folders (expected root/<class>/<image>)", self.root
            )
        self.class_to_idx = {name: index for index, name in enumerate(self.classes)}
        self.samples: list[tuple[Path, int]] = [
            (path, label) for label, name in enumerate(self.classes) for path in list_images(self.root / name)
        ]
        if not self.samples:
            raise DataError(
                f"image folder {str(self.root)!r} has no images in its class folders {self.classes}", self.root
            )
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return read_image(path, self.channels), label

    def source(self, index: int) -> str:
        """The image file of item `index`."""
        return str(self.samples[index][0])

    def check(self, index: int) -> str | None:
        """None when item `index` decodes, else the problem (the image is fully decoded)."""
        try:
            self[index]
        except DataError as error:
            return str(error)
        return None

"""Semantic segmentation: an image folder and a mask folder paired by file name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vision_kernels.data.errors import DataError
from vision_kernels.data.images import list_images, read_image, read_mask


def check_mask_values(
    mask: torch.Tensor,
    path: str | Path,
    num_classes: int | None,
    ignore_index: int | None,
    classes: Sequence[str] | None = None,
) -> None:
    """DataError unless every value of `mask` is a class index 0..num_classes-1 or `ignore_index`;
    the message names the file, the bad values and the allowed ones (with the class names).

    A value outside the class list is most often a mask saved with colours or with another
    dataset's numbering: training on it would index past the classifier's outputs."""
    if num_classes is None:
        return
    values = torch.unique(mask)
    bad = values[(values < 0) | (values >= num_classes)]
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    if bad.numel():
        shown = ", ".join(str(value) for value in bad[:10].tolist()) + (", ..." if bad.numel() > 10 else "")
        names = f" ({', '.join(classes)})" if classes is not None and len(classes) <= 20 else ""
        ignore = f" (or {ignore_index} = ignore)" if ignore_index is not None else ""
        raise DataError(
            f"mask {str(path)!r} has values [{shown}] not in the class list 0..{num_classes - 1}{names}{ignore}", path
        )


def load_pair(
    image_path: Path,
    mask_path: Path,
    num_classes: int | None,
    ignore_index: int | None,
    channels: int | None = None,
    classes: Sequence[str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image [C, H, W] float32, mask [H, W] int64), both decoded and checked against each other."""
    image = read_image(image_path, channels)
    mask = read_mask(mask_path)
    if tuple(mask.shape) != tuple(image.shape[-2:]):
        (mh, mw), (ih, iw) = mask.shape, image.shape[-2:]
        raise DataError(
            f"mask {str(mask_path)!r} is {mh}x{mw} (HxW) but its image {str(image_path)!r} is {ih}x{iw}", mask_path
        )
    check_mask_values(mask, mask_path, num_classes, ignore_index, classes)
    return image, mask


def _by_name(folder: Path, what: str) -> dict[str, Path]:
    """{relative path without suffix: file} for the images under `folder`."""
    found: dict[str, Path] = {}
    for path in list_images(folder):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in found:
            raise DataError(
                f"{what} {str(path)!r} and {str(found[key])!r} have the same name: cannot tell which to pair", path
            )
        found[key] = path
    return found


def _unpaired_error(what: str, paths: list[Path], other: str, folder: Path) -> DataError:
    first = paths[0]
    more = f" (and {len(paths) - 1} more {what}s without one)" if len(paths) > 1 else ""
    return DataError(
        f"{what} {str(first)!r} has no {other} in {str(folder)!r} (same name, any image suffix){more}", first
    )


class ImageMaskFolder(Dataset):
    """Images and their segmentation masks, paired by name::

        root/images/x.jpg   with   root/masks/x.png
        root/images/a/y.png with   root/masks/a/y.png      (subfolders pair by relative path)

    With `split`: root/<split>/images + root/<split>/masks, or root/images/<split> +
    root/masks/<split>, whichever exists, else (as ImageFolder) root/images + root/masks for
    every split. `images` and `masks` rename the two folders. An image
    and its mask share their path without the suffix (any IMAGE_SUFFIXES suffix on either side).

    Masks hold one class index per pixel ("L", 16-bit or palette "P" PNGs; see read_mask). With
    `classes` (or just `num_classes`) every mask value must be a class index or `ignore_index`,
    checked when the item is read. Items are (image [C, H, W] float32 in [0, 1], mask [H, W]
    int64). An image without a mask or a mask without an image is a DataError at construction;
    a mask of another size than its image, or with values outside the class list, at read time."""

    def __init__(
        self,
        root: str | Path,
        images: str = "images",
        masks: str = "masks",
        classes: Sequence[str] | None = None,
        num_classes: int | None = None,
        ignore_index: int | None = 255,
        split: str | None = None,
    ) -> None:
        if classes is not None:
            if num_classes is not None and num_classes != len(classes):
                raise ValueError(f"num_classes={num_classes} but {len(classes)} classes were named")
            num_classes = len(classes)
        self.classes: list[str] | None = None if classes is None else list(classes)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        root = Path(root)
        if not root.is_dir():  # before the layout checks: "no split 'train'" would hide the real problem
            problem = "is not a folder" if root.exists() else "does not exist"
            expected = f"expected a folder with {images}/ and {masks}/"
            raise DataError(f"dataset root {str(root)!r} {problem}: {expected}", root)
        self.root = root
        self.image_dir, self.mask_dir = root / images, root / masks
        if split is not None:
            if (root / split / images).is_dir():
                self.image_dir, self.mask_dir = root / split / images, root / split / masks
            elif (root / images / split).is_dir():
                self.image_dir, self.mask_dir = root / images / split, root / masks / split
            elif not self.image_dir.is_dir():
                raise DataError(
                    f"dataset {str(root)!r} has no split {split!r}: expected {split}/{images}/, {images}/{split}/ "
                    f"or (one set for every split) {images}/",
                    root,
                )
        image_files = _by_name(self.image_dir, "image")
        mask_files = _by_name(self.mask_dir, "mask")
        lonely_images = [image_files[key] for key in sorted(image_files.keys() - mask_files.keys())]
        if lonely_images:
            raise _unpaired_error("image", lonely_images, "mask", self.mask_dir)
        lonely_masks = [mask_files[key] for key in sorted(mask_files.keys() - image_files.keys())]
        if lonely_masks:
            raise _unpaired_error("mask", lonely_masks, "image", self.image_dir)
        if not image_files:
            raise DataError(f"image folder {str(self.image_dir)!r} has no images", self.image_dir)
        self.samples: list[tuple[Path, Path]] = [(image_files[key], mask_files[key]) for key in sorted(image_files)]

    def expect_classes(self, num_classes: int, ignore_index: int | None = 255) -> None:
        """For whoever knows the model (a family, the engine): its masks must hold class indices
        0..num_classes-1 or `ignore_index`. Then each mask is checked when read, so a bad one fails
        naming its file, its values and the allowed ones, instead of deep inside the loss. Classes
        the dataset was given must number the same."""
        if self.num_classes is not None and self.num_classes != num_classes:
            raise DataError(
                f"dataset {str(self.root)!r} has {self.num_classes} classes but the model predicts {num_classes}",
                self.root,
            )
        self.num_classes, self.ignore_index = num_classes, ignore_index

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.samples[index]
        return load_pair(image_path, mask_path, self.num_classes, self.ignore_index, classes=self.classes)

    def source(self, index: int) -> str:
        """The image file of item `index`."""
        return str(self.samples[index][0])

    def check(self, index: int) -> str | None:
        """None when item `index` is usable, else the problem (decodes both files, checks size and values)."""
        try:
            self[index]
        except DataError as error:
            return str(error)
        return None

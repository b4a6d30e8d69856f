"""Real data that exists without a network: it ships with installed packages.

    digits          scikit-learn's 1797 handwritten 8x8 digits (pip install scikit-learn)
    opencv-digits   5000 handwritten 20x20 digits, 500 per class in order, from Debian's opencv-doc
                    (examples/data/digits.png; `make data` or `sudo apt-get install opencv-doc`)
    fashion-mnist   Zalando's 70000 28x28 clothing images, the idx files of Debian's
                    dataset-fashion-mnist (/usr/share/datasets/fashion-mnist; `make data`);
                    val is held out of the training files, test is the official test set
    photos          scikit-image's photos (chelsea, astronaut, coffee, rocket, camera, coins, ...)
    textures        scikit-image's textures (grass, gravel, brick)
    horse           scikit-image's horse silhouette as a segmentation task: the horse filled with
                    one texture on a background of another, varied per item (crop, flip, textures)

A dataset whose package is missing fails with the command that installs it. Splits are fixed
(they never depend on the machine): see each loader.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from vision_kernels.data.errors import DataError

FASHION_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot")  # fmt: skip
DIGIT_CLASSES = tuple(str(d) for d in range(10))
OPENCV_DIGITS = Path("/usr/share/doc/opencv-doc/examples/data/digits.png")
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "rocket")
TEXTURES = ("brick", "grass", "gravel")
MAKE_DATA = "`make data` (or: sudo apt-get install {package})"


class LabelledImages(TensorDataset):
    """(image, label) items from two tensors, with the class names."""

    def __init__(self, images: Tensor, labels: Tensor, classes: Sequence[str]) -> None:
        super().__init__(images, labels)
        self.classes = list(classes)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = super().__getitem__(index)
        return image, int(label)


def _resize(images: Tensor, size: int | None) -> Tensor:
    if size is None or images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def _require(module: str, package: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise DataError(f"this dataset needs the Python package {package}: pip install {package}")


def _check_split(name: str, split: str, splits: Sequence[str] = ("train", "val")) -> None:
    if split not in splits:
        raise ValueError(f"dataset {name!r} has splits {', '.join(splits)}; got split {split!r}")


# Fashion-MNIST and MNIST ship train and test files only: val is carved out of the training images
# (every 12th of each class: 5000 of Fashion-MNIST's 60000, 500 per class) so that picking the best
# checkpoint never looks at the test set.
IDX_VAL_EVERY = 12


def held_out(labels: Tensor, split: str, every: int = 5) -> Tensor:
    """Indices of a fixed, class-balanced split: within each class, in file order, every
    `every`-th item (the every-th, 2*every-th, ...) is val and the rest train (every=5: 80/20)."""
    rank = torch.zeros_like(labels)
    for c in labels.unique():
        where = (labels == c).nonzero().flatten()
        rank[where] = torch.arange(len(where))
    val = rank % every == every - 1
    return (val if split == "val" else ~val).nonzero().flatten()


def digits(split: str = "train", size: int | None = None) -> LabelledImages:
    """scikit-learn's digits: [1, 8, 8] images (16 grey levels scaled to [0, 1]; `size` resizes),
    labels 0-9; val is every fifth image of each class (355), train the rest (1442)."""
    _check_split("digits", split)
    _require("sklearn", "scikit-learn")
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = torch.from_numpy(raw.images).float().div(16.0).unsqueeze(1)
    labels = torch.from_numpy(raw.target).long()
    keep = held_out(labels, split)
    return LabelledImages(_resize(images[keep], size), labels[keep], DIGIT_CLASSES)


def opencv_digits_file(path: str | None = None) -> Path:
    """Where opencv-digits reads digits.png: `path`, else $VK_OPENCV_DIGITS, else Debian's file."""
    return Path(path or os.environ.get("VK_OPENCV_DIGITS", OPENCV_DIGITS))


def opencv_digits(split: str = "train", size: int | None = None, path: str | None = None) -> LabelledImages:
    """OpenCV's digits.png: 50 rows x 100 columns of 20x20 digits, five rows per class in order
    (500 each); [1, 20, 20] images, val every fifth of each class (1000), train the rest (4000)."""
    _check_split("opencv-digits", split)
    file = opencv_digits_file(path)
    if not file.exists():
        raise DataError(
            f"opencv-digits: {str(file)!r} does not exist; install it with {MAKE_DATA.format(package='opencv-doc')}, "
            "or give its path as data.options.path",
            file,
        )
    from vision_kernels.data.images import read_image

    sheet = read_image(file, channels=1)[0]  # [1000, 2000]
    if sheet.shape != (1000, 2000):
        raise DataError(f"opencv-digits: {str(file)!r} is {tuple(sheet.shape)}, expected 1000x2000 pixels", file)
    cells = sheet.reshape(50, 20, 100, 20).permute(0, 2, 1, 3).reshape(5000, 1, 20, 20)
    labels = torch.arange(10).repeat_interleave(500)
    keep = held_out(labels, split)
    return LabelledImages(_resize(cells[keep], size), labels[keep], DIGIT_CLASSES)


def fashion_mnist(split: str = "train", root: str | None = None, size: int | None = None) -> LabelledImages:
    """Fashion-MNIST's idx files, [1, 28, 28] images: val is every 12th training image of each
    class (5000, 500 per class), train the other 55000, test the official test set (10000)."""
    _check_split("fashion-mnist", split, ("train", "val", "test"))
    directory = Path(root or os.environ.get("VK_FASHION_MNIST", FASHION_ROOT))
    prefix = "t10k" if split == "test" else "train"
    files = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        found = [
            directory / f"{prefix}-{kind}{ext}" for ext in ("", ".gz") if (directory / f"{prefix}-{kind}{ext}").exists()
        ]
        if not found:
            raise DataError(
                f"fashion-mnist: no {prefix}-{kind}[.gz] in {str(directory)!r}; install it with "
                f"{MAKE_DATA.format(package='dataset-fashion-mnist')}, or give the folder as data.options.root",
                directory,
            )
        files.append(found[0])
    from vision_kernels.data.formats.idx import read_idx

    images, labels = read_idx(files[0]), read_idx(files[1])
    if len(images) != len(labels):
        raise DataError(
            f"fashion-mnist: {len(images)} images but {len(labels)} labels in {str(directory)!r}", directory
        )
    labels = labels.long()
    keep = slice(None) if split == "test" else held_out(labels, split, IDX_VAL_EVERY)
    return LabelledImages(_resize(images[keep].float().div(255).unsqueeze(1), size), labels[keep], FASHION_CLASSES)


def _skimage(name: str) -> Tensor:
    """A scikit-image data image as float [C, H, W] in [0, 1]."""
    _require("skimage", "scikit-image")
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    tensor = torch.from_numpy(array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0))
    return tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1)[:3]


class NamedImages(Dataset):
    """scikit-image's images: items (image, index of its name); `.classes` are the names."""

    def __init__(self, names: Sequence[str], size: int | None) -> None:
        self.classes = list(names)
        self.size = size

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = _skimage(self.classes[index])
        if self.size is not None:  # the centre square, resized: photos differ in aspect
            side = min(image.shape[-2:])
            top, left = (image.shape[-2] - side) // 2, (image.shape[-1] - side) // 2
            image = _resize(image[None, :, top : top + side, left : left + side], self.size)[0]
        return image, index


def photos(split: str = "train", names: Sequence[str] = PHOTOS, size: int | None = None) -> NamedImages:
    _check_split("photos", split, ("train",))
    unknown = sorted(set(names) - set(PHOTOS))
    if unknown:
        raise ValueError(f"photos: unknown names {unknown}; available: {', '.join(PHOTOS)}")
    return NamedImages(names, size)


def textures(split: str = "train", names: Sequence[str] = TEXTURES, size: int | None = None) -> NamedImages:
    _check_split("textures", split, ("train",))
    unknown = sorted(set(names) - set(TEXTURES))
    if unknown:
        raise ValueError(f"textures: unknown names {unknown}; available: {', '.join(TEXTURES)}")
    return NamedImages(names, size)


class Horse(Dataset):
    """scikit-image's horse silhouette (328x400) as segmentation: each item fills the horse with one
    texture and the background with another (textures, their offsets, a random crop of `size`
    around the horse and a flip vary with seed, split and index); mask 1 = horse, 0 = background."""

    classes = ["background", "horse"]

    def __init__(self, split: str = "train", count: int = 100, size: int = 128, seed: int = 0) -> None:
        _check_split("horse", split)
        _require("skimage", "scikit-image")
        import skimage.data

        self.count, self.size, self.seed, self.split = count, size, seed, split
        self.mask = torch.from_numpy(~skimage.data.horse()).long()  # the silhouette is dark on white
        self.textures = [_skimage(name)[0] for name in TEXTURES]

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        # zlib.crc32, not hash(): Python salts str hashes per process, and items must not change.
        g = torch.Generator().manual_seed(zlib.crc32(f"horse:{self.seed}:{self.split}:{index}".encode()))
        fg, bg = torch.randperm(len(self.textures), generator=g)[:2].tolist()
        h, w = self.mask.shape

        def patch(texture: Tensor) -> Tensor:
            top = int(torch.randint(0, texture.shape[0] - h + 1, (), generator=g))
            left = int(torch.randint(0, texture.shape[1] - w + 1, (), generator=g))
            return texture[top : top + h, left : left + w]

        tint = torch.rand(2, 3, generator=g) * 0.6 + 0.4  # a colour per region
        image = torch.where(self.mask.bool(), patch(self.textures[fg]), patch(self.textures[bg]))
        colour = torch.where(self.mask.bool()[None], tint[0, :, None, None], tint[1, :, None, None])
        image = (image[None] * colour).clamp(0, 1)
        scale = float(torch.empty(()).uniform_(0.6, 1.0, generator=g))
        side = int(min(h, w) * scale)
        top = int(torch.randint(0, h - side + 1, (), generator=g))
        left = int(torch.randint(0, w - side + 1, (), generator=g))
        image, mask = image[:, top : top + side, left : left + side], self.mask[top : top + side, left : left + side]
        if bool(torch.rand((), generator=g) < 0.5):
            image, mask = image.flip(-1), mask.flip(-1)
        image = _resize(image[None], self.size)[0]
        mask = F.interpolate(mask[None, None].float(), size=(self.size, self.size), mode="nearest")[0, 0].long()
        return image, mask

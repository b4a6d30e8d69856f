"""Image and mask files to tensors, with one error (DataError naming the file) for every way a file
can be unusable: missing, not an image, truncated, or (for masks) not one class index per pixel."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vision_kernels.data.errors import DataError

# Suffixes the folder-based loaders treat as images (compared lower-cased).
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pbm",
)

# Modes PIL opens 16-bit grayscale PNGs as ("I" in older Pillow releases): scaled by 65535.
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
# Modes with one channel of interest (alpha, if any, is dropped); everything else becomes RGB.
_GRAY_MODES = {"1", "L", "LA", "La"}
# Mask modes: one class index per pixel (a palette image's pixels are its palette indices).
_MASK_MODES = {"P", "L", "1", *_SIXTEEN_BIT_MODES}
# What a damaged file can make PIL raise during open() or load(), besides OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)

_T = TypeVar("_T")


def _failure_reason(error: BaseException) -> str:
    """A short reason that does not repeat the path (the message names it already)."""
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "it is a directory"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, UnidentifiedImageError):
        return "not an image format PIL recognizes"
    return str(error) or type(error).__name__


def _decode(path: str | Path, what: str, convert: Callable[[Image.Image], _T]) -> _T:
    """Open and fully decode `path`, then `convert` the picture; decoding failures become DataError.

    open() reads only the header: load() decodes every pixel, so a truncated file fails here and
    not later inside a DataLoader worker."""
    try:
        with Image.open(path) as picture:
            picture.load()
            return convert(picture)
    except DataError:
        raise
    except _DECODE_ERRORS as error:
        raise DataError(f"{what} {str(path)!r} is not a readable image: {_failure_reason(error)}", path) from error


def _image_tensor(picture: Image.Image, channels: int | None) -> torch.Tensor:
    """[C, H, W] float32 in [0, 1] from a decoded PIL image (see read_image for the channel rules)."""
    mode = picture.mode
    if mode in _SIXTEEN_BIT_MODES:
        pixels = np.asarray(picture, dtype=np.float32) / 65535.0
    else:
        if mode in ("P", "PA"):
            picture = picture.convert("RGBA")  # straight to RGB warns about a transparent palette entry
        gray = mode in _GRAY_MODES or channels == 1
        picture = picture.convert("L" if gray else "RGB")
        pixels = np.asarray(picture, dtype=np.float32) / 255.0
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if channels == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).clamp_(0.0, 1.0)


def read_image(path: str | Path, channels: int | None = None) -> torch.Tensor:
    """Read an image file as a [C, H, W] float32 tensor in [0, 1].

    Grayscale ("L", "1", "LA") gives 1 channel, 16-bit grayscale ("I;16", "I") 1 channel scaled by
    65535, and colour ("RGB", "RGBA", "P", "CMYK", ...) 3 channels (alpha is dropped). `channels`
    forces 1 (PIL's luma conversion) or 3 (gray repeated, 16-bit precision kept). A missing,
    truncated or non-image file raises DataError naming the file."""
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
    return _decode(path, "image", lambda picture: _image_tensor(picture, channels))


def _mask_tensor(picture: Image.Image, path: str | Path) -> torch.Tensor:
    if picture.mode not in _MASK_MODES:
        raise DataError(
            f"mask {str(path)!r} has mode {picture.mode!r}: a mask must be single-channel (L, I;16) or palette (P), "
            "one class index per pixel",
            path,
        )
    return torch.from_numpy(np.asarray(picture).astype(np.int64))


def read_mask(path: str | Path) -> torch.Tensor:
    """Read a segmentation mask as an int64 [H, W] tensor of class indices.

    A palette ("P") PNG gives its palette indices (VOC's SegmentationClass files: the colours are
    only for viewing), "L" its values, 16-bit ("I;16") its values. An RGB mask raises DataError:
    colours are not class indices, and guessing a colour table would silently mislabel pixels."""
    return _decode(path, "mask", lambda picture: _mask_tensor(picture, path))


def list_images(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """The image files (by IMAGE_SUFFIXES, any case) under `folder`, sorted; hidden names skipped.

    Raises DataError when `folder` is not a directory."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"folder {str(folder)!r} does not exist", folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        path
        for path in found
        if path.suffix.lower() in IMAGE_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )

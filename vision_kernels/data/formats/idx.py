"""The idx format of MNIST and Fashion-MNIST: one n-dimensional array per file, optionally gzipped.

Layout: 2 zero bytes, a type code, the number of dimensions, each dimension as a big-endian
uint32, then the values big-endian in row-major order. Files are read whole (the largest, MNIST's
training images, is 47 MB) so that a short file is reported before any item is served."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vision_kernels.data.errors import DataError

# Type code -> (big-endian numpy dtype of the file, name in the idx spec).
_CODES: dict[int, tuple[str, str]] = {
    0x08: (">u1", "unsigned byte"),
    0x09: (">i1", "signed byte"),
    0x0B: (">i2", "short"),
    0x0C: (">i4", "int"),
    0x0D: (">f4", "float"),
    0x0E: (">f8", "double"),
}
_TORCH_CODES: dict[torch.dtype, int] = {
    torch.uint8: 0x08,
    torch.int8: 0x09,
    torch.int16: 0x0B,
    torch.int32: 0x0C,
    torch.float32: 0x0D,
    torch.float64: 0x0E,
}
_GZIP_MAGIC = b"\x1f\x8b"
DIGIT_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic (the name may not say .gz:
    some mirrors serve gzipped files under the plain names)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"idx file {str(path)!r} does not exist", path) from None
    except IsADirectoryError:
        raise DataError(f"idx file {str(path)!r} is a directory", path) from None
    except OSError as error:
        raise DataError(f"idx file {str(path)!r} is not readable: {error.strerror or error}", path) from error
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"idx file {str(path)!r} is gzip-compressed but does not decompress: {error}", path) from error


def read_idx(path: str | Path) -> torch.Tensor:
    """The array of an idx file (gzipped or not) as a tensor of the file's type: uint8, int8,
    int16, int32, float32 or float64, shape = the file's dimensions.

    A missing file, a bad magic number or type code, and data shorter or longer than the
    dimensions say (a truncated download) raise DataError naming the file."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"idx file {str(path)!r} is truncated: expected a 4-byte header, got {len(data)} bytes", path)
    zero0, zero1, code, ndim = data[:4]
    if zero0 != 0 or zero1 != 0 or code not in _CODES:
        codes = ", ".join(f"0x{known:02X}" for known in _CODES)
        raise DataError(
            f"idx file {str(path)!r} has a bad magic number 0x{data[:4].hex().upper()}: expected 2 zero bytes, "
            f"a type code ({codes}) and the number of dimensions",
            path,
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"idx file {str(path)!r} is truncated: expected a {header}-byte header for {ndim} dimensions, "
            f"got {len(data)} bytes",
            path,
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_CODES[code][0])
    expected = math.prod(shape) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        kind = "truncated" if got < expected else "longer than its header says"
        raise DataError(
            f"idx file {str(path)!r} is {kind}: expected {expected} bytes of data for shape {list(shape)} "
            f"of {_CODES[code][1]}, got {got}",
            path,
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    # astype to native byte order copies, which also makes the array writable for torch.
    return torch.from_numpy(values.astype(dtype.newbyteorder("=")))


def write_idx(path: str | Path, tensor: torch.Tensor) -> None:
    """Write `tensor` as an idx file, gzip-compressed when the name ends with .gz.

    The dtype must be one idx can hold: uint8, int8, int16, int32, float32 or float64."""
    if tensor.dtype not in _TORCH_CODES:
        supported = ", ".join(str(dtype).removeprefix("torch.") for dtype in _TORCH_CODES)
        raise ValueError(f"write_idx: tensor dtype must be one of {supported}, got {tensor.dtype}")
    if tensor.dim() > 255:
        raise ValueError(f"write_idx: an idx file holds at most 255 dimensions, got {tensor.dim()}")
    code = _TORCH_CODES[tensor.dtype]
    values = tensor.detach().cpu().contiguous().numpy().astype(_CODES[code][0])
    data = bytes([0, 0, code, tensor.dim()]) + struct.pack(f">{tensor.dim()}I", *tensor.shape) + values.tobytes()
    path = Path(path)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)  # mtime=0: the same tensor gives the same bytes
    path.write_bytes(data)


class MnistIdx(Dataset):
    """MNIST-style images and labels from two idx files (gzipped or not), e.g.
    train-images-idx3-ubyte[.gz] ([N, H, W] unsigned bytes) + train-labels-idx1-ubyte[.gz] ([N]).

    Items are (image [1, H, W] float32 in [0, 1], label: int). Images of unsigned bytes are divided
    by 255; float images are taken as already in [0, 1]. `classes` names the labels (the digits
    "0".."9" by default; pass e.g. Fashion-MNIST's or EMNIST's names). Both files are read and
    checked at construction: different counts, a label outside `classes` or images that are not
    [N, H, W] are a DataError then, so items never fail later."""

    def __init__(self, images: str | Path, labels: str | Path, classes: Sequence[str] | None = None) -> None:
        self.images_path, self.labels_path = Path(images), Path(labels)
        self.classes: list[str] = list(DIGIT_CLASSES if classes is None else classes)
        self.images = read_idx(self.images_path)
        self.labels = read_idx(self.labels_path)
        if self.images.dim() != 3:
            raise DataError(
                f"idx file {str(self.images_path)!r} holds an array of shape {list(self.images.shape)}: "
                "expected images [N, H, W]",
                self.images_path,
            )
        if self.images.dtype not in (torch.uint8, torch.float32, torch.float64):
            raise DataError(
                f"idx file {str(self.images_path)!r} holds {self.images.dtype} images: expected unsigned bytes "
                "(0..255) or floats (0..1)",
                self.images_path,
            )
        if self.labels.dim() != 1 or self.labels.is_floating_point():
            raise DataError(
                f"idx file {str(self.labels_path)!r} holds {self.labels.dtype} of shape {list(self.labels.shape)}: "
                "expected integer labels [N]",
                self.labels_path,
            )
        if len(self.images) != len(self.labels):
            raise DataError(
                f"idx files {str(self.images_path)!r} and {str(self.labels_path)!r} do not match: "
                f"{len(self.images)} images but {len(self.labels)} labels",
                self.labels_path,
            )
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)):
            raise DataError(
                f"idx file {str(self.labels_path)!r} has labels {int(self.labels.min())}..{int(self.labels.max())}, "
                f"expected 0..{len(self.classes) - 1} for the {len(self.classes)} classes",
                self.labels_path,
            )
        self.labels = self.labels.long()
        self.targets: list[int] = self.labels.tolist()

    def subset(self, indices: torch.Tensor) -> MnistIdx:
        """The items at `indices` (a split carved out of the files), with the same files and classes."""
        import copy

        part = copy.copy(self)
        part.images, part.labels = self.images[indices], self.labels[indices]
        part.targets = part.labels.tolist()
        return part

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].unsqueeze(0)
        if image.dtype == torch.uint8:
            return image.float().div_(255.0), self.targets[index]
        return image.to(torch.float32, copy=True), self.targets[index]  # a copy: callers may edit it in place

    def source(self, index: int) -> str:
        """The images file (every item of it was checked at construction)."""
        return str(self.images_path)

    def check(self, index: int) -> str | None:
        """Always None: both files were read and checked whole at construction."""
        return None

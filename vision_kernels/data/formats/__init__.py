"""One torch Dataset per dataset file layout. Items are (image float32 [C, H, W] in [0, 1], target);
every dataset has `source(index)` (the file of an item) and `check(index)` (its problem or None,
for SkipBad), and bad data raises DataError naming the file and the problem."""

from __future__ import annotations

from vision_kernels.data.formats.coco import CocoDetection
from vision_kernels.data.formats.idx import MnistIdx, read_idx, write_idx
from vision_kernels.data.formats.imagefolder import ImageFolder
from vision_kernels.data.formats.masks import ImageMaskFolder
from vision_kernels.data.formats.paired import PairedImages
from vision_kernels.data.formats.unpaired import UnpairedImages
from vision_kernels.data.formats.voc import VOCDetection, VOCSegmentation

__all__ = [
    "CocoDetection",
    "ImageFolder",
    "ImageMaskFolder",
    "MnistIdx",
    "PairedImages",
    "UnpairedImages",
    "VOCDetection",
    "VOCSegmentation",
    "read_idx",
    "write_idx",
]

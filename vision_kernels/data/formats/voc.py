"""PASCAL VOC: segmentation (palette PNG masks) and detection (XML boxes) over one image folder."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from vision_kernels.data.collate import detection_collate
from vision_kernels.data.errors import DataError
from vision_kernels.data.formats.masks import load_pair
from vision_kernels.data.images import read_image

# The 20 object classes, in VOC's order (detection labels index this tuple).
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
# Segmentation mask values: 0 is background, 1..20 the classes above, 255 the ignored borders.
VOC_SEGMENTATION_CLASSES: tuple[str, ...] = ("background", *VOC_CLASSES)
VOC_IGNORE_INDEX = 255


def _read_ids(root: Path, task: str, split: str) -> list[str]:
    """The image ids listed in root/ImageSets/<task>/<split>.txt (first token of each line)."""
    listing = root / "ImageSets" / task / f"{split}.txt"
    try:
        lines = listing.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(
            f"split list {str(listing)!r} does not exist: root must be a VOC folder with JPEGImages/ and ImageSets/",
            listing,
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"split list {str(listing)!r} is not readable: {error}", listing) from error
    ids = [line.split()[0] for line in lines if line.strip()]
    if not ids:
        raise DataError(f"split list {str(listing)!r} lists no images", listing)
    return ids


def _require_files(paths: list[Path], what: str, listing: str) -> None:
    """DataError naming the first of `paths` that does not exist (and how many more are missing)."""
    missing = [path for path in paths if not path.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{what} {str(missing[0])!r} listed in {listing} does not exist{more}", missing[0])


class VOCSegmentation(Dataset):
    """PASCAL VOC semantic segmentation; `root` is the VOC2012-style folder::

        root/ImageSets/Segmentation/<split>.txt   one image id per line
        root/JPEGImages/<id>.jpg
        root/SegmentationClass/<id>.png           palette PNG: pixel = class index (0..20, 255 = ignore)

    Items are (image [3, H, W] float32 in [0, 1], mask [H, W] int64); `classes` holds the 21
    names, background first. A listed id without its image or mask is a DataError at construction;
    a mask of another size than its image, or with values outside 0..20 and 255, at read time.
    `channels` (3 by default, as VOC models expect) is passed to read_image."""

    def __init__(self, root: str | Path, split: str = "train", *, channels: int | None = 3) -> None:
        self.root = Path(root)
        self.split = split
        self.channels = channels
        self.classes: list[str] = list(VOC_SEGMENTATION_CLASSES)
        self.num_classes = len(self.classes)
        self.ignore_index = VOC_IGNORE_INDEX
        self.ids = _read_ids(self.root, "Segmentation", split)
        listing = f"ImageSets/Segmentation/{split}.txt"
        self.images = [self.root / "JPEGImages" / f"{image_id}.jpg" for image_id in self.ids]
        self.masks = [self.root / "SegmentationClass" / f"{image_id}.png" for image_id in self.ids]
        _require_files(self.images, "image", listing)
        _require_files(self.masks, "mask", listing)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return load_pair(self.images[index], self.masks[index], self.num_classes, self.ignore_index, self.channels)

    def source(self, index: int) -> str:
        """The image file of item `index`."""
        return str(self.images[index])

    def check(self, index: int) -> str | None:
        """None when item `index` is usable, else the problem (decodes both files, checks size and values)."""
        try:
            self[index]
        except DataError as error:
            return str(error)
        return None


def _text(element: ElementTree.Element, tag: str, path: Path, where: str) -> str:
    child = element.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DataError(f"annotation {str(path)!r} has no <{tag}> in {where}", path)
    return child.text.strip()


def _number(element: ElementTree.Element, tag: str, path: Path, where: str) -> float:
    text = _text(element, tag, path, where)
    try:
        return float(text)
    except ValueError:
        raise DataError(f"annotation {str(path)!r} has <{tag}>{text}</{tag}> in {where}: not a number", path) from None


def parse_voc_xml(path: Path, class_to_idx: dict[str, int]) -> dict[str, Any]:
    """{"boxes", "labels", "difficult", "size": (width, height)} from one VOC annotation file.

    VOC pixel coordinates are 1-based and inclusive: a box becomes 0-based xyxy as torchvision's
    references do (xmin - 1, ymin - 1, xmax, ymax), and must lie inside the <size> image."""
    try:
        annotation = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise DataError(f"annotation {str(path)!r} is not valid XML: {error}", path) from error
    except OSError as error:
        raise DataError(f"annotation {str(path)!r} is not readable: {error.strerror or error}", path) from error
    size = annotation.find("size")
    if size is None:
        raise DataError(f"annotation {str(path)!r} has no <size>", path)
    width, height = (_number(size, tag, path, "<size>") for tag in ("width", "height"))
    if width <= 0 or height <= 0:
        raise DataError(f"annotation {str(path)!r} has an empty image size {width:g}x{height:g}", path)
    boxes, labels, difficult = [], [], []
    for number, obj in enumerate(annotation.findall("object"), start=1):
        where = f"<object> {number}"
        name = _text(obj, "name", path, where)
        if name not in class_to_idx:
            raise DataError(
                f"annotation {str(path)!r} has an object of class {name!r} ({where}), not one of the "
                f"{len(class_to_idx)} classes {sorted(class_to_idx)}",
                path,
            )
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise DataError(f"annotation {str(path)!r} has no <bndbox> in {where}", path)
        xmin, ymin, xmax, ymax = (_number(bndbox, tag, path, where) for tag in ("xmin", "ymin", "xmax", "ymax"))
        box = (xmin - 1.0, ymin - 1.0, xmax, ymax)
        if not (0.0 <= box[0] < box[2] <= width and 0.0 <= box[1] < box[3] <= height):
            raise DataError(
                f"annotation {str(path)!r}: box xmin={xmin:g} ymin={ymin:g} xmax={xmax:g} ymax={ymax:g} of {where} "
                f"({name!r}) is empty or outside the {width:g}x{height:g} image (VOC boxes are 1-based: "
                "1 <= xmin <= xmax <= width)",
                path,
            )
        flag = obj.find("difficult")
        difficult.append(flag is not None and (flag.text or "0").strip() not in ("0", ""))
        boxes.append(box)
        labels.append(class_to_idx[name])
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "difficult": torch.tensor(difficult, dtype=torch.bool),
        "size": (int(width), int(height)),
    }


class VOCDetection(Dataset):
    """PASCAL VOC object detection; `root` is the VOC2007/VOC2012-style folder::

        root/ImageSets/Main/<split>.txt   one image id per line
        root/JPEGImages/<id>.jpg
        root/Annotations/<id>.xml         <size><width/><height/></size> and per object <name>,
                                          <difficult> (0/1) and <bndbox> xmin ymin xmax ymax (1-based)

    Items are (image [3, H, W] float32 in [0, 1], target) with target {"boxes": float32 [N, 4]
    0-based xyxy, "labels": int64 [N] indices into `classes`, "difficult": bool [N], "image_id":
    the id string}. Every annotation is parsed at construction: a listed id without its image or
    XML, malformed XML, a class not in `classes`, or a box outside its <size> is a DataError then;
    an image whose size differs from its <size>, or that does not decode, at read time. Use
    `collate_fn` (detection_collate) in the DataLoader."""

    collate_fn = staticmethod(detection_collate)

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        classes: Sequence[str] = VOC_CLASSES,
        *,
        channels: int | None = 3,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.channels = channels
        self.classes: list[str] = list(classes)
        class_to_idx = {name: index for index, name in enumerate(self.classes)}
        self.ids = _read_ids(self.root, "Main", split)
        listing = f"ImageSets/Main/{split}.txt"
        self.images = [self.root / "JPEGImages" / f"{image_id}.jpg" for image_id in self.ids]
        self.annotations = [self.root / "Annotations" / f"{image_id}.xml" for image_id in self.ids]
        _require_files(self.images, "image", listing)
        _require_files(self.annotations, "annotation", listing)
        self.targets = [parse_voc_xml(path, class_to_idx) for path in self.annotations]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        image = read_image(self.images[index], self.channels)
        parsed = self.targets[index]
        width, height = parsed["size"]
        if (image.shape[-1], image.shape[-2]) != (width, height):
            raise DataError(
                f"image {str(self.images[index])!r} is {image.shape[-1]}x{image.shape[-2]} (WxH) but its annotation "
                f"{str(self.annotations[index])!r} says {width}x{height}",
                self.images[index],
            )
        target = {
            "boxes": parsed["boxes"].clone(),
            "labels": parsed["labels"].clone(),
            "difficult": parsed["difficult"].clone(),
            "image_id": self.ids[index],
        }
        return image, target

    def source(self, index: int) -> str:
        """The image file of item `index`."""
        return str(self.images[index])

    def check(self, index: int) -> str | None:
        """None when item `index` is usable, else the problem (decodes the image, checks its size)."""
        try:
            self[index]
        except DataError as error:
            return str(error)
        return None

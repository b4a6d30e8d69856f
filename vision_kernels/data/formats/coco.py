"""COCO-style detection (and instance masks): one JSON annotation file over a folder of images."""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vision_kernels.data.collate import detection_collate
from vision_kernels.data.errors import DataError
from vision_kernels.data.images import read_image

# Boxes may overhang the image by this many pixels (rounding in exported annotations), and are
# then clipped to it; further out is a DataError.
BOX_TOLERANCE = 1.0


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"annotation file {str(path)!r} does not exist", path) from None
    except json.JSONDecodeError as error:
        raise DataError(f"annotation file {str(path)!r} is not valid JSON: {error}", path) from error
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"annotation file {str(path)!r} is not readable: {error}", path) from error
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f'annotation file {str(path)!r} is not COCO: it needs an "images" list', path)
    if not isinstance(data.get("categories"), list):
        raise DataError(f'annotation file {str(path)!r} is not COCO: it needs a "categories" list', path)
    if not isinstance(data.get("annotations", []), list):
        raise DataError(f'annotation file {str(path)!r}: "annotations" must be a list', path)
    return data


def _field(entry: Any, key: str, kind: str, path: Path, where: str) -> Any:
    """entry[key], checked to be an int ("int"), a positive int ("size"), a str ("str") or 4 numbers ("box")."""
    value = entry.get(key) if isinstance(entry, dict) else None
    ok = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "size": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "str": lambda v: isinstance(v, str) and v != "",
        "box": lambda v: isinstance(v, list) and len(v) == 4 and all(_is_number(x) for x in v),
    }[kind](value)
    if not ok:
        expected = {"int": "an integer", "size": "a positive integer", "str": "a string", "box": "[x, y, w, h]"}[kind]
        raise DataError(f"annotation file {str(path)!r}: {where} has {key}={value!r}, expected {expected}", path)
    return value


def _compressed_rle_counts(counts: str) -> list[int] | None:
    """The run lengths of a compressed RLE string (pycocotools' rleFrString), None if malformed.

    pycocotools.mask.decode does not check that the runs cover the image: a truncated or corrupt
    string decodes to a mask of uninitialised memory. Decoding the runs here lets the caller check
    their sum first. Each run is 5-bit groups in chars 48..111 (0x20 = more groups follow, 0x10 of
    the last group = negative); from the third run on, the value is a delta to the run two back."""
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                return None  # the last run stops in the middle
            group = ord(counts[position]) - 48
            if not 0 <= group < 64:
                return None
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position += 1
            shift += 5
            if not more and group & 0x10:
                value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


class CocoDetection(Dataset):
    """Object detection (optionally instance segmentation) in the COCO format::

        images_dir/<file_name>          for every entry of the JSON's "images"
        annotation_file (JSON): {"images": [{"id", "file_name", "width", "height"}],
                                 "annotations": [{"id", "image_id", "category_id", "bbox": [x, y, w, h],
                                                  "iscrowd": 0|1, "area", "segmentation"}],
                                 "categories": [{"id", "name"}]}

    "segmentation" is polygons ([[x1, y1, x2, y2, ...], ...]), uncompressed RLE ({"counts": [ints],
    "size": [h, w]}) or compressed RLE ({"counts": "string", ...}), decoded with pycocotools.mask
    as COCO.annToMask does (pycocotools is needed only with `masks=True`).

    Items are (image [3, H, W] float32 in [0, 1], target) for every image sorted by id (images
    without annotations included), target {"boxes": float32 [N, 4] xyxy (from xywh), "labels": int64
    [N] contiguous indices 0..K-1 of the categories sorted by id (`classes` names them,
    `category_ids` maps back), "iscrowd": int64 [N], "area": float32 [N], "image_id": int} plus
    "masks": bool [N, H, W] with `masks=True`. Boxes may overhang the image by BOX_TOLERANCE px and
    are clipped; boxes left with no width or height are dropped (as torchvision's references do),
    counted in `dropped_boxes`.

    At construction: malformed JSON, a missing image file, an annotation of an unknown image or
    category, and a box outside its image (by the JSON's width/height) are DataErrors. At read time:
    an undecodable image, an image of another size than the JSON says, and an undecodable
    segmentation. `channels` (3 by default: COCO has some grayscale photos) goes to read_image."""

    collate_fn = staticmethod(detection_collate)

    def __init__(
        self, images_dir: str | Path, annotation_file: str | Path, masks: bool = False, *, channels: int | None = 3
    ) -> None:
        self.images_dir = Path(images_dir)
        self.annotation_file = path = Path(annotation_file)
        self.masks = masks
        self.channels = channels
        if masks:
            try:
                from pycocotools import mask  # noqa: F401
            except ImportError as error:
                raise ImportError("CocoDetection(masks=True) needs pycocotools: pip install pycocotools") from error
        data = _load_json(path)

        categories: dict[int, str] = {}
        for entry in data["categories"]:
            category_id = _field(entry, "id", "int", path, f"category {entry!r}")
            if category_id in categories:
                raise DataError(f"annotation file {str(path)!r} has two categories with id {category_id}", path)
            categories[category_id] = _field(entry, "name", "str", path, f"category {category_id}")
        self.category_ids: list[int] = sorted(categories)
        self.classes: list[str] = [categories[category_id] for category_id in self.category_ids]
        label_of = {category_id: label for label, category_id in enumerate(self.category_ids)}

        images: dict[int, dict[str, Any]] = {}
        for entry in data["images"]:
            image_id = _field(entry, "id", "int", path, f"image {entry!r}")
            if image_id in images:
                raise DataError(f"annotation file {str(path)!r} has two images with id {image_id}", path)
            where = f"image {image_id}"
            images[image_id] = {
                "file": self.images_dir / _field(entry, "file_name", "str", path, where),
                "width": _field(entry, "width", "size", path, where),
                "height": _field(entry, "height", "size", path, where),
                "annotations": [],
            }
        missing = [image["file"] for image in images.values() if not image["file"].is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise DataError(
                f"image {str(missing[0])!r} named in annotation file {str(path)!r} does not exist{more}", missing[0]
            )

        self.dropped_boxes = 0
        for number, entry in enumerate(data.get("annotations", [])):
            where = f"annotation {entry.get('id', f'#{number}') if isinstance(entry, dict) else f'#{number}'}"
            image_id = _field(entry, "image_id", "int", path, where)
            category_id = _field(entry, "category_id", "int", path, where)
            if image_id not in images:
                raise DataError(f'annotation file {str(path)!r}: {where} is of image {image_id}, not in "images"', path)
            if category_id not in label_of:
                raise DataError(
                    f'annotation file {str(path)!r}: {where} has category_id {category_id}, not in "categories"', path
                )
            image = images[image_id]
            x, y, w, h = (float(v) for v in _field(entry, "bbox", "box", path, where))
            width, height = image["width"], image["height"]
            if (
                w < 0
                or h < 0
                or x < -BOX_TOLERANCE
                or y < -BOX_TOLERANCE
                or x + w > width + BOX_TOLERANCE
                or y + h > height + BOX_TOLERANCE
            ):
                raise DataError(
                    f"annotation file {str(path)!r}: {where} has bbox [x, y, w, h] = [{x:g}, {y:g}, {w:g}, {h:g}] "
                    f"outside its {width}x{height} image {str(image['file'].name)!r}",
                    path,
                )
            box = (max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height)))
            if box[2] <= box[0] or box[3] <= box[1]:
                self.dropped_boxes += 1
                continue
            area = entry.get("area", w * h)
            crowd = entry.get("iscrowd", 0)
            if not _is_number(area) or crowd not in (0, 1):
                raise DataError(
                    f"annotation file {str(path)!r}: {where} has area={area!r} iscrowd={crowd!r}, expected a number "
                    "and 0 or 1",
                    path,
                )
            image["annotations"].append(
                {
                    "box": box,
                    "label": label_of[category_id],
                    "iscrowd": int(crowd),
                    "area": float(area),
                    "segmentation": entry.get("segmentation"),
                    "where": where,
                }
            )
        self.ids: list[int] = sorted(images)
        self._images = [images[image_id] for image_id in self.ids]

    def __len__(self) -> int:
        return len(self.ids)

    def _mask(self, annotation: dict[str, Any], height: int, width: int) -> np.ndarray:
        """[H, W] uint8 from a polygon / RLE segmentation, as pycocotools' COCO.annToMask."""
        from pycocotools import mask as mask_utils

        segmentation = annotation["segmentation"]
        problem = f"annotation file {str(self.annotation_file)!r}: {annotation['where']} has "
        if isinstance(segmentation, list):
            # Like detectron2, polygons of fewer than 3 points are dropped (pycocotools would read
            # a 4-number one as a box); none left is an error.
            polygons = [
                [float(v) for v in polygon]
                for polygon in segmentation
                if isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0
                if all(_is_number(v) for v in polygon)
            ]
            if not polygons:
                raise DataError(problem + "no polygon of 3 or more points", self.annotation_file)
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
            if list(segmentation["size"]) != [height, width]:
                raise DataError(
                    problem + f"an RLE of size {segmentation['size']} for a {height}x{width} (HxW) image",
                    self.annotation_file,
                )
            counts = segmentation["counts"]
            if isinstance(counts, list):
                if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != height * width:
                    raise DataError(
                        problem + f"RLE counts that do not add up to {height}x{width}", self.annotation_file
                    )
                rle = mask_utils.frPyObjects(segmentation, height, width)
            elif isinstance(counts, str):
                runs = _compressed_rle_counts(counts)
                if runs is None or min(runs, default=0) < 0 or sum(runs) != height * width:
                    raise DataError(
                        problem + f"a compressed RLE that does not decode to {height}x{width} pixels",
                        self.annotation_file,
                    )
                rle = {"size": [height, width], "counts": counts.encode("ascii")}
            else:
                raise DataError(problem + "RLE counts that are neither a list nor a string", self.annotation_file)
        else:
            raise DataError(problem + f"no usable segmentation ({type(segmentation).__name__})", self.annotation_file)
        try:
            return mask_utils.decode(rle)
        except ValueError as error:  # pycocotools: "Invalid RLE mask representation"
            raise DataError(problem + f"an undecodable segmentation: {error}", self.annotation_file) from error

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        entry = self._images[index]
        image = read_image(entry["file"], self.channels)
        width, height = entry["width"], entry["height"]
        if (image.shape[-1], image.shape[-2]) != (width, height):
            raise DataError(
                f"image {str(entry['file'])!r} is {image.shape[-1]}x{image.shape[-2]} (WxH) but annotation file "
                f"{str(self.annotation_file)!r} says {width}x{height}",
                entry["file"],
            )
        annotations = entry["annotations"]
        target: dict[str, Any] = {
            "boxes": torch.tensor([a["box"] for a in annotations], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([a["label"] for a in annotations], dtype=torch.int64),
            "iscrowd": torch.tensor([a["iscrowd"] for a in annotations], dtype=torch.int64),
            "area": torch.tensor([a["area"] for a in annotations], dtype=torch.float32),
            "image_id": self.ids[index],
        }
        if self.masks:
            decoded = [self._mask(a, height, width) for a in annotations]
            stacked = np.stack(decoded) if decoded else np.zeros((0, height, width), dtype=np.uint8)
            target["masks"] = torch.from_numpy(stacked).bool()
        return image, target

    def source(self, index: int) -> str:
        """The image file of item `index`."""
        return str(self._images[index]["file"])

    def check(self, index: int) -> str | None:
        """None when item `index` is usable, else the problem (decodes the image and, with masks, its masks)."""
        try:
            self[index]
        except DataError as error:
            return str(error)
        return None

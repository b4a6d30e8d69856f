"""Synthetic shapes: coloured objects of known class, box and masks on textured backgrounds.

Every item is drawn on demand from a seed made of (seed, split, index) with zlib.crc32 (Python's
hash() of a str is salted per process, and items must never change), so any count is free and two
processes, machines or runs see the same pictures. The splits differ because the split is part of
the seed.

One scene serves every task (see ShapesDataset for the item formats). Objects may overlap: a later
object is drawn on top, an object's instance mask holds only its visible pixels, and each object is
placed so that every object stays at least half visible. Boxes are tight around the visible mask
(xyxy in pixel edges: pixel i spans [i, i + 1)). Semantic masks are 0 for background and k + 1 for
object class k (class k = `names[k]`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from vision_kernels.data.collate import detection_collate
from vision_kernels.data.transforms import ElasticGrid, _warp, boxes_from_masks

SHAPES = ("circle", "square", "triangle", "rectangle", "ellipse", "star")
TASKS = ("classification", "localization", "detection", "segmentation", "instance")
SPLITS = ("train", "val", "test")
MIN_SIZE = 16
MIN_VISIBLE = 0.5  # fraction of its own area an object keeps when later ones cover it
MIN_AREA = 9  # pixels of an object's full shape
PLACEMENT_TRIES = 30


@dataclass
class Scene:
    """One rendered item: image [3, H, W] in [0, 1]; per object (drawing order) labels int64 [N]
    (indices into the names), visible masks bool [N, H, W] and tight boxes float32 [N, 4]."""

    image: Tensor
    labels: Tensor
    masks: Tensor
    boxes: Tensor

    @property
    def semantic(self) -> Tensor:
        """[H, W] int64: 0 background, label + 1 on each object's visible pixels."""
        values = (self.labels + 1)[:, None, None] * self.masks
        return values.sum(0) if len(values) else torch.zeros(self.image.shape[-2:], dtype=torch.int64)


# ---- drawing ------------------------------------------------------------------------------------------


def _polygon(vertices: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Pixels whose centre is inside the polygon [V, 2] (even-odd rule)."""
    inside = torch.zeros_like(x, dtype=torch.bool)
    for i in range(len(vertices)):
        (x1, y1), (x2, y2) = vertices[i].tolist(), vertices[i - 1].tolist()
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        inside ^= crosses & (x < (x2 - x1) * (y - y1) / (y2 - y1) + x1)
    return inside


def _regular(cx: float, cy: float, radii: Sequence[float], angle: float) -> Tensor:
    """Vertices at equal angles from `angle`, alternating over `radii` (a star has two)."""
    n = len(radii)
    count = 3 if n == 1 else 5 * n
    theta = angle + torch.arange(count) * 2 * math.pi / count
    r = torch.tensor([radii[i % n] for i in range(count)])
    return torch.stack([cx + r * torch.cos(theta), cy + r * torch.sin(theta)], 1)


def shape_mask(kind: str, cx: float, cy: float, r: float, angle: float, aspect: float, size: int) -> Tensor:
    """bool [size, size] of one shape inside the circle of radius r around (cx, cy), rotated by
    `angle`; `aspect` (>= 1) elongates rectangles and ellipses."""
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    u = (x - cx) * math.cos(angle) + (y - cy) * math.sin(angle)
    v = -(x - cx) * math.sin(angle) + (y - cy) * math.cos(angle)
    if kind == "circle":
        return u**2 + v**2 <= r**2
    if kind == "ellipse":
        return (u / r) ** 2 + (v * aspect / r) ** 2 <= 1
    if kind == "square":
        return (u.abs() <= r / math.sqrt(2)) & (v.abs() <= r / math.sqrt(2))
    if kind == "rectangle":  # corners on the circle
        half_long = r * aspect / math.sqrt(1 + aspect**2)
        return (u.abs() <= half_long) & (v.abs() <= half_long / aspect)
    if kind == "triangle":
        return _polygon(_regular(cx, cy, [r], angle), x, y)
    if kind == "star":
        return _polygon(_regular(cx, cy, [r, 0.45 * r], angle), x, y)
    raise ValueError(f"unknown shape {kind!r}; shapes: {', '.join(SHAPES)}")


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return float(torch.empty(()).uniform_(low, high, generator=g))


def _background(g: torch.Generator, size: int) -> Tensor:
    """[3, size, size]: smooth noise, stripes or a gradient between two random colours."""
    a, b = torch.rand(2, 3, 1, 1, generator=g) * 0.8 + 0.1
    kind = int(torch.randint(0, 3, (), generator=g))
    y, x = torch.meshgrid(torch.arange(size) / size, torch.arange(size) / size, indexing="ij")
    angle = _uniform(g, 0, math.pi)
    along = x * math.cos(angle) + y * math.sin(angle)
    if kind == 0:
        cells = int(torch.randint(2, 6, (), generator=g))
        coarse = torch.rand(1, 1, cells, cells, generator=g)
        t = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)[0].clamp(0, 1)
    elif kind == 1:
        frequency = _uniform(g, 2, 8)
        t = 0.5 + 0.5 * torch.sin(2 * math.pi * frequency * along + _uniform(g, 0, 2 * math.pi))[None]
    else:
        t = ((along - along.min()) / (along.max() - along.min()))[None]
    return a + (b - a) * t


def _colour(g: torch.Generator, away_from: Tensor) -> Tensor:
    """A random colour [3] at least 0.35 (Euclidean, RGB in [0, 1]) from `away_from` when possible."""
    colour = torch.rand(3, generator=g)
    for _ in range(10):
        if float((colour - away_from).norm()) >= 0.35:
            break
        colour = torch.rand(3, generator=g)
    return colour


def _stained_background(g: torch.Generator, size: int) -> Tensor:
    """[3, size, size]: a dim grey with smooth, faint unevenness, as a stained slide's."""
    coarse = torch.rand(1, 1, 4, 4, generator=g)
    t = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)[0].clamp(0, 1)
    return (0.22 + 0.08 * t).expand(3, -1, -1).clone()


def _stained_colour(g: torch.Generator, away_from: Tensor) -> Tensor:
    """A light grey [3], slightly different per object."""
    return torch.full((3,), 0.6 + 0.15 * float(torch.rand((), generator=g)))


APPEARANCES = {"random": (_background, _colour), "stained": (_stained_background, _stained_colour)}


def render(
    g: torch.Generator, size: int, kinds: Sequence[str], count: int, single: bool, appearance: str = "random"
) -> Scene:
    """A scene of up to `count` objects (fewer only when a crowded small image has no room left
    that keeps every object MIN_VISIBLE visible) with classes drawn from `kinds`. `appearance`:
    random colours on random textures, or "stained": light grey objects on a dim grey background,
    alike in every scene (as microscope images of one stain are)."""
    background, colour = APPEARANCES[appearance]
    image = background(g, size)
    low, high = (0.15, 0.35) if single else (0.1, 0.25)
    labels: list[int] = []
    visible: list[Tensor] = []
    areas: list[int] = []
    for _ in range(count):
        for _ in range(PLACEMENT_TRIES):
            label = int(torch.randint(0, len(kinds), (), generator=g))
            r = max(3.0, _uniform(g, low, high) * size)
            cx, cy = _uniform(g, r, size - r), _uniform(g, r, size - r)
            mask = shape_mask(kinds[label], cx, cy, r, _uniform(g, 0, 2 * math.pi), _uniform(g, 1.6, 2.4), size)
            area = int(mask.sum())
            covered = [v & ~mask for v in visible]
            if area >= MIN_AREA and all(c.sum() >= MIN_VISIBLE * a for c, a in zip(covered, areas, strict=True)):
                break
        else:
            continue
        under = image[:, mask].mean(1)
        image[:, mask] = colour(g, under)[:, None]
        visible = [*covered, mask]
        labels.append(label)
        areas.append(area)
    image = (image + torch.randn(image.shape, generator=g) * 0.02).clamp(0, 1)
    masks = torch.stack(visible) if visible else torch.zeros(0, size, size, dtype=torch.bool)
    return Scene(image.float(), torch.tensor(labels, dtype=torch.int64), masks, boxes_from_masks(masks))


def deform(scene: Scene, g: torch.Generator, sigma: float) -> Scene:
    """The scene bent by one smooth elastic field (the U-Net paper's: N(0, sigma^2) px displacements
    on a 3x3 grid, bicubic in between), image bilinear and masks nearest, the border extended (no
    empty corners): rigid shapes become irregular blobs, like cells in a microscope image. Objects
    that the field pushes out of the image are dropped."""
    size = scene.image.shape[-1]
    displacement = ElasticGrid(sigma).displacement(size, size, generator=g)
    image = _warp(scene.image, displacement, "bilinear", 3, padding_mode="border")
    if not len(scene.masks):
        return Scene(image, scene.labels, scene.masks, scene.boxes)
    masks = _warp(scene.masks, displacement, "nearest", 2, padding_mode="border")
    kept = masks.flatten(1).sum(1) > 0
    return Scene(image, scene.labels[kept], masks[kept], boxes_from_masks(masks[kept]))


# ---- the dataset --------------------------------------------------------------------------------------


def _object_range(objects: int | Sequence[int], single: bool) -> tuple[int, int]:
    if single:
        return 1, 1
    if isinstance(objects, bool):
        raise ValueError(f"objects must be an int or a (min, max) pair, got {objects!r}")
    if isinstance(objects, int):
        objects = (objects, objects)
    if (not isinstance(objects, Sequence) or len(objects) != 2 or not all(isinstance(o, int) for o in objects)
            or not 1 <= objects[0] <= objects[1] <= 32):  # fmt: skip
        raise ValueError(f"objects must be an int or a (min, max) pair with 1 <= min <= max <= 32, got {objects!r}")
    return objects[0], objects[1]


def _names(classes: str | Sequence[str]) -> list[str]:
    names = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else list(classes)
    unknown = [c for c in names if c not in SHAPES]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"classes must be distinct names among {', '.join(SHAPES)}; got {classes!r}")
    return names


class ShapesDataset(Dataset):
    """`count` synthetic scenes of `size` x `size` RGB pixels with 1 object (single=True) or a
    number of objects drawn from `objects` (an int or an inclusive (min, max) pair), each of a
    class among `classes` (shape names from SHAPES; label k is classes[k]).

    Items by `task`:
        classification  (image, label of the object, the largest visible one when several)
        localization    (image, {"label": int, "box": float32 [4]}), the same object; use single=True
        detection       (image, {"boxes": float32 [N, 4], "labels": int64 [N]}); collate_fn batches
        segmentation    (image, mask int64 [H, W]): 0 background, k + 1 for class k
        instance        (image, {"boxes", "labels", "masks": bool [N, H, W], "semantic": the mask above})

    `classes` is ["background", *names] for segmentation (it indexes the mask), else the names
    (they index the labels); `num_classes` is its length. `deform` > 0 bends every scene with its
    own smooth elastic field of that sigma in pixels (see `deform`): the objects become irregular,
    cell-like blobs whose variation is the one the U-Net paper's elastic augmentation imitates.
    `appearance="stained"` draws light grey objects on a dim grey background in every scene instead
    of random colours on random textures (see `render`)."""

    def __init__(
        self,
        split: str = "train",
        task: str = "segmentation",
        size: int = 64,
        count: int = 200,
        objects: int | Sequence[int] = (1, 4),
        classes: str | Sequence[str] = ("circle", "square", "triangle"),
        single: bool = False,
        seed: int = 0,
        deform: float = 0.0,
        appearance: str = "random",
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"shapes: split must be one of {', '.join(SPLITS)}, got {split!r}")
        if task not in TASKS:
            raise ValueError(f"shapes: task must be one of {', '.join(TASKS)}, got {task!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIZE:
            raise ValueError(f"shapes: size must be an integer >= {MIN_SIZE} (pixels), got {size!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"shapes: count must be an integer >= 0, got {count!r}")
        if not isinstance(single, bool):
            raise ValueError(f"shapes: single must be true or false, got {single!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"shapes: seed must be an integer, got {seed!r}")
        if isinstance(deform, bool) or not isinstance(deform, (int, float)) or deform < 0:
            raise ValueError(f"shapes: deform must be a number >= 0 (pixels), got {deform!r}")
        if appearance not in APPEARANCES:
            raise ValueError(f"shapes: appearance must be one of {', '.join(APPEARANCES)}, got {appearance!r}")
        try:
            self.objects = _object_range(objects, single)
            self.names = _names(classes)
        except ValueError as error:
            raise ValueError(f"shapes: {error}") from None
        self.split, self.task, self.size, self.count, self.single, self.seed = split, task, size, count, single, seed
        self.deform, self.appearance = float(deform), appearance
        self.classes = ["background", *self.names] if task == "segmentation" else list(self.names)
        self.num_classes = len(self.classes)
        if task in ("detection", "instance"):
            self.collate_fn = detection_collate  # targets of varying length stay a list

    def __len__(self) -> int:
        return self.count

    def scene(self, index: int) -> Scene:
        """The scene behind item `index`, with everything every task uses."""
        if not -self.count <= index < self.count:
            raise IndexError(f"shapes: index {index} out of range for {self.count} items")
        index %= self.count
        key = f"shapes:{self.seed}:{self.split}:{index}".encode()
        g = torch.Generator().manual_seed(zlib.crc32(key))
        count = int(torch.randint(self.objects[0], self.objects[1] + 1, (), generator=g))
        scene = render(g, self.size, self.names, count, self.single, self.appearance)
        return deform(scene, g, self.deform) if self.deform else scene

    def __getitem__(self, index: int) -> tuple[Tensor, Any]:
        scene = self.scene(index)
        if self.task == "segmentation":
            return scene.image, scene.semantic
        if self.task == "detection":
            return scene.image, {"boxes": scene.boxes, "labels": scene.labels}
        if self.task == "instance":
            return scene.image, {"boxes": scene.boxes, "labels": scene.labels, "masks": scene.masks,
                                 "semantic": scene.semantic}  # fmt: skip
        largest = int(scene.masks.flatten(1).sum(1).argmax())
        if self.task == "classification":
            return scene.image, int(scene.labels[largest])
        return scene.image, {"label": int(scene.labels[largest]), "box": scene.boxes[largest].clone()}

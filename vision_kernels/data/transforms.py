"""Joint image/mask/box transforms: one random draw moves the image, its masks and its boxes together.

Built on torchvision.transforms.v2, which dispatches on tv_tensors: the image is wrapped as
`Image` (bilinear), masks as `Mask` (always nearest: labels are never blended) and boxes as
`BoundingBoxes` (XYXY pixels with the image's canvas size), so a flip, crop, zoom or rotation drawn
once applies to all three. `ElasticGrid` adds the U-Net paper's elastic deformation as a v2
`Transform`, so it composes with `v2.Compose` like the built-in ones.

`JointTransform` accepts the items the datasets of vision_kernels.data return and gives them back in
the same shape:

    (image, int label)                      only the image moves
    (image, mask [H, W])                    semantic mask, 255 = ignore
    (image, image [C, H, W])                a paired image (pix2pix) moves with the first one
    (image, {"boxes", "labels", "masks"?, "semantic"?, ...})   detection / instance segmentation
    (image, {"label", "box" [4]})           localization (one object)

Pixels that come from outside the source image (rotation corners, crop padding, elastic borders)
are 0 in images and instance masks (not the object), and `outside` (default 255, the ignore index)
in semantic masks: their true label is unknown, so the loss should skip them. Pass outside=0 to
call them background instead.

After the transforms, boxes are clipped to the image; detection boxes narrower or lower than
`min_size` pixels are removed together with every per-box entry of the target (labels, masks,
iscrowd, ...). A localization box is clipped but kept: its item has no "no object" form.

Randomness: every transform draws from torch's global RNG. A DataLoader seeds each worker's RNG
from its own generator (base seed + worker id), so a loader with a seeded `generator` and a fixed
num_workers replays the same augmentations; with num_workers=0 they follow the main process's seed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

IGNORE_INDEX = 255
SEMANTIC_KEYS = ("semantic", "mask")  # dict entries holding a [H, W] label map
NOT_PER_BOX = (*SEMANTIC_KEYS, "image_id", "size", "orig_size")  # never filtered with the boxes


def boxes_from_masks(masks: Tensor) -> Tensor:
    """Tight xyxy boxes float32 [N, 4] (pixel edges: pixel i spans [i, i + 1)) of masks [N, H, W];
    an empty mask gives [0, 0, 0, 0]."""
    masks = masks.bool()
    height, width = masks.shape[-2:]
    rows, cols = masks.any(2), masks.any(1)  # [N, H], [N, W]
    y0, x0 = rows.byte().argmax(1), cols.byte().argmax(1)  # first True
    y1, x1 = height - rows.flip(1).byte().argmax(1), width - cols.flip(1).byte().argmax(1)
    boxes = torch.stack([x0, y0, x1, y1], 1).float()
    return boxes * rows.any(1, keepdim=True)


# ---- elastic deformation ------------------------------------------------------------------------------


def _spatial_size(flat_inputs: Sequence[Any]) -> tuple[int, int]:
    """The (H, W) shared by the images, masks and box canvases of one sample."""
    sizes = set()
    for inpt in flat_inputs:
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            sizes.add(tuple(inpt.canvas_size))
        elif isinstance(inpt, Tensor) and inpt.dim() >= 2:
            sizes.add(tuple(inpt.shape[-2:]))
    if len(sizes) != 1:
        raise ValueError(f"the inputs of one sample must share one image size, got {sorted(sizes)}")
    return sizes.pop()  # type: ignore[return-value]


def _sample_grid(displacement: Tensor) -> Tensor:
    """grid_sample's grid (align_corners=True) that reads pixel (x + dx, y + dy) for output (x, y)."""
    _, height, width = displacement.shape
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    x = (xs + displacement[0]) * 2 / max(width - 1, 1) - 1
    y = (ys + displacement[1]) * 2 / max(height - 1, 1) - 1
    return torch.stack([x, y], dim=-1)[None]  # [1, H, W, 2]


def _warp(inpt: Tensor, displacement: Tensor, mode: str, leading: int, padding_mode: str = "zeros") -> Tensor:
    """Resamples the last two dims of `inpt` ([..., C, H, W] for leading=3, [..., H, W] for 2);
    integer and bool tensors are resampled as floats and rounded back. Pixels pulled from outside
    are 0 (padding_mode "zeros") or the nearest border pixel ("border")."""
    shape = inpt.shape
    flat = inpt.reshape(-1, *([shape[-3]] if leading == 3 else [1]), *shape[-2:])
    source = flat if flat.is_floating_point() else flat.float()
    grid = _sample_grid(displacement).to(source.dtype).expand(source.shape[0], -1, -1, -1)
    out = F.grid_sample(source, grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    if not flat.is_floating_point():
        out = out.round().to(flat.dtype)
    return out.reshape(shape)


def _warp_boxes(boxes: tv_tensors.BoundingBoxes, displacement: Tensor) -> tv_tensors.BoundingBoxes:
    """The tight box of the output pixels whose source lies in each box: the box region warped the
    way a mask is (exact on the pixel grid, folds included); a box that leaves the image becomes
    [0, 0, 0, 0] (degenerate, so JointTransform drops it)."""
    fmt = boxes.format
    xyxy = v2.functional.convert_bounding_box_format(boxes, new_format=tv_tensors.BoundingBoxFormat.XYXY)
    flat = xyxy.as_subclass(Tensor).reshape(-1, 4).float()
    _, height, width = displacement.shape
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    sx, sy = xs + displacement[0] + 0.5, ys + displacement[1] + 0.5  # source point of each pixel centre
    x0, y0, x1, y1 = (flat[:, i, None, None] for i in range(4))
    inside = (sx >= x0) & (sx < x1) & (sy >= y0) & (sy < y1)  # [N, H, W]
    out = tv_tensors.wrap(boxes_from_masks(inside).to(boxes.dtype).reshape(boxes.shape), like=xyxy)
    return v2.functional.convert_bounding_box_format(out, new_format=fmt)


class ElasticGrid(v2.Transform):
    """Elastic deformation as in the U-Net paper (Ronneberger et al. 2015): random displacement
    vectors on a coarse `grid` x `grid` grid, each component drawn from N(0, sigma^2) pixels,
    upsampled to a per-pixel field by bicubic interpolation (smooth, so shapes bend but do not
    tear), then applied with grid_sample: bilinear for images, nearest for masks (labels stay
    labels). Grid nodes sit on the corner and centre pixels (align_corners), so the field there has
    exactly standard deviation `sigma`.

    Pixels pulled from outside the image are 0 (JointTransform turns them into its `outside` label
    in semantic masks). Boxes: each box's region is warped like a mask and the tight box of the
    result is kept (it encloses the warped object, more loosely than the object's own mask would);
    build_transforms' pipelines then take the tight boxes of the warped instance masks instead
    when the target has them.

    The paper's sigma of 10 px suits its 512 px tiles (grid nodes 256 px apart); on small images
    the field can change by more than a pixel per pixel and fold the image: lower sigma there.

    Applied with probability `p`. Draws from torch's global RNG."""

    _transformed_types = (Tensor,)

    def __init__(self, sigma: float = 10.0, grid: int = 3, p: float = 1.0) -> None:
        super().__init__()
        if sigma < 0:
            raise ValueError(f"elastic: sigma must be >= 0 pixels, got {sigma}")
        if int(grid) != grid or grid < 2:
            raise ValueError(f"elastic: grid must be an integer >= 2, got {grid}")
        if not 0 <= p <= 1:
            raise ValueError(f"elastic: p must be in [0, 1], got {p}")
        self.sigma, self.grid, self.p = float(sigma), int(grid), float(p)

    def displacement(self, height: int, width: int, generator: torch.Generator | None = None) -> Tensor:
        """A field [2, H, W] of (dx, dy) in pixels: output pixel (x, y) shows source (x + dx, y + dy)."""
        coarse = torch.randn(1, 2, self.grid, self.grid, generator=generator) * self.sigma
        return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)[0]

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        if self.p < 1 and bool(torch.rand(()) >= self.p):
            return {"displacement": None}
        return {"displacement": self.displacement(*_spatial_size(flat_inputs))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        displacement = params["displacement"]
        if displacement is None:
            return inpt
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            return _warp_boxes(inpt, displacement)
        if isinstance(inpt, tv_tensors.Mask):
            return tv_tensors.wrap(_warp(inpt.as_subclass(Tensor), displacement, "nearest", 2), like=inpt)
        if isinstance(inpt, tv_tensors.Image) or type(inpt) is Tensor:
            out = _warp(inpt.as_subclass(Tensor), displacement, "bilinear", 3)
            return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.Image) else out
        raise TypeError(f"ElasticGrid transforms images, masks and boxes, not {type(inpt).__name__}")

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, grid={self.grid}, p={self.p}"


# ---- joint transform over dataset items ---------------------------------------------------------------


def _is_semantic(key: str, value: Any, size: tuple[int, int]) -> bool:
    return key in SEMANTIC_KEYS and isinstance(value, Tensor) and tuple(value.shape) == size


def _wrap_semantic(mask: Tensor) -> tv_tensors.Mask:
    # Shifted by one so that the fill value 0 of every transform marks "outside the source".
    return tv_tensors.Mask(mask.long() + 1)


def _unwrap_semantic(mask: Tensor, like: Tensor, outside: int) -> Tensor:
    out = mask.as_subclass(Tensor) - 1
    return out.masked_fill(out < 0, outside).to(like.dtype)


def _plain(value: Any) -> Any:
    return value.as_subclass(Tensor) if isinstance(value, Tensor) else value


class JointTransform:
    """Applies a v2 transform to dataset items (see the module docstring for the accepted shapes),
    keeping image, masks and boxes aligned, and returns plain tensors in the item's own format
    (dtypes kept; float images clamped to [0, 1]).

    `boxes_from_masks`: after the transform, replace detection boxes by the tight boxes of their
    instance masks (when the target has "masks"). Worth it after rotation and elastic deformation,
    where moving a box's outline only bounds the object loosely."""

    def __init__(
        self,
        transform: Callable[..., Any],
        outside: int = IGNORE_INDEX,
        boxes_from_masks: bool = False,
        min_size: float = 1.0,
    ) -> None:
        self.transform = transform
        self.outside = outside
        self.boxes_from_masks = boxes_from_masks
        self.min_size = min_size

    def __repr__(self) -> str:
        return (f"JointTransform({self.transform!r}, outside={self.outside}, "
                f"boxes_from_masks={self.boxes_from_masks}, min_size={self.min_size})")  # fmt: skip

    def __call__(self, item: Any) -> Any:
        if isinstance(item, Tensor):  # a bare image
            return self._image(self.transform(tv_tensors.Image(item)), item)
        if not isinstance(item, (tuple, list)) or len(item) < 2 or not isinstance(item[0], Tensor):
            raise TypeError(f"JointTransform takes an image or an (image, target, ...) item, got {type(item).__name__}")
        image, target, *rest = item
        size = tuple(image.shape[-2:])
        new_image, new_target = self.transform(tv_tensors.Image(image), self._wrap(target, size))
        return type(item)([self._image(new_image, image), self._unwrap(new_target, target, size), *rest])

    @staticmethod
    def _image(new: Tensor, old: Tensor) -> Tensor:
        new = new.as_subclass(Tensor)
        return new.clamp(0, 1) if new.is_floating_point() else new.to(old.dtype)

    def _wrap(self, target: Any, size: tuple[int, ...]) -> Any:
        if isinstance(target, Tensor) and tuple(target.shape) == size:
            if target.is_floating_point():
                raise TypeError(f"a [H, W] target is a mask of integer labels, got {target.dtype}")
            return _wrap_semantic(target)
        if isinstance(target, Tensor) and target.dim() == 3 and tuple(target.shape[-2:]) == size:
            return tv_tensors.Image(target)  # a paired image
        if not isinstance(target, Mapping):
            return target  # a class label, or anything else that does not live on the pixel grid
        wrapped: dict[str, Any] = {}
        for key, value in target.items():
            if key in ("boxes", "box"):
                wrapped[key] = tv_tensors.BoundingBoxes(value.reshape(-1, 4).float(), format="XYXY", canvas_size=size)
            elif key == "masks":
                wrapped[key] = tv_tensors.Mask(value.to(torch.uint8) if value.dtype == torch.bool else value)
            elif _is_semantic(key, value, size):
                wrapped[key] = _wrap_semantic(value)
            else:
                wrapped[key] = value
        return wrapped

    def _unwrap(self, new: Any, old: Any, size: tuple[int, ...]) -> Any:
        if isinstance(old, Tensor) and tuple(old.shape) == size:
            return _unwrap_semantic(new, old, self.outside)
        if isinstance(old, Tensor) and old.dim() == 3 and tuple(old.shape[-2:]) == size:
            return self._image(new, old)
        if not isinstance(old, Mapping):
            return new
        out: dict[str, Any] = {}
        for key, value in new.items():
            if key == "masks":
                out[key] = value.as_subclass(Tensor).to(old[key].dtype)
            elif _is_semantic(key, old[key], size):
                out[key] = _unwrap_semantic(value, old[key], self.outside)
            elif key in ("boxes", "box"):
                out[key] = self._clip(value).to(old[key].dtype)
            else:
                out[key] = _plain(value)
        if "box" in out:
            out["box"] = out["box"].reshape(old["box"].shape)
        if "boxes" in out:
            out = self._sanitize(out, old)
        return out

    @staticmethod
    def _clip(boxes: tv_tensors.BoundingBoxes) -> Tensor:
        height, width = boxes.canvas_size
        plain = boxes.as_subclass(Tensor).clone()
        plain[:, 0::2] = plain[:, 0::2].clamp(0, width)
        plain[:, 1::2] = plain[:, 1::2].clamp(0, height)
        return plain

    def _sanitize(self, target: dict[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
        """Tight boxes from masks if asked; drops the degenerate boxes and every per-box entry."""
        boxes = target["boxes"]
        if self.boxes_from_masks and "masks" in target and len(target["masks"]) == len(boxes):
            boxes = target["boxes"] = boxes_from_masks(target["masks"]).to(boxes.dtype)
        keep = ((boxes[:, 2] - boxes[:, 0]) >= self.min_size) & ((boxes[:, 3] - boxes[:, 1]) >= self.min_size)
        if bool(keep.all()):
            return target
        n = len(old["boxes"])
        for key, value in target.items():
            if isinstance(value, Tensor) and value.dim() >= 1 and len(value) == n and key not in NOT_PER_BOX:
                target[key] = value[keep]
        return target


# ---- building from a config list ----------------------------------------------------------------------


def _hflip(p: float = 0.5) -> v2.Transform:
    return v2.RandomHorizontalFlip(p=p)


def _vflip(p: float = 0.5) -> v2.Transform:
    return v2.RandomVerticalFlip(p=p)


def _random_crop(size: int | Sequence[int], pad_if_needed: bool = True) -> v2.Transform:
    return v2.RandomCrop(size, pad_if_needed=pad_if_needed)


def _random_resized_crop(
    size: int | Sequence[int], scale: Sequence[float] = (0.5, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3)
) -> v2.Transform:
    return v2.RandomResizedCrop(size, scale=tuple(scale), ratio=tuple(ratio), antialias=True)


def _scale(range: Sequence[float] = (0.75, 1.33)) -> v2.Transform:
    return v2.RandomAffine(degrees=0, scale=tuple(range))


def _shift(fraction: float = 0.1) -> v2.Transform:
    return v2.RandomAffine(degrees=0, translate=(fraction, fraction))


def _resize(size: int | Sequence[int]) -> v2.Transform:
    return v2.Resize(size, antialias=True)


def _rotation(degrees: float | Sequence[float] = 15.0) -> v2.Transform:
    return v2.RandomRotation(degrees, interpolation=v2.InterpolationMode.BILINEAR)


def _elastic(sigma: float = 10.0, grid: int = 3, p: float = 1.0) -> v2.Transform:
    return ElasticGrid(sigma=sigma, grid=grid, p=p)


def _color_jitter(
    brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2, hue: float = 0.0
) -> v2.Transform:
    return v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)


TRANSFORMS: dict[str, Callable[..., v2.Transform]] = {
    "hflip": _hflip,  # horizontal flip with probability p
    "vflip": _vflip,
    "random_crop": _random_crop,  # a size crop; padded (image 0, mask `outside`) when the image is smaller
    "random_resized_crop": _random_resized_crop,  # area fraction `scale`, aspect `ratio`, resized to size
    "scale": _scale,  # zoom by a factor in `range` around the centre, size kept
    "shift": _shift,  # translate by up to `fraction` of the width and height (U-Net's shifts)
    "resize": _resize,
    "rotation": _rotation,  # by an angle in [-degrees, degrees] (or a [min, max] pair)
    "elastic": _elastic,  # U-Net elastic deformation (ElasticGrid)
    "color_jitter": _color_jitter,  # image only
}
LOOSE_BOXES = {"rotation", "elastic"}  # transforms after which instance masks give better boxes


def _options(factory: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(factory).parameters)


def build_transform(entry: str | Mapping[str, Any]) -> v2.Transform:
    """One v2 transform from a config entry: "name" or {"name": {option: value, ...}}."""
    if isinstance(entry, str):
        name, options = entry, {}
    elif isinstance(entry, Mapping) and len(entry) == 1:
        name, options = next(iter(entry.items()))
        options = {} if options is None else options
        if not isinstance(options, Mapping):
            raise ValueError(f"transform {name!r}: options must be a mapping {{option: value}}, got {options!r}")
    else:
        raise ValueError(f"a transform is a name or {{name: {{options}}}} with one name, got {entry!r}")
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; valid transforms: {', '.join(TRANSFORMS)}")
    factory = TRANSFORMS[name]
    params = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(f"transform {name!r}: unknown option(s) {', '.join(unknown)}; options: "
                         f"{', '.join(_options(factory))}")  # fmt: skip
    missing = [p for p, spec in params.items() if spec.default is inspect.Parameter.empty and p not in options]
    if missing:
        raise ValueError(f"transform {name!r} needs option(s) {', '.join(missing)}")
    try:
        return factory(**options)
    except (TypeError, ValueError) as error:
        raise ValueError(f"transform {name!r}: bad options {dict(options)}: {error}") from error


def build_transforms(spec: Sequence[str | Mapping[str, Any]], outside: int = IGNORE_INDEX) -> JointTransform:
    """A JointTransform running the config list `spec` in order, e.g.
    ["hflip", {"random_crop": {"size": 64}}, "elastic"]. Names: see TRANSFORMS. Boxes are
    recomputed from instance masks when the list rotates or deforms (see JointTransform)."""
    if isinstance(spec, (str, Mapping)):
        spec = [spec]
    transforms = [build_transform(entry) for entry in spec]
    names = {entry if isinstance(entry, str) else next(iter(entry)) for entry in spec}
    return JointTransform(v2.Compose(transforms), outside=outside, boxes_from_masks=bool(names & LOOSE_BOXES))


class Transformed(Dataset):
    """`dataset` with `transform` applied to each item. Other attributes (classes, collate_fn,
    source, check, ...) are those of the wrapped dataset."""

    def __init__(self, dataset: Any, transform: Callable[[Any], Any]) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.transform(self.dataset[index])

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found normally; unpickling looks some up before __dict__ is
        # filled, and reading self.dataset then would recurse forever.
        if name.startswith("__") or name in ("dataset", "transform"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

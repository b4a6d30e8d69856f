"""The overlap-tile strategy (section 2, Fig. 2): seamless segmentation of images of any size.

Valid padding: to predict a tile of S x S output pixels the network needs the tile plus `margin`
pixels of context on every side; at the image border that context is missing and is extrapolated by
mirroring the image. The image is cut into input tiles whose outputs cover it exactly, with no
overlap in the outputs. Two details make the stitched result *identical* (to float rounding) to one
whole-image pass, not merely free of visible seams:

- Tiles start at multiples of the output stride S, and S is rounded up to a multiple of 2**depth, so
  every tile's max-pooling grid lines up with the whole-image pass's (a U-Net is only equivariant
  to shifts by multiples of 2**depth). Each tile's valid output is 2**depth * j + 4 pixels; the
  first S are kept.
- The mirror extension is one fixed function of the image coordinates (`reflect_index`: numpy's
  "reflect", repeated as often as needed, so margins larger than the image work), so a tile's
  context is the same pixels whatever the tile.

Same padding: the network zero-pads each tile, which is wrong near the tile's edges; each tile gets
`context` pixels of mirrored/neighbouring context on every side and only its centre is kept. When
the context is at least the receptive-field radius (the default, 7 * 2**depth, is: see
`default_context`), a kept pixel never sees the tile's zero padding and the result equals
whole_image(model, images, context=context) to float rounding. (Training's whole_image uses no
context by default, so near the image border a same-padding model sees mirrored pixels at inference
where it saw zero padding in training; inside the image the two agree.)

Memory: tiles are cut from the (unpadded) image by index arithmetic, batch_size at a time, and
written into one preallocated [B, num_classes, H, W] output; no padded image and no list of all
tiles ever exists.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor

from .model import UNet


def _unet(model: Any) -> UNet:
    """The UNet inside a DistributedDataParallel (.module) or torch.compile (._orig_mod) wrapper,
    for its geometry; the wrapper itself is what gets called."""
    inner = model
    for attribute in ("module", "_orig_mod", "module"):
        inner = getattr(inner, attribute, inner)
    for name in ("depth", "padding", "margin", "input_size_for", "output_size"):
        if not hasattr(inner, name):
            raise ValueError(f"model must be a UNet (or wrap one): {type(model).__name__} has no {name!r}")
    return inner


def default_context(depth: int) -> int:
    """A same-padding context that covers the receptive field: the convolutions reach as far as the
    valid-padding margin, 6 * 2**depth - 4 pixels per side, and the max-pool / up-convolution grid
    alignment adds up to 2**depth - 1 more, so the radius is 7 * 2**depth - 5 (measured by
    test_unet_core); rounded up to a multiple of 2**depth: 7 * 2**depth (112 at depth 4)."""
    return 7 * 2**depth


def reflect_index(start: int, length: int, size: int, device: torch.device | None = None) -> Tensor:
    """Indices into a dimension of `size` for positions start .. start + length - 1 of its infinite
    mirror extension (numpy's "reflect": ... 2 1 | 0 1 2 ... n-1 | n-2 ...; period 2 * (size - 1)).
    Unlike F.pad(mode="reflect") it handles any distance beyond the edges."""
    positions = torch.arange(start, start + length, device=device)
    if size == 1:
        return torch.zeros_like(positions)
    period = 2 * (size - 1)
    positions = positions.remainder(period)
    return torch.where(positions >= size, period - positions, positions)


def mirror_crop(images: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    """The window [top, top + height) x [left, left + width) of the mirror-extended images
    ([..., H, W]; top/left may be negative, the window may exceed the image). The window that is
    the image itself (every same-padding training step) is the image, not a copy."""
    if (top, left, height, width) == (0, 0, *images.shape[-2:]):
        return images
    rows = reflect_index(top, height, images.shape[-2], images.device)
    cols = reflect_index(left, width, images.shape[-1], images.device)
    return images.index_select(-2, rows).index_select(-1, cols)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _check_images(images: Tensor) -> None:
    if images.dim() != 4 or images.shape[-1] < 1 or images.shape[-2] < 1:
        raise ValueError(f"images must be [B, C, H, W] with H, W >= 1, got shape {tuple(images.shape)}")


def _context(unet: UNet, context: int | None) -> int:
    """Per-side context in input pixels: the margin for valid padding; for same padding `context`
    (default: default_context) rounded up to a multiple of 2**depth (tile sizes must stay divisible)."""
    if unet.padding == "valid":
        return unet.margin
    if context is None:
        context = default_context(unet.depth)
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    return _round_up(context, 2**unet.depth)


def whole_image(model: Any, images: Tensor, *, context: int = 0) -> Tensor:
    """Logits [B, num_classes, H, W] from one pass over the whole (mirror-padded) images.

    Valid padding: the images are mirror-padded by the model's margin on each side, and at the
    bottom/right up to the next valid input size, and the output cropped to H x W (the paper's
    input tile for one output tile covering the image). Same padding: mirror-padded by `context` on
    each side (default 0: as training sees the images) and at the bottom/right up to a multiple of
    2**depth, the output cropped back. Keeps the model's mode and autograd: the training step uses it.
    """
    _check_images(images)
    unet = _unet(model)
    height, width = images.shape[-2:]
    if unet.padding == "valid":
        halo, keep = unet.margin, 0
        padded = mirror_crop(images, -halo, -halo, unet.input_size_for(height), unet.input_size_for(width))
    else:
        if context < 0:
            raise ValueError(f"context must be >= 0, got {context}")
        halo = keep = context
        step = 2**unet.depth
        padded = mirror_crop(
            images, -halo, -halo, _round_up(height + 2 * halo, step), _round_up(width + 2 * halo, step)
        )
    return model(padded)[..., keep : keep + height, keep : keep + width]


def overlap_tile(
    model: Any,
    images: Tensor,
    tile_output: int | None = None,
    batch_size: int = 4,
    num_classes: int | None = None,
    *,
    context: int | None = None,
) -> Tensor:
    """Logits [B, num_classes, H, W] for images of any size by the overlap-tile strategy (see the
    module docstring), in eval mode without autograd (the model's mode is restored afterwards).

    Args:
        model: a UNet, or a DDP / torch.compile wrapper of one.
        images: [B, C, H, W] on the model's device.
        tile_output: output pixels per tile side (the tile stride); rounded up to a multiple of
            2**depth and capped at the image size so rounded. Default 24 * 2**depth: 384 at depth 4,
            whose valid-padding input tile is the paper's 572 x 572.
        batch_size: tiles per forward pass; with the tile size this bounds the memory.
        num_classes: expected logits per pixel (checked against the model's output); default: the
            model's.
        context: same padding only: context pixels per tile side (rounded up to a multiple of
            2**depth; default default_context(depth)). Ignored for valid padding (the margin is exact).
    """
    _check_images(images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if tile_output is not None and tile_output < 1:
        raise ValueError(f"tile_output must be a positive int, got {tile_output}")
    unet = _unet(model)
    step = 2**unet.depth
    count, _, height, width = images.shape
    stride = _round_up(tile_output if tile_output is not None else 24 * step, step)
    stride = min(stride, _round_up(max(height, width), step))  # an image smaller than a tile: one smaller tile
    halo = _context(unet, context)
    if unet.padding == "valid":
        tile_input, keep = unet.input_size_for(stride), 0
    else:
        tile_input, keep = stride + 2 * halo, halo

    positions = itertools.product(range(count), range(0, height, stride), range(0, width, stride))
    output: Tensor | None = None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            while chunk := list(itertools.islice(positions, batch_size)):
                tiles = torch.stack(
                    [mirror_crop(images[b], y - halo, x - halo, tile_input, tile_input) for b, y, x in chunk]
                )
                logits = model(tiles)
                if output is None:
                    expected = unet.num_classes if num_classes is None else num_classes
                    if logits.shape[1] != expected:
                        raise ValueError(f"num_classes is {expected} but the model outputs {logits.shape[1]} logits")
                    output = logits.new_empty(count, logits.shape[1], height, width)
                for tile, (b, y, x) in zip(logits, chunk, strict=True):
                    rows, cols = min(stride, height - y), min(stride, width - x)
                    output[b, :, y : y + rows, x : x + cols] = tile[:, keep : keep + rows, keep : keep + cols]
    finally:
        model.train(was_training)
    assert output is not None  # at least one tile: H, W >= 1
    return output

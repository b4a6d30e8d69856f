"""Segmentation losses: the paper's weighted cross-entropy and a soft Dice loss, plus center_crop.

With valid padding the network's output is smaller than its input (572 -> 388), so the caller crops
the target (and weight map) to the logits with `center_crop` before calling a loss; the losses
themselves insist on matching sizes rather than guessing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def center_crop(t: Tensor, size: int | tuple[int, int] | torch.Size) -> Tensor:
    """The central `size` (an int for a square, or (height, width)) of the last two dimensions of a
    [..., H, W] tensor: how the paper crops a contracting-path feature map before concatenating it
    with the (smaller) upsampled one, and how a target is cropped to valid-padding logits. When the
    surplus is odd the extra row/column is dropped at the bottom/right."""
    if t.dim() < 2:
        raise ValueError(f"center_crop needs a [..., H, W] tensor, got shape {tuple(t.shape)}")
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    in_height, in_width = t.shape[-2:]
    if not (0 < height <= in_height and 0 < width <= in_width):
        raise ValueError(f"center_crop size must be positive and at most {in_height}x{in_width}, got {height}x{width}")
    top, left = (in_height - height) // 2, (in_width - width) // 2
    return t[..., top : top + height, left : left + width]


def _check_shapes(logits: Tensor, target: Tensor) -> None:
    if logits.dim() != 4 or target.dim() != 3:
        raise ValueError(
            f"expected logits [B, C, H, W] and target [B, H, W], got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if logits.shape[0] != target.shape[0] or logits.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in batch or size; "
            "with valid padding crop the target to the logits first (center_crop(target, logits.shape[-2:]))"
        )


def weighted_cross_entropy(
    logits: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = 255
) -> Tensor:
    """The paper's energy E = sum_x w(x) log p_l(x)(x), normalised: sum(w * CE) / sum(w) over the
    pixels whose target is not `ignore_index`.

    Normalising by the total weight (rather than the paper's plain sum) keeps the loss scale, and so
    the learning rate, independent of the image size and of w0. With `weight` None this is the mean
    CE over valid pixels, i.e. exactly F.cross_entropy(logits, target, ignore_index=ignore_index).
    Unlike F.cross_entropy it returns 0 (not NaN) when no pixel is valid.

    Args:
        logits: [B, C, H, W] unnormalised class scores.
        target: [B, H, W] int64 class indices (or ignore_index).
        weight: [B, H, W] non-negative per-pixel weights (e.g. weights.weight_maps), or None.
    """
    _check_shapes(logits, target)
    valid = target != ignore_index
    ce = F.cross_entropy(logits, target, reduction="none", ignore_index=ignore_index)  # 0 where ignored
    if weight is None:
        weight = valid.to(ce.dtype)
    else:
        if weight.shape != target.shape:
            raise ValueError(f"weight must have the target's shape {tuple(target.shape)}, got {tuple(weight.shape)}")
        weight = weight.to(ce.dtype) * valid
    return (weight * ce).sum() / weight.sum().clamp_min(torch.finfo(ce.dtype).tiny)


def dice_loss(logits: Tensor, target: Tensor, ignore_index: int = 255, eps: float = 1.0) -> Tensor:
    """1 - mean over classes of the soft Dice coefficient (2 |P G| + eps) / (|P| + |G| + eps), with P
    the softmax probabilities and G the one-hot target, summed over the whole batch and all valid
    pixels (pixels labelled ignore_index count for nothing).

    Summing over the batch (not per image) keeps a class that is absent from one image from
    dominating; `eps` (1, the usual "smooth" term) makes a class that is absent from the target and
    not predicted score a Dice of ~1 instead of 0/0. 0 for perfect logits, near 1 for wrong ones.
    """
    _check_shapes(logits, target)
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1)  # [B, 1, H, W]
    labels = target.masked_fill(~valid.squeeze(1), 0)
    if bool(((labels < 0) | (labels >= num_classes)).any()):
        raise ValueError(f"target labels must be in [0, {num_classes}) or ignore_index={ignore_index}")
    probs = logits.softmax(1) * valid
    one_hot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).to(probs.dtype) * valid
    dims = (0, 2, 3)
    intersection = (probs * one_hot).sum(dims)
    total = probs.sum(dims) + one_hot.sum(dims)
    dice = (2 * intersection + eps) / (total + eps)
    return 1 - dice.mean()

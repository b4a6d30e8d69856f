"""What the unet family does each step, evaluation, sample pictures and prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .loss import dice_loss, weighted_cross_entropy
from .tiling import overlap_tile, whole_image
from .weights import weight_maps


def _channels(images: Tensor, channels: int) -> Tensor:
    if images.shape[1] == channels:
        return images
    if images.shape[1] == 3 and channels == 1:
        return (images * images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if images.shape[1] == 1:
        return images.expand(-1, channels, -1, -1)
    raise ValueError(f"the data has {images.shape[1]}-channel images; the model takes in_channels={channels}")


def unpack(batch: Any, config: Any, device: Any) -> tuple[Tensor, Tensor, list[Tensor] | None]:
    """(images [B, C, H, W], semantic masks [B, H, W], instance masks per image or None) from a
    batch of (image, mask) items or of (image, {"semantic", "masks", ...}) items (shapes with
    task=instance, COCO with masks)."""
    images, targets = batch[0], batch[1]
    if isinstance(images, (list, tuple)):
        images = torch.stack(list(images))
    instances = None
    if isinstance(targets, Tensor):
        semantic = targets
    elif isinstance(targets, Sequence) and targets and isinstance(targets[0], Mapping):
        if "semantic" not in targets[0]:
            raise ValueError("unet needs semantic masks: items (image, mask) or (image, {'semantic': mask, ...})")
        semantic = torch.stack([t["semantic"] for t in targets])
        if "masks" in targets[0]:
            instances = [t["masks"].to(device) for t in targets]
    else:
        raise ValueError(f"unet cannot use batches of {type(targets).__name__} targets: it needs segmentation masks")
    images = _channels(images.to(device).float(), config.in_channels)
    return images, semantic.to(device).long(), instances


def forward(model: Any, images: Tensor) -> Tensor:
    """Logits at the images' size: for valid padding the images are mirror-padded by the model's
    margin first (the paper's input tiles), for same padding to a multiple of 2**depth."""
    return whole_image(model, images)


def training_step(ctx: Any, batch: Any) -> dict[str, float]:
    config, model = ctx.config, ctx.networks["model"]
    images, semantic, instances = unpack(batch, config, ctx.device)
    with ctx.autocast():
        logits = forward(model, images)
    if config.loss == "dice":
        loss = dice_loss(logits.float(), semantic, config.ignore_index)
    else:
        # The border term needs the instance masks; without them (or border_weight=false) the
        # map is the class-balance term alone. Computed on the CPU (scipy distance transforms).
        border = bool(instances) and config.border_weight
        weights = weight_maps(
            semantic.cpu(),
            [m.cpu() for m in instances] if border else None,
            config.num_classes,
            w0=config.w0 if border else 0.0,
            sigma=config.sigma,
            class_balance=config.class_balance,
            ignore_index=config.ignore_index,
        )
        loss = weighted_cross_entropy(logits.float(), semantic, weights.to(ctx.device), config.ignore_index)
    ctx.backward(loss, "model")
    ctx.step_optimizer("model")
    valid = semantic != config.ignore_index
    correct = ((logits.argmax(1) == semantic) & valid).sum()
    return {"loss": loss.item(), "pixel_accuracy": float(correct) / max(int(valid.sum()), 1)}


@torch.no_grad()
def predict_logits(model: Any, images: Tensor, config: Any) -> Tensor:
    """Overlap-tile inference: memory bounded by tile and tile batch, not by the image size.

    With same padding, an image no larger than one tile is run whole, exactly as in training
    (the convolutions' zero padding at its border); tiling a larger one needs mirrored context
    around every tile (tiling.default_context: the receptive field, so the stitched result has no
    seams), which near the image border differs slightly from what training saw. Valid padding
    has no such choice: its tiles reproduce the whole-image pass exactly."""
    if config.padding == "same" and max(images.shape[-2:]) <= config.tile:
        training = model.training
        model.eval()
        try:
            return forward(model, images)
        finally:
            model.train(training)
    return overlap_tile(model, images, tile_output=config.tile, batch_size=config.tile_batch,
                        num_classes=config.num_classes)  # fmt: skip


def evaluate(ctx: Any) -> dict[str, float]:
    from vision_kernels.metrics.segmentation import SegmentationMetrics

    config, model = ctx.config, ctx.networks["model"]
    metrics = SegmentationMetrics(config.num_classes, ignore_index=config.ignore_index)
    for batch in ctx.batches():
        images, semantic, _ = unpack(batch, config, ctx.device)
        metrics.update(predict_logits(model, images, config).argmax(1), semantic)
    result = metrics.compute()
    first = {key: result.pop(key) for key in ("miou", "pixel_accuracy", "mean_dice", "mean_accuracy")}
    return {**first, **result}  # miou first: the default checkpoint monitor


def overlay(image: Tensor, labels: Tensor, alpha: float) -> Tensor:
    """The label colours (background left clear) over an image in [0, 1]."""
    from vision_kernels.data.preview import colour_mask

    rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]
    colours = colour_mask(labels.cpu()).to(rgb.device)
    painted = (labels != 0).to(rgb.dtype)[None] * alpha
    return rgb * (1 - painted) + colours * painted


def samples(ctx: Any) -> dict[str, Tensor]:
    """Up to 8 evaluation images: the input, the truth and the prediction over it, side by side."""
    config, model = ctx.config, ctx.networks["model"]
    images, semantic, _ = unpack(next(iter(ctx.batches())), config, ctx.device)
    images, semantic = images[:8], semantic[:8]
    predicted = predict_logits(model, images, config).argmax(1)
    rows = [
        torch.cat([image[:3].expand(3, -1, -1), overlay(image, truth, 0.6), overlay(image, guess, 0.6)], dim=-1)
        for image, truth, guess in zip(images, semantic, predicted, strict=True)
    ]
    return {"segmentation": torch.stack(rows)}


def predict(networks: Mapping[str, Any], inputs: Any, config: Any) -> dict[str, Any]:
    """Per input image (any size): a palette label PNG, the coloured overlay, and with
    predict.probabilities a grey probability map per class."""
    if not inputs:
        raise ValueError("unet predicts on images: give them with --input FILE_OR_FOLDER")
    from rich.progress import track

    model = networks["model"]
    device = next(model.parameters()).device
    out: dict[str, Any] = {"labels": [], "overlay": []}
    if config.predict.probabilities:
        out.update({f"probability-{k}": [] for k in range(config.num_classes)})
    for image in track(inputs, description="segmenting", disable=len(inputs) < 2, transient=True):
        batch = _channels(image[None].to(device).float(), config.in_channels)
        probabilities = F.softmax(predict_logits(model, batch, config).float(), dim=1)[0]
        labels = probabilities.argmax(0)
        out["labels"].append(labels.to(torch.uint8).cpu())
        out["overlay"].append(overlay(image.to(device), labels, config.predict.overlay_alpha).cpu())
        if config.predict.probabilities:
            for k in range(config.num_classes):
                out[f"probability-{k}"].append(probabilities[k : k + 1].cpu())
    return out

"""One iteration of Algorithm 1 (Goodfellow et al. 2014), shared by gan, dcgan and cgan.

    for k steps:   sample m noise samples and m real examples; ascend the discriminator's gradient
                   of log D(x) + log(1 - D(G(z)))
    then:          sample m noise samples; descend the generator's gradient of log(1 - D(G(z)))
                   (minimax) or ascend log D(G(z)) (non-saturating)

The engine hands the step one batch of `data.batch_size` real examples: it is split into k
minibatches, so each discriminator step sees fresh real examples (as in the paper) and every
example is used once per epoch; m = batch_size // k. The discriminator returns logits, and the
losses are written with softplus / BCE-with-logits for numerical stability:
log(1 - sigmoid(l)) = -softplus(l).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .latent import sample_z


def split_batch(batch: Any) -> tuple[Tensor, Tensor | None]:
    """(images, labels or None) from a dataset batch: (images, labels), (images,) or images."""
    if isinstance(batch, Tensor):
        return batch, None
    images = batch[0]
    labels = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) and batch[1].dim() == 1 else None
    return images, labels


def to_model_range(images: Tensor, config: Any) -> Tensor:
    """Data images in [0, 1] -> the generator's output space: config.channels, image_size square,
    and [-1, 1] for a Tanh generator (dcgan) or [0, 1] for a sigmoid one (gan, cgan)."""
    if images.dim() != 4:
        raise ValueError(f"the data must give image batches [N, C, H, W]; got a batch of shape {tuple(images.shape)}")
    x = images.float()
    if x.shape[1] == 3 and config.channels == 1:
        x = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] == 1 and config.channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (config.image_size, config.image_size):
        x = F.interpolate(x, size=(config.image_size,) * 2, mode="bilinear", antialias=True, align_corners=False)
    return x * 2 - 1 if config.tanh else x


def to_unit(images: Tensor, config: Any) -> Tensor:
    """Generator output -> images in [0, 1]."""
    return ((images + 1) / 2).clamp(0, 1) if config.tanh else images.clamp(0, 1)


def conditioning(config: Any, labels: Tensor | None, n: int, device: Any) -> Tensor | None:
    """The labels a conditional model sees (None for unconditional ones)."""
    if not getattr(config, "num_classes", None):
        return None
    if labels is None:
        raise ValueError("a conditional family needs labelled data: (image, label) items")
    return labels[:n].to(device)


def _discriminator_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """-(log D(x) + log(1 - D(G(z)))): descending it ascends the paper's objective."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def _generator_loss(d_fake: Tensor, kind: str) -> Tensor:
    if kind == "minimax":
        return -F.softplus(d_fake).mean()  # log(1 - D(G(z)))
    return F.softplus(-d_fake).mean()  # -log D(G(z))


def adversarial_step(ctx: Any, batch: Any) -> dict[str, float]:
    """k discriminator steps on k fresh minibatches, then one generator step."""
    config = ctx.config
    G, D = ctx.networks["generator"], ctx.networks["discriminator"]
    images, labels = split_batch(batch)
    real = to_model_range(images.to(ctx.device), config)
    if len(real) < config.k:
        raise ValueError(f"data.batch_size ({len(real)}) must be at least k ({config.k}): the batch is split into k")
    chunks = real.tensor_split(config.k)
    label_chunks = labels.tensor_split(config.k) if labels is not None else [None] * config.k
    for x, y in zip(chunks, label_chunks, strict=True):
        condition = conditioning(config, y, len(x), ctx.device)
        z = sample_z(len(x), config, ctx.device)
        with ctx.autocast():
            fake = G(z, condition).detach()
            d_real, d_fake = D(x, condition), D(fake, condition)
            loss_d = _discriminator_loss(d_real, d_fake)
        ctx.backward(loss_d, "discriminator")
        ctx.step_optimizer("discriminator")
    m = len(chunks[0])
    condition = None
    if getattr(config, "num_classes", None):
        condition = torch.randint(0, config.num_classes, (m,), device=ctx.device)
    z = sample_z(m, config, ctx.device)
    with ctx.autocast():
        d_gen = D(G(z, condition), condition)
        loss_g = _generator_loss(d_gen, config.generator_loss)
    ctx.backward(loss_g, "generator")
    ctx.step_optimizer("generator")
    return {
        "loss_d": loss_d.item(),
        "loss_g": loss_g.item(),
        "d_real": torch.sigmoid(d_real.detach().float()).mean().item(),
        "d_fake": torch.sigmoid(d_gen.detach().float()).mean().item(),
    }


def paper_sgd(optimizer: torch.optim.Optimizer, step: int, config: Any) -> None:
    """The GAN and cGAN papers' SGD: the rate divided by `lr_decay` every update down to
    `min_lr`, momentum rising linearly from `momentum` to `final_momentum` over
    `momentum_steps` updates. A function of the step alone, so a resumed run continues it exactly."""
    # In logs: lr_decay**step overflows a float after a few hundred million steps.
    lr = max(config.lr * math.exp(-step * math.log(config.lr_decay)), config.min_lr)
    ramp = min(step / max(config.momentum_steps, 1), 1.0)
    momentum = config.momentum + (config.final_momentum - config.momentum) * ramp
    for group in optimizer.param_groups:
        group["lr"], group["momentum"] = lr, momentum

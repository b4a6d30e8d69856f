"""Tiny families and a tiny dataset for the engine's tests (a plugin like any other: registered with
vk_register in-process, or with VK_PLUGINS=vk_tiny and this folder on PYTHONPATH in a subprocess).

    blobs      dataset: 4 Gaussian blobs in 8 dimensions (seeded; splits train and val)
    tiny       supervised: an MLP classifier with dropout (so a resume must restore the RNG), no batch norm
    tiny-gan   two networks, two optimizers, k discriminator steps, samples, generated predictions
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vision_kernels.engine.run_config import DataConfig
from vision_kernels.family import Dataset, Family
from vision_kernels.hookspecs import hookimpl


def load_blobs(split: str = "train", size: int = 256, seed: int = 0) -> Any:
    import torch
    from torch.utils.data import TensorDataset

    generator = torch.Generator().manual_seed(seed + (0 if split == "train" else 1))
    labels = torch.randint(0, 4, (size,), generator=generator)
    centres = torch.tensor([[2.0] * 8, [-2.0] * 8, [2.0, -2.0] * 4, [-2.0, 2.0] * 4])
    x = centres[labels] + torch.randn(size, 8, generator=generator)
    return TensorDataset(x, labels)


BLOBS = Dataset(name="blobs", description="4 Gaussian blobs in 8-d", load=load_blobs, tasks=("classification",))


class TinyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(16, ge=1, description="hidden units")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout")
    lr: float = Field(0.05, gt=0, description="SGD learning rate")
    data: DataConfig = Field(default_factory=lambda: DataConfig(name="blobs", batch_size=16))


def build_tiny(config: TinyConfig) -> dict[str, Any]:
    from torch import nn

    # Flatten first: it also takes 8-pixel images ([1, 2, 4]) from image datasets.
    hidden = config.hidden
    layers = [nn.Flatten(), nn.Linear(8, hidden), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(hidden, 4)]
    return {"model": nn.Sequential(*layers)}


def optimizers_tiny(config: TinyConfig, networks: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {"model": torch.optim.SGD(networks["model"].parameters(), lr=config.lr, momentum=0.9)}


def step_tiny(ctx: Any, batch: Any) -> dict[str, float]:
    import torch.nn.functional as F

    x, y = batch
    with ctx.autocast():
        loss = F.cross_entropy(ctx.networks["model"](x), y)
    ctx.backward(loss, "model")
    ctx.step_optimizer("model")
    return {"loss": loss.item()}


def evaluate_tiny(ctx: Any) -> dict[str, float]:
    import torch.nn.functional as F

    total = correct = 0
    loss = 0.0
    for x, y in ctx.batches():
        logits = ctx.networks["model"](x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += int((logits.argmax(1) == y).sum())
        total += len(y)
    return {"loss": loss / max(total, 1), "accuracy": correct / max(total, 1)}


def predict_tiny(networks: dict[str, Any], inputs: Any, config: TinyConfig) -> dict[str, Any]:
    import torch

    x = torch.stack([image.flatten()[:8] for image in inputs])
    return {"class": networks["model"](x).argmax(1)}


TINY = Family(
    name="tiny",
    task="classification",
    description="an MLP on blobs (engine tests)",
    config=TinyConfig,
    build=build_tiny,
    optimizers=optimizers_tiny,
    training_step=step_tiny,
    evaluate=evaluate_tiny,
    predict=predict_tiny,
    version="1",
)


class TinyGanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latent: int = Field(4, ge=1, description="size of z")
    k: int = Field(2, ge=1, description="discriminator steps per generator step")
    lr: float = Field(2e-3, gt=0, description="Adam learning rate")
    data: DataConfig = Field(default_factory=lambda: DataConfig(name="blobs", batch_size=16))


def build_gan(config: TinyGanConfig) -> dict[str, Any]:
    from torch import nn

    return {
        "generator": nn.Sequential(nn.Linear(config.latent, 16), nn.ReLU(), nn.Linear(16, 8)),
        "discriminator": nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)),
    }


def optimizers_gan(config: TinyGanConfig, networks: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {
        name: torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.5, 0.999)) for name, net in networks.items()
    }


def step_gan(ctx: Any, batch: Any) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    real = batch[0]
    G, D = ctx.networks["generator"], ctx.networks["discriminator"]
    for _ in range(ctx.config.k):
        z = torch.randn(len(real), ctx.config.latent, device=ctx.device)
        with ctx.autocast():
            fake = G(z).detach()
            d_real, d_fake = D(real), D(fake)
            loss_d = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        ctx.backward(loss_d, "discriminator")
        ctx.step_optimizer("discriminator")
    z = torch.randn(len(real), ctx.config.latent, device=ctx.device)
    with ctx.autocast():
        d_fake = D(G(z))
        loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))  # non-saturating
    ctx.backward(loss_g, "generator")
    ctx.step_optimizer("generator")
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}


def evaluate_gan(ctx: Any) -> dict[str, float]:
    import torch

    real = torch.cat([x for x, _ in ctx.batches()])
    fake = ctx.networks["generator"](torch.randn(len(real), ctx.config.latent, device=ctx.device))
    return {"mean_error": float((real.mean(0) - fake.mean(0)).abs().mean())}


def _as_images(vectors: Any) -> Any:
    return vectors.sigmoid().view(-1, 1, 2, 4)


def samples_gan(ctx: Any) -> dict[str, Any]:
    import torch

    return {"fake": _as_images(ctx.networks["generator"](torch.randn(16, ctx.config.latent, device=ctx.device)))}


def predict_gan(networks: dict[str, Any], inputs: Any, config: TinyGanConfig) -> Any:
    import torch

    device = next(networks["generator"].parameters()).device
    return _as_images(networks["generator"](torch.randn(4, config.latent, device=device)))


TINY_GAN = Family(
    name="tiny-gan",
    task="generation",
    description="a GAN on blobs (engine tests)",
    config=TinyGanConfig,
    build=build_gan,
    optimizers=optimizers_gan,
    training_step=step_gan,
    evaluate=evaluate_gan,
    samples=samples_gan,
    predict=predict_gan,
    version="1",
)


@hookimpl
def register_families(register: Any) -> None:
    register(TINY)
    register(TINY_GAN)


@hookimpl
def register_datasets(register: Any) -> None:
    register(BLOBS)

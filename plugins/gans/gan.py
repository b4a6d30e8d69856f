"""`gan`: Goodfellow et al., Generative Adversarial Nets (2014), as in its MNIST experiment: an MLP
generator (two ReLU layers of 1200 units, a sigmoid output) fed uniform noise, a maxout
discriminator (two layers of 240 units x 5 pieces, dropout), Algorithm 1 with k discriminator
steps per generator step, and minibatch SGD with momentum (rate 0.1 divided by 1.000004 per
update, momentum 0.5 rising to 0.7), as the paper's published pylearn2 configuration."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from vision_kernels.engine.run_config import DataConfig, TrainConfig
from vision_kernels.family import Family, lazy

from .config import AdversarialConfig


class SgdConfig(AdversarialConfig):
    """The papers' SGD with momentum (gan and cgan)."""

    lr: float = Field(0.1, gt=0, description="initial SGD learning rate")
    lr_decay: float = Field(1.000004, ge=1, description="the rate is divided by this every update")
    min_lr: float = Field(1e-6, ge=0, description="the rate's floor")
    momentum: float = Field(0.5, ge=0, lt=1, description="initial momentum")
    final_momentum: float = Field(0.7, ge=0, lt=1, description="momentum after momentum_steps updates")
    momentum_steps: int = Field(150000, ge=1, description="updates over which momentum rises linearly")
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout of the discriminator's hidden layers")


class GanConfig(SgdConfig):
    hidden: list[int] = Field([1200, 1200], description="generator hidden ReLU layers")
    maxout: list[tuple[int, int]] = Field(
        [(240, 5), (240, 5)], description="discriminator maxout layers (units, pieces)"
    )
    input_dropout: float = Field(0.2, ge=0, lt=1, description="dropout of the discriminator's input pixels")
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=100, eval_every=1000, sample_every=1000))
    data: DataConfig = Field(default_factory=lambda: DataConfig(name="opencv-digits", batch_size=100))


def build(config: GanConfig) -> dict[str, Any]:
    from .mlp import MaxoutDiscriminator, MlpGenerator

    shape = (config.channels, config.image_size, config.image_size)
    return {
        "generator": MlpGenerator(config.latent, config.hidden, shape),
        "discriminator": MaxoutDiscriminator(
            config.channels * config.image_size**2, config.maxout, config.dropout, config.input_dropout
        ),
    }


def sgd_optimizers(config: SgdConfig, networks: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {
        name: torch.optim.SGD(network.parameters(), lr=config.lr, momentum=config.momentum)
        for name, network in networks.items()
    }


def sgd_training_step(ctx: Any, batch: Any) -> dict[str, float]:
    """Algorithm 1 under the paper's rate and momentum schedule."""
    from .step import adversarial_step, paper_sgd

    for name in ("generator", "discriminator"):
        paper_sgd(ctx.optimizers[name], ctx.step, ctx.config)
    return adversarial_step(ctx, batch)


# evaluate, samples and predict import torch when called, not when the family is registered.
SHARED = {
    "evaluate": lazy(f"{__package__}.evaluation", "evaluate"),
    "samples": lazy(f"{__package__}.predict", "samples"),
    "predict": lazy(f"{__package__}.predict", "predict"),
}

GAN = Family(
    name="gan",
    task="generation",
    description="Goodfellow et al. 2014: MLP generator, maxout discriminator, Algorithm 1 (k steps), SGD + momentum",
    config=GanConfig,
    build=build,
    optimizers=sgd_optimizers,
    training_step=sgd_training_step,
    **SHARED,
    version="1",
)

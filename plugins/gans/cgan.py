"""`cgan`: Mirza and Osindero, Conditional Generative Adversarial Nets (2014), as in its MNIST
experiment: the generator maps uniform z (100-d) through a ReLU layer of 200 units and the one-hot
label through one of 1000, then a joint ReLU layer of 1200 units and a sigmoid output; the
discriminator maps the image to a maxout layer (240 units x 5 pieces) and the label to one of
50 x 5, then a joint maxout layer of 240 x 4 and the output; dropout 0.5 in both. SGD with
momentum: minibatches of 100, rate 0.1 divided by 1.00004 per update down to 1e-6, momentum 0.5
rising to 0.7. Samples are shown one row per class."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from vision_kernels.engine.run_config import DataConfig, TrainConfig
from vision_kernels.family import Family

from .gan import SHARED, SgdConfig, sgd_optimizers, sgd_training_step


class CganConfig(SgdConfig):
    num_classes: int = Field(10, ge=2, description="classes the generator is conditioned on (the data's labels)")
    z_hidden: int = Field(200, ge=1, description="generator: ReLU units for z")
    label_hidden: int = Field(1000, ge=1, description="generator: ReLU units for the label")
    hidden: list[int] = Field([1200], description="generator: joint ReLU layers")
    image_maxout: tuple[int, int] = Field((240, 5), description="discriminator: maxout (units, pieces) for the image")
    label_maxout: tuple[int, int] = Field((50, 5), description="discriminator: maxout (units, pieces) for the label")
    joint_maxout: list[tuple[int, int]] = Field([(240, 4)], description="discriminator: joint maxout layers")
    lr_decay: float = Field(1.00004, ge=1, description="the rate is divided by this every update")
    momentum_steps: int = Field(50000, ge=1, description="updates over which momentum rises linearly")
    # Evaluation (FID, KID, class accuracy over 1000 samples) takes seconds: every 1000 steps, not
    # every epoch (opencv-digits has 40 steps per epoch).
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=100, eval_every=1000, sample_every=1000))
    data: DataConfig = Field(default_factory=lambda: DataConfig(name="opencv-digits", batch_size=100))


def build(config: CganConfig) -> dict[str, Any]:
    from .mlp import MaxoutDiscriminator, MlpGenerator

    shape = (config.channels, config.image_size, config.image_size)
    return {
        "generator": MlpGenerator(
            config.latent, config.hidden, shape, config.dropout, config.num_classes, config.z_hidden,
            config.label_hidden,
        ),
        "discriminator": MaxoutDiscriminator(
            config.channels * config.image_size**2, [config.image_maxout, *config.joint_maxout], config.dropout,
            num_classes=config.num_classes, label_layer=config.label_maxout,
        ),
    }  # fmt: skip


CGAN = Family(
    name="cgan",
    task="generation",
    description="Mirza and Osindero 2014: G and D conditioned on the class label (MLP, maxout), SGD + momentum",
    config=CganConfig,
    build=build,
    optimizers=sgd_optimizers,
    training_step=sgd_training_step,
    **SHARED,
    version="1",
)

"""`dcgan`: Radford, Metz and Chintala, Unsupervised Representation Learning with Deep
Convolutional GANs (2016), following the paper's architecture guidelines:

- strided (transposed) convolutions instead of pooling; no fully connected hidden layers;
- z (100-d) projected and reshaped to 4x4: a 4x4 transposed convolution of the 1x1 z is exactly
  that projection, with a batch norm and ReLU after it;
- batch norm in the generator and the discriminator, except the generator's output layer and the
  discriminator's input layer;
- ReLU in the generator with a Tanh output, LeakyReLU (slope 0.2) in the discriminator;
- weights from N(0, 0.02); Adam with rate 2e-4 and beta1 0.5; minibatches of 128.

The generator's upsampling blocks (transposed convolution + batch norm + ReLU) are the toolkit's
fused module (vision_kernels.nn.ConvTransposeNormAct2d) with `fused=true`, and the same layers as
plain nn.Sequential with `fused=false`; both have the same parameters and state_dict keys, so a
checkpoint loads either way and gives the same output.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from vision_kernels.engine.run_config import DataConfig, TrainConfig
from vision_kernels.family import Family, lazy

from .config import AdversarialConfig
from .gan import SHARED


class DcganConfig(AdversarialConfig):
    tanh: ClassVar[bool] = True
    prior: Literal["uniform", "normal"] = Field("normal", description="z ~ U(-1, 1) or N(0, 1)")
    image_size: int = Field(32, description="a power of two, at least 8 (the paper: 64)")
    generator_width: int = Field(64, ge=1, description="channels of the generator's last hidden layer (doubling up)")
    discriminator_width: int = Field(64, ge=1, description="channels of the discriminator's first layer (doubling)")
    fused: bool = Field(True, description="generator blocks use the fused ConvTranspose+BatchNorm+ReLU module")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate")
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam beta1")
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=10))
    data: DataConfig = Field(default_factory=lambda: DataConfig(name="fashion-mnist", batch_size=128))

    @field_validator("image_size")
    @classmethod
    def _power_of_two(cls, size: int) -> int:
        if size < 8 or size & (size - 1):
            raise ValueError(f"image_size must be a power of two and at least 8 (e.g. 32, 64), got {size}")
        return size


def build(config: DcganConfig) -> dict[str, Any]:
    from .convnets import DcganDiscriminator, DcganGenerator, dcgan_init

    networks = {
        "generator": DcganGenerator(
            config.latent, config.image_size, config.channels, config.generator_width, config.fused
        ),
        "discriminator": DcganDiscriminator(config.image_size, config.channels, config.discriminator_width),
    }
    for network in networks.values():
        network.apply(dcgan_init)
    return networks


def adam_optimizers(config: Any, networks: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {
        name: torch.optim.Adam(network.parameters(), lr=config.lr, betas=(config.beta1, 0.999))
        for name, network in networks.items()
    }


DCGAN = Family(
    name="dcgan",
    task="generation",
    description="Radford et al. 2016: all-convolutional G and D with batch norm, Adam(2e-4, 0.5); fused G blocks",
    config=DcganConfig,
    build=build,
    optimizers=adam_optimizers,
    training_step=lazy(f"{__package__}.step", "adversarial_step"),
    **SHARED,
    version="1",
)

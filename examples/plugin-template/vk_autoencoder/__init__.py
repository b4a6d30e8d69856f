"""A vision-kernels plugin, registered through the `vision_kernels` entry point: the autoencoder
family (register_families) and, to show the other kind of contribution, a backend for an op
(register_kernels). Nothing here imports torch: networks and kernels import it when they run."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vision_kernels.family import Family, Kernel
from vision_kernels.hookspecs import hookimpl

__version__ = "0.1.0"


class Optim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam betas")


class AutoencoderConfig(BaseModel):
    """Defaults: a small convolutional autoencoder for 28x28 grey images."""

    model_config = ConfigDict(extra="forbid")
    channels: int = Field(1, ge=1, description="image channels")
    width: int = Field(16, ge=1, description="channels of the first convolution (doubled once)")
    latent: int = Field(32, ge=1, description="size of the code")
    image_size: int = Field(28, ge=8, description="square image side (a multiple of 4)")
    optim: Optim = Field(default_factory=Optim)


def build(config: AutoencoderConfig) -> dict[str, Any]:
    from vk_autoencoder.model import Autoencoder  # torch is imported here, not at plugin load

    return {"model": Autoencoder(config.channels, config.width, config.latent, config.image_size)}


def optimizers(config: AutoencoderConfig, networks: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {"model": torch.optim.Adam(networks["model"].parameters(), lr=config.optim.lr, betas=config.optim.betas)}


def training_step(ctx: Any, batch: Any) -> dict[str, float]:
    import torch.nn.functional as F

    images = batch[0] if isinstance(batch, (tuple, list)) else batch
    with ctx.autocast():
        loss = F.mse_loss(ctx.networks["model"](images), images)
    ctx.backward(loss, "model")
    ctx.step_optimizer("model")
    return {"loss": float(loss.detach())}


def evaluate(ctx: Any) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    total, count = 0.0, 0
    with torch.no_grad():
        for batch in ctx.batches():
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            total += float(F.mse_loss(ctx.networks["model"](images), images, reduction="sum"))
            count += images.numel()
    return {"mse": total / max(count, 1)}


def predict(networks: dict[str, Any], inputs: Any, config: AutoencoderConfig) -> Any:
    """The reconstructions of the input images. `vk predict` passes a list of [C, H, W] images in
    [0, 1], one per --input file, on the model's device, of any size and with 1 or 3 channels (as
    the files are): each is fitted to the network's channels and image_size, then all run as one
    batch [N, C, image_size, image_size], which vk writes as one PNG per input."""
    import torch

    if not inputs:
        raise ValueError("autoencoder reconstructs images: give them with --input (-i a.png -i b.png)")
    batch = torch.stack([_fit(image, config) for image in inputs])
    with torch.no_grad():
        return networks["model"](batch)


def _fit(image: Any, config: AutoencoderConfig) -> Any:
    """One [C, H, W] image with the network's channels (grey <-> colour) and size."""
    import torch.nn.functional as F

    if image.shape[0] != config.channels:
        if config.channels == 1:
            image = image.mean(0, keepdim=True)
        elif image.shape[0] == 1:
            image = image.expand(config.channels, -1, -1)
        else:
            raise ValueError(f"autoencoder: an input has {image.shape[0]} channels, the model takes {config.channels}")
    size = (config.image_size, config.image_size)
    if tuple(image.shape[-2:]) != size:
        image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    return image.clamp(0, 1)


FAMILY = Family(
    name="autoencoder",
    task="reconstruction",
    description="A small convolutional autoencoder (the vision-kernels plugin template)",
    config=AutoencoderConfig,
    build=build,
    optimizers=optimizers,
    training_step=training_step,
    evaluate=evaluate,
    predict=predict,
    version=__version__,
)


@hookimpl
def register_families(register: Any) -> None:
    register(FAMILY)


def box_convert_torchvision(boxes: Any, in_fmt: str, out_fmt: str) -> Any:
    """box_convert through torchvision.ops, with the reference's arguments and result: a new tensor
    of the input's dtype (half precision computed in float32, as every vision-kernels backend)."""
    import torch
    from torchvision.ops import box_convert

    if in_fmt == out_fmt:
        return boxes.clone()
    compute = boxes.float() if boxes.dtype in (torch.float16, torch.bfloat16) else boxes
    return box_convert(compute, in_fmt, out_fmt).to(boxes.dtype)


# vision_kernels.ops.box_convert(..., backend="torchvision") runs it; `vk kernels` lists it; the
# vision-kernels test suite and benchmarks include it while this plugin is installed.
KERNEL = Kernel(
    op="box_convert",
    backend="torchvision",
    impl=box_convert_torchvision,
    devices=("cpu", "cuda"),
    description="torchvision.ops.box_convert (the plugin template's example backend)",
)


@hookimpl
def register_kernels(register: Any) -> None:
    register(KERNEL)

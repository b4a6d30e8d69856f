"""`unet`: Ronneberger, Fischer and Brox, U-Net: Convolutional Networks for Biomedical Image
Segmentation (2015), as a family: the network (model.py), the border-weighted pixel-wise softmax
cross-entropy (weights.py, loss.py), elastic deformation with shifts, rotations and flips (the data
transforms), and overlap-tile inference (tiling.py).

Defaults follow the paper except where a 2-core CPU forces a choice, each said in its field's
description: `padding=same` (the paper's `valid` costs about 6x the pixels at 128x128 and depth 4;
both are supported and tested), `base_width=16` (the paper: 64), `batch_norm=true` (the paper
predates it; with it the up-convolutions use the fused ConvTranspose+BatchNorm+ReLU module) and Adam
(the paper: SGD with momentum 0.99 on single large tiles; `optimizer=sgd` gives it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vision_kernels.engine.run_config import DataConfig, TrainConfig
from vision_kernels.family import Family, lazy

SHAPES_DATA = {"task": "instance", "size": 128, "count": 400}
AUGMENTATION = [
    "hflip",
    "vflip",
    {"shift": {"fraction": 0.1}},
    {"rotation": {"degrees": 15}},
    {"elastic": {"sigma": 4}},
]


class PredictOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    probabilities: bool = Field(False, description="also write per-class probability maps (grey PNGs)")
    overlay_alpha: float = Field(0.45, ge=0, le=1, description="opacity of the label colours on the input")


class UnetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    in_channels: int = Field(3, ge=1, description="input image channels (data is converted to match)")
    num_classes: int = Field(4, ge=2, description="classes including background (shapes: background + 3)")
    depth: int = Field(4, ge=1, le=6, description="pooling steps of the contracting path (the paper: 4)")
    base_width: int = Field(16, ge=1, description="channels of the first level, doubling per level (the paper: 64)")
    padding: Literal["valid", "same"] = Field(
        "same", description="valid: unpadded convolutions as the paper (572 -> 388); same: output size = input size"
    )
    batch_norm: bool = Field(True, description="batch norm after every convolution; up-convolutions then fused")
    fused: bool = Field(True, description="with batch norm: up-convolutions use the fused ConvTranspose+BN+ReLU")
    channels_last: bool = Field(
        True, description="channels-last (NHWC) weights and activations: faster convolutions, same results"
    )
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout at the end of the contracting path (the paper)")
    loss: Literal["cross_entropy", "dice"] = Field(
        "cross_entropy", description="pixel-wise softmax cross-entropy weighted by the weight map, or Dice loss"
    )
    border_weight: bool = Field(
        True, description="add the paper's border term w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) when instances are known"
    )
    class_balance: float = Field(
        0.5,
        ge=0,
        le=1,
        description="the weight map's class-frequency term w_c: the power of the inverse class frequency (1: full "
        "balance, 0: none; 0.5 measured best on shapes, see weights.py)",
    )
    w0: float = Field(10.0, ge=0, description="weight map: border term amplitude (the paper: 10)")
    sigma: float = Field(5.0, gt=0, description="weight map: border term width in pixels (the paper: 5)")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="adam, or the paper's SGD with high momentum")
    lr: float = Field(1e-3, gt=0, description="learning rate")
    momentum: float = Field(0.99, ge=0, lt=1, description="SGD momentum (the paper: 0.99)")
    ignore_index: int = Field(255, description="mask value that is not a class (no loss, no metrics)")
    tile: int = Field(128, ge=8, description="inference: output tile size of overlap-tile prediction")
    tile_batch: int = Field(4, ge=1, description="inference: tiles per forward pass (bounds the memory)")
    predict: PredictOptions = Field(default_factory=PredictOptions)
    # 36 epochs of the 400 default shapes images (1800 steps), the rate constant for 18 and then
    # linearly to 0: about 9 minutes on a 2-core CPU with native bf16, where auto-bf16 with
    # channels-last makes a step 1.7x as fast as fp32 NCHW (benchmarks/test_unet_step.py).
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=36, precision="auto-bf16", schedule={"name": "linear"}, eval_every=250, sample_every=250
        )  # fmt: skip
    )
    data: DataConfig = Field(
        default_factory=lambda: DataConfig(
            name="shapes", options=dict(SHAPES_DATA), batch_size=8, transforms=list(AUGMENTATION)
        )  # fmt: skip
    )


def build(config: UnetConfig) -> dict[str, Any]:
    from .model import UNet

    return {
        "model": UNet(
            config.in_channels,
            config.num_classes,
            config.depth,
            config.base_width,
            config.padding,
            config.batch_norm,
            config.dropout,
            config.fused,
            config.channels_last,
        )  # fmt: skip
    }


def optimizers(config: UnetConfig, networks: dict[str, Any]) -> dict[str, Any]:
    import torch

    parameters = networks["model"].parameters()
    if config.optimizer == "sgd":
        return {"model": torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum)}
    return {"model": torch.optim.Adam(parameters, lr=config.lr)}


# The steps import torch: only when the engine calls them, not when the family is registered.
STEPS = f"{__package__}.steps"


UNET = Family(
    name="unet",
    task="segmentation",
    description="Ronneberger et al. 2015: U-Net, border-weighted loss, elastic deformation, overlap-tile inference",
    config=UnetConfig,
    build=build,
    optimizers=optimizers,
    training_step=lazy(STEPS, "training_step"),
    evaluate=lazy(STEPS, "evaluate"),
    samples=lazy(STEPS, "samples"),
    predict=lazy(STEPS, "predict"),
    version="1",
)

"""Config fields every adversarial family has (each family subclasses with its paper's defaults)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class PredictConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seeds: int = Field(64, ge=1, description="sample grid: one sample per seed 0..seeds-1")
    interpolate: tuple[int, int] = Field((0, 1), description="latent interpolation between these two seeds")
    steps: int = Field(10, ge=2, description="interpolation: images from one seed's sample to the other's")
    arithmetic: list[str | list[int]] | None = Field(
        None,
        description="vector arithmetic a - b + c: three concepts, each a class name (the k samples the held-out "
        "classifier is surest of) or a list of seeds; none: the first three classes of the classifier",
    )
    arithmetic_k: int = Field(3, ge=1, description="vector arithmetic: samples averaged per concept (the paper: 3)")
    per_class: int = Field(8, ge=1, description="cgan: samples per class in the per-class grids")


class AdversarialConfig(BaseModel):
    """Fields of Algorithm 1 and of the evaluation, shared by gan, dcgan and cgan."""

    model_config = ConfigDict(extra="forbid")
    # The generator's output activation: Tanh (data in [-1, 1]) or sigmoid ([0, 1]); the family's.
    tanh: ClassVar[bool] = False
    latent: int = Field(100, ge=1, description="size of z")
    prior: Literal["uniform", "normal"] = Field("uniform", description="z ~ U(-1, 1) or N(0, 1)")
    image_size: int = Field(28, ge=4, description="generated images are image_size x image_size")
    channels: Literal[1, 3] = Field(1, description="generated image channels (data is converted to match)")
    k: int = Field(1, ge=1, description="discriminator steps per generator step (Algorithm 1's k)")
    generator_loss: Literal["non_saturating", "minimax"] = Field(
        "non_saturating",
        description="minimax: G minimises log(1 - D(G(z))) (Algorithm 1); non_saturating: G maximises log D(G(z)), "
        "the paper's practical choice (strong gradients early in training)",
    )
    eval_samples: int = Field(1000, ge=2, description="real and generated samples for FID/KID (capped by the data)")
    classifier: Literal["auto", "digits", "fashion", "none"] = Field(
        "auto",
        description="the held-out classifier's domain (vision_kernels.metrics.features), for cgan accuracy and "
        "class-named arithmetic; auto: from the dataset's name",
    )
    predict: PredictConfig = Field(default_factory=PredictConfig)

"""The settings of a training run, next to the family's own config.

A run's config is the family's config with two more sections, `train` (the engine: epochs,
precision, schedules, EMA, checkpoints, ...) and `data` (which registered dataset, batch size,
loaders). A family that wants other defaults for them (the paper's epochs or learning-rate
schedule, its usual dataset) declares the fields itself, with these types:

    class DcganConfig(BaseModel):
        ...
        train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=25))
        data: DataConfig = Field(default_factory=lambda: DataConfig(name="fashion-mnist"))

Everything resolves as any config does: defaults < YAML file < key=value (train.epochs=5,
data.batch_size=32). No torch here.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleConfig(_Section):
    """The learning-rate schedule of every optimizer, stepped once per epoch."""

    name: Literal["constant", "linear", "step", "cosine", "plateau"] = Field(
        "constant",
        description="constant; linear (constant for decay_start epochs, then linearly to 0 at the last epoch, as "
        "CycleGAN); step (x gamma every step_size epochs); cosine (to min_lr at the last epoch); plateau "
        "(x factor when the monitored eval metric stops improving for patience evaluations)",
    )
    decay_start: int | None = Field(
        None, ge=0, description="linear: epochs at the initial rate before the decay (default: half of the epochs)"
    )
    step_size: int = Field(30, ge=1, description="step: epochs between decays")
    gamma: float = Field(0.1, gt=0, description="step: decay factor")
    min_lr: float = Field(0.0, ge=0, description="cosine: final rate; plateau: lower bound")
    factor: float = Field(0.1, gt=0, lt=1, description="plateau: decay factor")
    patience: int = Field(10, ge=0, description="plateau: evaluations without improvement before a decay")


class EmaConfig(_Section):
    """An exponential moving average of network weights, used for evaluation, samples and prediction."""

    decay: float | None = Field(None, gt=0, lt=1, description="EMA decay per step (e.g. 0.999); none: no EMA")
    networks: list[str] | None = Field(
        None, description="networks to average (default: the generator if there is one, else every network)"
    )


class CheckpointConfig(_Section):
    every: int = Field(0, ge=0, description="checkpoint every N steps as well (0: at the end of each epoch only)")
    keep_last: int = Field(1, ge=1, description="how many of the latest checkpoints to keep")
    keep_best: bool = Field(True, description="also keep the best checkpoint by `monitor`")
    monitor: str | None = Field(None, description="eval metric that defines 'best' (default: the first one)")
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="min or max of `monitor` is best (auto: min for losses, FID, KID, errors; else max)"
    )


class TrainConfig(_Section):
    """The engine's settings."""

    epochs: int = Field(1, ge=1, description="passes over the training data")
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps (before the epochs end)")
    max_minutes: float | None = Field(
        None,
        gt=0,
        description="stop after this many minutes of training in this process (a time budget; the run "
        "then depends on the machine's speed, unlike max_steps)",
    )
    precision: Literal["auto", "auto-bf16", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="autocast dtype; auto: bf16 on a GPU that supports it, fp32 on CPU; auto-bf16: bf16 wherever "
        "it is native (such GPUs, and CPUs with AVX512-BF16 or AMX), else fp32",
    )
    compile: bool = Field(
        False, description="torch.compile each network (in place: checkpoints keep the eager keys); the first steps "
        "pay the compilation"
    )
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = Field(
        "default", description="torch.compile mode when train.compile is on"
    )
    clip_grad_norm: float | None = Field(None, gt=0, description="clip each optimizer's gradient norm to this")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    ema: EmaConfig = Field(default_factory=EmaConfig)
    evaluate: bool = Field(
        True, description="evaluate during training (every eval_every) and always at the end; false: never"
    )
    eval_every: int = Field(0, ge=0, description="evaluate every N steps (0: at the end of each epoch)")
    sample_every: int = Field(0, ge=0, description="write samples every N steps (0: at the end of each epoch)")
    log_every: int = Field(10, ge=1, description="log running metrics every N steps")
    seed: int = Field(0, description="seed of python, numpy and torch (and the data order)")
    deterministic: bool = Field(False, description="deterministic algorithms only (torch.use_deterministic_algorithms)")
    sync_batchnorm: bool = Field(False, description="distributed runs: convert BatchNorm to SyncBatchNorm")
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    callbacks: list[str] = Field(default_factory=list, description="plugin callbacks to attach, by name")
    tensorboard: bool = Field(True, description="log to runs/.../tensorboard when tensorboard is installed")


class DataConfig(_Section):
    name: str | None = Field(None, description="a registered dataset (`vk plugins list` shows them)")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the dataset's load()")
    batch_size: int = Field(32, ge=1, description="samples per step, per process")
    eval_batch_size: int | None = Field(None, ge=1, description="evaluation batch size (default: batch_size)")
    eval_split: str = Field("val", description="split to evaluate on (the training split if the data has no such)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    shuffle: bool = Field(True, description="shuffle the training data (a new order each epoch, from the seed)")
    drop_last: bool = Field(True, description="drop the last incomplete training batch")
    transforms: list[str | dict[str, Any]] = Field(
        default_factory=list,
        description="joint image/mask/box transforms of the training split, e.g. [hflip, {random_crop: {size: 64}}, "
        "elastic] (vision_kernels.data.transforms)",
    )
    skip_bad: bool = Field(
        False, description="skip unreadable or invalid items (counted in run.json and the report) instead of failing"
    )


# Keys that may change when a run is resumed: they do not change what the weights compute.
RESUMABLE_KEYS = (
    "train.epochs",
    "train.max_steps",
    "train.max_minutes",
    "train.evaluate",
    "train.eval_every",
    "train.compile",
    "train.compile_mode",
    "train.sample_every",
    "train.log_every",
    "train.checkpoint",
    "train.callbacks",
    "train.tensorboard",
    "data.num_workers",
    "data.eval_batch_size",
    "data.skip_bad",
)


@functools.cache
def run_config_model(family_config: type[BaseModel]) -> type[BaseModel]:
    """The family's config with `train` and `data` sections (unless it declares them itself)."""
    fields: dict[str, Any] = {}
    for name, section in (("train", TrainConfig), ("data", DataConfig)):
        declared = family_config.model_fields.get(name)
        if declared is None:
            fields[name] = (section, Field(default_factory=section))
        elif not (isinstance(declared.annotation, type) and issubclass(declared.annotation, section)):
            raise TypeError(
                f"{family_config.__name__}.{name} must be a vision_kernels.engine.{section.__name__}, "
                f"got {declared.annotation!r}"
            )
    if not fields:
        return family_config
    return create_model(f"{family_config.__name__}Run", __base__=family_config, **fields)

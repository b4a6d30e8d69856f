"""What plugins register: model families, datasets, kernel backends and training callbacks.

A Family is everything the CLI and the training engine need to know about a kind of model, with
no torch import needed to describe it: its name and task, a description, a typed configuration
whose defaults are the paper's, and the functions the engine calls. The same contract serves a
supervised model with one network and one optimizer and a GAN with several of each and k
discriminator steps: the family builds named networks and named optimizers, and its training_step
decides what one step does (the engine runs loops, devices, precision, checkpoints, logging).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
# vision_kernels.backends.BACKENDS, spelled out because that module imports torch (a test keeps them equal).
BUILTIN_BACKENDS = ("auto", "native", "triton", "reference")


class PluginError(Exception):
    """A plugin or what it registered is invalid."""


def lazy(module: str, attribute: str) -> Callable[..., Any]:
    """A stand-in for `module.attribute` that imports the module when first called, so that
    registering a family or a dataset imports no torch (`vk --help` stays fast):
    `training_step=lazy("my_plugin.steps", "training_step")`."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), attribute)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attribute
    call.__doc__ = f"{module}.{attribute}, imported when called"
    return call


def check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(
            f"{kind} name must be lower-case letters, digits, '-' or '_', starting with a letter; got {name!r}"
        )


class StepContext(Protocol):
    """What a family's training_step receives from the engine (implemented by the engine). The
    engine zeroes every optimizer's gradients before each step, and puts the networks in train mode."""

    config: Any  # the resolved run config (the family's fields, `train` and `data`)
    networks: Mapping[str, Any]  # name -> torch.nn.Module on the device (DDP-wrapped when distributed)
    optimizers: Mapping[str, Any]  # name -> torch.optim.Optimizer
    device: Any  # torch.device; the engine has moved every tensor of the batch to it
    step: int  # training steps done so far
    epoch: int  # epochs done so far

    def autocast(self) -> AbstractContextManager[None]:
        """The mixed-precision context the engine chose (a no-op in full precision)."""

    def backward(self, loss: Any, optimizer: str) -> None:
        """loss.backward() through the engine's gradient scaler, for the named optimizer."""

    def step_optimizer(self, optimizer: str) -> None:
        """Clip, step (through the scaler) and zero the named optimizer's gradients."""


class EvalContext(Protocol):
    """What a family's evaluate and samples receive (implemented by the engine): the networks in
    eval mode (their EMA copies when train.ema is on), under torch.no_grad, on a random stream
    seeded with train.seed (the same noise every time, and training's stream left untouched)."""

    config: Any
    networks: Mapping[str, Any]
    device: Any
    split: str  # the data split batches() yields

    def batches(self) -> Iterator[Any]:
        """The evaluation split, batch by batch, on the device: collated as training batches
        (data.eval_batch_size items, in order, the last one possibly shorter, no training
        transforms); each call is a new pass."""


@dataclass(frozen=True)
class Family:
    """A model family.

    name, task, description: what `vk families list/info` shows (task: e.g. "classification",
        "localization", "detection", "segmentation", "generation", "translation").
    config: a pydantic BaseModel subclass; every field has a default (the paper's) and a
        description; nested models are allowed. `vk train` resolves it from the defaults, a YAML
        file and key=value overrides.
    build(config) -> {name: nn.Module}: the networks, e.g. {"model": net} or {"generator": G,
        "discriminator": D}.
    The rest are optional (None): `vk train` needs optimizers and training_step, `vk eval`
    evaluate, `vk predict` predict.
    optimizers(config, networks) -> {name: optimizer}: one per independently stepped network.
    training_step(ctx, batch) -> {metric: float}: one training step (a GAN's k discriminator
        steps and its generator step live here), using ctx.backward / ctx.step_optimizer. `batch`
        is the dataset's items collated by default_collate (or its collate_fn), already on
        ctx.device: (image, label) items give [images [B, C, H, W] in [0, 1], labels [B]].
    evaluate(ctx) -> {metric: float}: metrics over ctx.batches() (the evaluation split); the
        first picks the best checkpoint unless train.checkpoint.monitor names another.
    samples(ctx) -> {name: images}: image batches [N, C, H, W] in [0, 1] that show progress (a GAN's
        samples from fixed noise, a segmentation's overlays), written as grids every
        train.sample_every steps; ctx as for evaluate.
    predict(networks, inputs, config) -> outputs: inputs is a list of [C, H, W] images in [0, 1],
        one per --input file as the file is (channels, size), on the networks' device (or None
        when `vk predict` got no --input, e.g. for a generator): fit and stack them before a
        network sees them; class names are not passed (keep them in the config). outputs is an
        image batch [N, C, H, W] in [0, 1], a list of one picture per input, or a mapping of names
        to those and JSON-able values.
    version: stored with checkpoints, so a checkpoint names the family version that wrote it.
    """

    name: str
    task: str
    description: str
    config: type
    build: Callable[[Any], Mapping[str, Any]]
    optimizers: Callable[[Any, Mapping[str, Any]], Mapping[str, Any]] | None = None
    training_step: Callable[[StepContext, Any], Mapping[str, float]] | None = None
    evaluate: Callable[[EvalContext], Mapping[str, float]] | None = None
    predict: Callable[[Mapping[str, Any], Any, Any], Any] | None = None
    samples: Callable[[EvalContext], Mapping[str, Any]] | None = None
    version: str = "0"

    def validate(self) -> None:
        from pydantic import BaseModel

        check_name("family", self.name)
        if not isinstance(self.config, type) or not issubclass(self.config, BaseModel):
            raise PluginError(
                f"family {self.name!r}: config must be a pydantic BaseModel subclass, got {self.config!r}"
            )
        try:
            self.config()
        except Exception as exc:
            raise PluginError(f"family {self.name!r}: every config field needs a default (the paper's): {exc}") from exc
        for attr in ("build", "optimizers", "training_step", "evaluate", "predict", "samples"):
            value = getattr(self, attr)
            if value is not None and not callable(value):
                raise PluginError(f"family {self.name!r}: {attr} must be callable, got {type(value).__name__}")
        if not callable(self.build):
            raise PluginError(f"family {self.name!r}: build must be callable")


@dataclass(frozen=True)
class Dataset:
    """A dataset: load(split="train", **options) returns a torch Dataset of that split (samples
    are what the families' training steps take, e.g. (image, label)); `splits` lists the splits it
    has; tasks it serves."""

    name: str
    description: str
    load: Callable[..., Any]
    tasks: tuple[str, ...] = ()
    splits: tuple[str, ...] = ("train", "val")

    def validate(self) -> None:
        check_name("dataset", self.name)
        if not callable(self.load):
            raise PluginError(f"dataset {self.name!r}: load must be callable")


@dataclass(frozen=True)
class Kernel:
    """Another backend for an op: `impl` takes the arguments of the op's reference function
    (vision_kernels.reference.<op>) and returns the same; `devices` it runs on."""

    op: str
    backend: str
    impl: Callable[..., Any]
    devices: tuple[str, ...] = ("cpu",)
    description: str = ""

    def validate(self) -> None:
        check_name("backend", self.backend)
        if self.backend in BUILTIN_BACKENDS:
            raise PluginError(f"backend name {self.backend!r} is built in; choose another")
        if not callable(self.impl):
            raise PluginError(f"kernel {self.op}/{self.backend}: impl must be callable")


@dataclass(frozen=True)
class Callback:
    """A training callback or logger: create(**options) returns an object with the engine's
    callback methods (see the engine's documentation)."""

    name: str
    description: str
    create: Callable[..., Any]
    kind: str = "callback"  # or "logger"

    def validate(self) -> None:
        check_name("callback", self.name)
        if not callable(self.create):
            raise PluginError(f"callback {self.name!r}: create must be callable")


@dataclass
class Registrations:
    """What one plugin registered, by kind."""

    families: list[Family] = field(default_factory=list)
    datasets: list[Dataset] = field(default_factory=list)
    kernels: list[Kernel] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)

    def names(self) -> dict[str, list[str]]:
        return {
            "families": [f.name for f in self.families],
            "datasets": [d.name for d in self.datasets],
            "kernels": [f"{k.op}/{k.backend}" for k in self.kernels],
            "callbacks": [c.name for c in self.callbacks],
        }

"""What a family's hooks receive: `StepContext` for training_step, `EvalContext` for evaluate and
samples (the contract is vision_kernels.family.StepContext / EvalContext).

A StepContext needs no trainer: it holds the networks, optimizers, device and precision of one
step, so a family's training step can be unit-tested on its own
(vision_kernels.testing.step_context)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from vision_kernels.engine import data as engine_data


class StepContext:
    """One training step: `config`, `networks` (DDP-wrapped in a distributed run), `optimizers`,
    `device` (the batch is already on it), `step` and `epoch` (before this step), `autocast()`,
    `backward(loss, optimizer)` and `step_optimizer(optimizer)`."""

    def __init__(
        self,
        config: Any,
        networks: Mapping[str, nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        device: torch.device,
        *,
        step: int = 0,
        epoch: int = 0,
        amp_dtype: torch.dtype | None = None,
        scaler: torch.amp.GradScaler | None = None,
    ) -> None:
        self.config, self.networks, self.optimizers, self.device = config, networks, optimizers, device
        self.step, self.epoch = step, epoch
        self.amp_dtype, self.scaler = amp_dtype, scaler

    def optimizer(self, name: str) -> torch.optim.Optimizer:
        if name not in self.optimizers:
            raise KeyError(f"no optimizer {name!r}; the family's optimizers are {sorted(self.optimizers)}")
        return self.optimizers[name]

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def backward(self, loss: torch.Tensor, optimizer: str) -> None:
        self.optimizer(optimizer)  # a clear error for a misspelt name, before any work
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step_optimizer(self, optimizer: str) -> None:
        opt = self.optimizer(optimizer)
        if self.scaler is not None:
            self.scaler.unscale_(opt)
        clip = self.config.train.clip_grad_norm
        if clip is not None:
            params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, clip)
        if self.scaler is not None:
            self.scaler.step(opt)
            self.scaler.update()  # after every optimizer step: a GAN's k discriminator steps each get one
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)


class EvalContext:
    """What a family's evaluate and samples get: the networks in eval mode (the EMA copies where
    there are some), and the evaluation data, batch by batch, on the device."""

    def __init__(
        self, config: Any, networks: Mapping[str, nn.Module], device: torch.device, loader: Any, split: str
    ) -> None:
        self.config, self.networks, self.device, self.split = config, networks, device, split
        self._loader = loader

    def batches(self) -> Iterator[Any]:
        if self._loader is None:
            return iter(())
        return (engine_data.to_device(batch, self.device) for batch in self._loader)

"""Learning-rate schedules (stepped once per epoch) and the exponential moving average of weights."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler


class LinearDecay:
    """CycleGAN's rule: the initial rate for `start` epochs, then linearly to 0 after the last epoch.
    A class, not a lambda, so LambdaLR's state_dict can save it."""

    def __init__(self, start: int, epochs: int) -> None:
        self.start, self.epochs = start, epochs

    def __call__(self, epoch: int) -> float:
        return 1.0 - max(0, epoch - self.start) / float(max(self.epochs - self.start, 1))


def make_scheduler(schedule: Any, optimizer: torch.optim.Optimizer, epochs: int, maximize: bool = False) -> Any:
    """The torch scheduler for ScheduleConfig `schedule` (None for constant); `maximize`: the
    plateau schedule's metric is better when larger."""
    if schedule.name == "constant":
        return None
    if schedule.name == "linear":
        start = epochs // 2 if schedule.decay_start is None else schedule.decay_start
        return lr_scheduler.LambdaLR(optimizer, LinearDecay(start, epochs))
    if schedule.name == "step":
        return lr_scheduler.StepLR(optimizer, schedule.step_size, schedule.gamma)
    if schedule.name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1), eta_min=schedule.min_lr)
    if schedule.name == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max" if maximize else "min",
            factor=schedule.factor,
            patience=schedule.patience,
            min_lr=schedule.min_lr,
        )
    raise ValueError(f"train.schedule.name must be constant, linear, step, cosine or plateau; got {schedule.name!r}")


def step_scheduler(scheduler: Any, metric: float | None) -> None:
    """One epoch's step; a plateau scheduler steps on the monitored metric (when evaluated)."""
    if scheduler is None:
        return
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        if metric is not None and math.isfinite(metric):
            scheduler.step(metric)
        return
    scheduler.step()


class Ema:
    """Shadow copies of networks, w_ema = decay * w_ema + (1 - decay) * w after each step; buffers
    (batch-norm statistics) are copied."""

    def __init__(self, networks: Mapping[str, nn.Module], decay: float) -> None:
        self.decay = decay
        self.networks = {name: copy.deepcopy(net).eval().requires_grad_(False) for name, net in networks.items()}

    @torch.no_grad()
    def update(self, networks: Mapping[str, nn.Module]) -> None:
        for name, shadow in self.networks.items():
            source = networks[name]
            shadow_params = list(shadow.parameters())
            torch._foreach_lerp_(shadow_params, [p.detach() for p in source.parameters()], 1.0 - self.decay)
            for s, b in zip(shadow.buffers(), source.buffers(), strict=True):
                s.copy_(b)


def ema_networks(networks: Mapping[str, nn.Module], names: list[str] | None) -> list[str]:
    """Which networks the EMA follows: `names`, or the generator if there is one, or all."""
    if names is None:
        return ["generator"] if "generator" in networks else list(networks)
    unknown = [n for n in names if n not in networks]
    if unknown:
        raise ValueError(f"train.ema.networks names {unknown}; the family's networks are {sorted(networks)}")
    return names

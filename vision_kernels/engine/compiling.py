"""`train.compile`: torch.compile of each network, in place (nn.Module.compile), so parameter
names, state_dict keys and checkpoints stay those of the eager network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn


def compile_networks(networks: Mapping[str, nn.Module], train: Any) -> None:
    """Compiles every network of the run when `train.compile` is on (before DDP wraps them)."""
    if not train.compile:
        return
    for network in networks.values():
        network.compile(mode=None if train.compile_mode == "default" else train.compile_mode)

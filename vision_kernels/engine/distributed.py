"""Distributed data parallel under torchrun: `torchrun --nproc_per_node=N -m vision_kernels.cli train ...`.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (and the rendezvous for several nodes); the engine
then joins the process group (gloo on CPU, nccl on GPUs), gives each process its share of every
epoch, wraps the networks in DistributedDataParallel, and lets rank 0 alone write logs, samples and
checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_environment() -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), size)


def init(world: World, device: torch.device) -> bool:
    """Joins the process group of a distributed run; True when this call created it (its creator
    destroys it: vision_kernels.engine.api.train, not the trainer)."""
    if not world.distributed or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend, timeout=timedelta(minutes=30), **kwargs)
    return True


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def any_true(world: World, flags: Sequence[bool], device: torch.device) -> list[bool]:
    """Each flag true on every rank when it is true on any (so all stop at the same step): one
    all-reduce for all of them."""
    if not world.distributed:
        return [bool(f) for f in flags]
    value = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return [bool(v) for v in value.tolist()]


def gather(world: World, obj: Any) -> list[Any]:
    """Every rank's `obj`, on every rank."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def broadcast(world: World, obj: Any) -> Any:
    """Rank 0's `obj`, on every rank."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(world: World, network: nn.Module, device: torch.device, sync_batchnorm: bool) -> nn.Module:
    """DDP around a network that has trainable parameters (others are used as they are)."""
    if not world.distributed or not any(p.requires_grad for p in network.parameters()):
        return network
    if sync_batchnorm:
        if device.type != "cuda":
            raise ValueError("train.sync_batchnorm=true needs GPUs: torch's SyncBatchNorm runs on CUDA only")
        network = nn.SyncBatchNorm.convert_sync_batchnorm(network)
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(network, device_ids=device_ids)

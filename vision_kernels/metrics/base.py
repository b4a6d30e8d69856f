"""The `Metric` base: accumulate per process, reduce across processes on `compute()`.

Why this shape: in a data-parallel run every rank sees a different shard of the evaluation set. A
metric that averaged per-rank results (mean of means) would weight ranks by count instead of
samples, and AP cannot be averaged at all. So each rank keeps *sufficient statistics*:

- tensor states (sums, counts, confusion matrices): summed with `all_reduce` on compute;
- list states (per-image detections for mAP): concatenated in rank order with
  `all_gather_object`.

The global value is then computed from the reduced state exactly as in a single process. The
reduction returns copies, so `update()` may go on after `compute()` and calling `compute()` twice
does not count anything twice. `compute()` is a collective in a distributed run: every rank of the
group must call it (in the same order as its other metrics' compute calls).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

State = dict[str, Any]


_local_depth = 0


@contextlib.contextmanager
def local_only() -> Iterator[None]:
    """Inside, `compute()` reduces over this process alone, not across ranks: for an evaluation that
    one rank runs while the others wait (the trainer's, under DDP), where a collective that only
    that rank reaches would deadlock."""
    global _local_depth
    _local_depth += 1
    try:
        yield
    finally:
        _local_depth -= 1


def reduces_across_ranks(group: Any = None) -> bool:
    """Whether compute() must reduce across ranks."""
    import torch.distributed as dist

    return _local_depth == 0 and dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def _reduction_device(tensor: Tensor, group: Any) -> torch.device:
    """NCCL reduces CUDA tensors only and Gloo is safest on CPU ones: the state moves there and back."""
    import torch.distributed as dist

    backend = str(dist.get_backend(group))
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    if backend == "gloo":
        return torch.device("cpu")
    return tensor.device


class Metric(ABC):
    """A metric whose state is registered with `add_state` and reduced across ranks on compute.

    Subclasses register their state in `__init__`, add to it in `update`, and turn the (reduced)
    state into numbers in `_compute`. `compute()` returns plain floats (what loggers and
    metrics.jsonl take) unless a metric documents tensors.
    """

    def __init__(self) -> None:
        self._defaults: State = {}
        self._state: State = {}

    # -- state -------------------------------------------------------------------------------------

    def add_state(self, name: str, default: Tensor | list) -> None:
        """Registers a state: a tensor (summed across ranks) or a list (concatenated across ranks)."""
        if not isinstance(default, (Tensor, list)):
            raise TypeError(f"default of state {name!r} must be a Tensor or a list, got {type(default).__name__}")
        if isinstance(default, list) and default:
            raise ValueError(f"a list state starts empty; got {len(default)} items for {name!r}")
        self._defaults[name] = default
        self._state[name] = default.clone() if isinstance(default, Tensor) else []

    def _add(self, name: str, value: Tensor) -> None:
        """Adds `value` to tensor state `name`; the state follows the device of the values added."""
        current = self._state[name]
        if current.device != value.device:
            current = current.to(value.device)
        self._state[name] = current + value.to(current.dtype)

    def _append(self, name: str, item: Any) -> None:
        self._state[name].append(item)

    def reset(self) -> None:
        """Forgets everything accumulated (on this rank)."""
        for name, default in self._defaults.items():
            self._state[name] = default.clone() if isinstance(default, Tensor) else []

    @property
    def local_state(self) -> State:
        """This rank's state (not reduced). Read-only by convention."""
        return self._state

    # -- reduction ---------------------------------------------------------------------------------

    def sync(self, group: Any = None) -> State:
        """The state reduced over `group` (default: the whole world): tensors summed, lists
        concatenated in rank order. Without torch.distributed initialized, or with one process,
        a copy of the local state. A collective: every rank of `group` must call it."""
        if not reduces_across_ranks(group):
            return {k: v.clone() if isinstance(v, Tensor) else list(v) for k, v in self._state.items()}
        import torch.distributed as dist

        reduced: State = {}
        for name, value in self._state.items():  # the same order on every rank (insertion order)
            if isinstance(value, Tensor):
                work = value.detach().to(_reduction_device(value, group), copy=True)
                dist.all_reduce(work, op=dist.ReduceOp.SUM, group=group)
                reduced[name] = work.to(value.device)
            else:
                parts: list[Any] = [None] * dist.get_world_size(group)
                dist.all_gather_object(parts, value, group=group)
                reduced[name] = [item for part in parts for item in part]
        return reduced

    def compute(self, group: Any = None) -> dict[str, Any]:
        """The metric over everything every rank of `group` has seen since the last reset."""
        return self._compute(self.sync(group))

    # -- to implement ------------------------------------------------------------------------------

    @abstractmethod
    def update(self, *args: Any, **kwargs: Any) -> None:
        """Adds a batch to this rank's state."""

    @abstractmethod
    def _compute(self, state: State) -> dict[str, Any]:
        """The metric from a (reduced) state. Must not modify `state`'s tensors in place."""


# -- argument checks shared by the metrics -----------------------------------------------------------


class DtypeError(TypeError, ValueError):
    """A tensor argument of the wrong dtype. Both a TypeError (as vision_kernels.ops raises for
    dtypes) and a ValueError (as the metrics raise for every other bad argument), so callers can
    catch bad metric input with either."""


def check_tensor(value: object, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def is_integer(t: Tensor) -> bool:
    return not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)


def check_integer(t: Tensor, name: str, what: str = "class indices") -> None:
    if not is_integer(t):
        raise DtypeError(f"{name} must be an integer tensor of {what}, got {t.dtype}")


def check_floating(t: Tensor, name: str, what: str) -> None:
    if not t.dtype.is_floating_point:
        raise DtypeError(f"{name} must be a floating-point tensor of {what}, got {t.dtype}")

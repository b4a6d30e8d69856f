"""Which checkpoints a run writes and keeps: `checkpoints/index.json` (last, best, history), the
best by the monitored metric, retention (train.checkpoint.keep_last / keep_best). The format of one
checkpoint is vision_kernels.engine.checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from vision_kernels.engine import checkpoint as ckpt
from vision_kernels.metrics.direction import lower_is_better


class CheckpointManager:
    """Best-checkpoint bookkeeping and writes for one run directory (rank 0 writes; every rank
    keeps the same `best`, since every rank sees the same evaluations)."""

    def __init__(self, run_dir: Path, policy: Any) -> None:
        self.directory = Path(run_dir) / "checkpoints"
        self.policy = policy  # a CheckpointConfig
        self.best: dict[str, Any] = {}  # metric, value, step

    def maximize(self, metric: str) -> bool:
        return self.policy.mode == "max" or (self.policy.mode == "auto" and not lower_is_better(metric))

    def monitor(self, metrics: Mapping[str, float]) -> str | None:
        """The metric that defines the best checkpoint (default: the first the family reports)."""
        return self.policy.monitor or next(iter(metrics), None)

    def is_new_best(self, metrics: Mapping[str, float], step: int) -> bool:
        """Records `metrics` of the weights at `step`; True when they are the best so far (the caller
        then writes this step's checkpoint, so that 'best' names exactly these weights)."""
        metric = self.monitor(metrics)
        if metric is None or metric not in metrics:
            return False
        value, best = metrics[metric], self.best.get("value")
        if best is not None and self.best.get("metric") == metric:
            better = value > best if self.maximize(metric) else value < best
            if not better:
                return False
        self.best = {"metric": metric, "value": value, "step": step}
        return True

    def save(
        self,
        step: int,
        networks: Mapping[str, nn.Module],
        meta: Mapping[str, Any],
        state: Mapping[str, Any],
        ema: Mapping[str, nn.Module] | None,
    ) -> Path:
        """Writes checkpoint `step`, points the index at it (as best too when `best` is this step),
        writes the index once, then prunes what the policy does not keep."""
        path = ckpt.save(self.directory, step, networks, meta, state, ema)
        index = ckpt.read_index(self.directory)
        history = [n for n in index.get("history", []) if n != path.name] + [path.name]
        index["last"] = path.name
        if self.best.get("step") == step:
            index.update(best=path.name, best_metric=self.best["metric"], best_value=self.best["value"])
        keep = set(history[-self.policy.keep_last :])
        if index.get("best"):
            if self.policy.keep_best:
                keep.add(index["best"])
            elif index["best"] not in keep:  # pruned below: the index must not name it
                for key in ("best", "best_metric", "best_value"):
                    index.pop(key, None)
        index["history"] = [n for n in history if n in keep]
        ckpt.write_index(self.directory, index)
        ckpt.prune(self.directory, keep)
        return path

"""The training engine.

    from vision_kernels.engine import train, evaluate, predict, report

`api` (those four: a whole run, as `vk train/eval/predict/report` run it), `trainer` (the loop),
`checkpoint` (one checkpoint's format) and `checkpoint_manager` (index, best, retention),
`contexts` (what a family's hooks receive), `signals` (Ctrl-C), `rundir` (the run directory and
its lock), `distributed` (torchrun), `inference` (a model rebuilt from a checkpoint), `overrides`
(what may change on resume, eval and predict), `run_config` (the `train`/`data` config sections).
Importing this package is cheap: the API (and torch) load on first use."""

from __future__ import annotations

import importlib
from typing import Any

from vision_kernels.engine.run_config import CheckpointConfig, DataConfig, EmaConfig, ScheduleConfig, TrainConfig

_API = ("train", "evaluate", "predict", "report", "RunResult", "resume_config")


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f"{__name__}.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CheckpointConfig", "DataConfig", "EmaConfig", "ScheduleConfig", "TrainConfig", *_API]

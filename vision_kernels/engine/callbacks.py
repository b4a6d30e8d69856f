"""What the trainer tells the world: callbacks (from plugins, and the built-in ones that write
metrics.jsonl, TensorBoard and the progress display).

A callback is any object with some of these methods; the trainer calls those it has:
    on_train_start(trainer)
    on_step(trainer, metrics)         after every training step: that step's metrics
    on_eval(trainer, metrics)         after an evaluation
    on_checkpoint(trainer, path)      after a checkpoint is written
    on_train_end(trainer, status)     status: finished, interrupted or failed
Only rank 0 calls them in a distributed run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

EVENTS = ("on_train_start", "on_step", "on_eval", "on_checkpoint", "on_train_end")


class CallbackList:
    def __init__(self, callbacks: Iterable[Any] = ()) -> None:
        self.callbacks = list(callbacks)

    def __call__(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, event, None)
            if method is not None:
                method(*args)


class MetricsWriter:
    """metrics.jsonl: the running means of the training metrics every log_every steps, and every
    evaluation; one JSON object per line, flushed at once (a crash loses nothing written)."""

    def __init__(self, path: Path, log_every: int) -> None:
        self.path, self.log_every = path, log_every
        self.sums: dict[str, float] = {}
        self.count = 0

    def _write(self, record: Mapping[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def on_step(self, trainer: Any, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1
        if trainer.step % self.log_every == 0:
            self.flush(trainer)

    def flush(self, trainer: Any) -> None:
        if self.count:
            means = {k: v / self.count for k, v in self.sums.items()}
            self._write(
                {
                    "split": "train",
                    "step": trainer.step,
                    "epoch": trainer.epoch,
                    "time": round(trainer.elapsed(), 3),
                    **means,
                }
            )
        self.sums, self.count = {}, 0

    def on_eval(self, trainer: Any, metrics: Mapping[str, float]) -> None:
        self._write(
            {
                "split": "eval",
                "step": trainer.step,
                "epoch": trainer.epoch,
                "time": round(trainer.elapsed(), 3),
                **{k: float(v) for k, v in metrics.items()},
            }
        )

    def on_train_end(self, trainer: Any, status: str) -> None:
        self.flush(trainer)


class TensorBoardLogger:
    """Scalars to run_dir/tensorboard (train/<metric>, eval/<metric>, lr/<optimizer>)."""

    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def on_step(self, trainer: Any, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"train/{key}", value, trainer.step)
        if trainer.step % trainer.config.train.log_every == 0:
            for name, optimizer in trainer.optimizers.items():
                self.writer.add_scalar(f"lr/{name}", optimizer.param_groups[0]["lr"], trainer.step)

    def on_eval(self, trainer: Any, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"eval/{key}", value, trainer.step)

    def on_train_end(self, trainer: Any, status: str) -> None:
        self.writer.close()


def tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def _format(metrics: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """A progress bar with ETA, throughput and running losses on a terminal; with `quiet` (or when
    the output is not a terminal) a plain line every log_every steps instead."""

    def __init__(self, total_steps: int, batch_size: int, quiet: bool, stream: TextIO | None = None) -> None:
        self.total, self.batch_size = total_steps, batch_size
        self.stream = stream or sys.stderr
        self.plain = quiet or not self.stream.isatty()
        self.running: dict[str, float] = {}
        self.started = time.perf_counter()
        self.first_step: int | None = None
        self.bar: Any = None

    def on_train_start(self, trainer: Any) -> None:
        self.first_step = trainer.step
        self.started = time.perf_counter()
        if not self.plain:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[speed]}"),
                TextColumn("{task.fields[metrics]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task(
                "train", total=self.total, completed=trainer.step, epoch=trainer.epoch + 1, speed="", metrics=""
            )

    def _speed(self, trainer: Any) -> tuple[float, float]:
        done = trainer.step - (self.first_step or 0)
        seconds = time.perf_counter() - self.started
        per_second = done / seconds if seconds > 0 else 0.0
        eta = (self.total - trainer.step) / per_second if per_second > 0 else float("nan")
        return per_second, eta

    def on_step(self, trainer: Any, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():  # an exponential running mean: recent, but not noisy
            self.running[key] = value if key not in self.running else 0.9 * self.running[key] + 0.1 * value
        per_second, eta = self._speed(trainer)
        if self.bar is not None:
            self.bar.update(
                self.task,
                completed=trainer.step,
                epoch=trainer.epoch + 1,
                speed=f"{per_second * self.batch_size:.1f} img/s",
                metrics=_format(self.running),
            )
        elif trainer.step % trainer.config.train.log_every == 0 or trainer.step == self.total:
            eta_text = _duration(eta) if eta == eta else "?"
            print(
                f"epoch {trainer.epoch + 1} step {trainer.step}/{self.total} {_format(self.running)} "
                f"{per_second * self.batch_size:.1f} img/s eta {eta_text}",
                file=self.stream,
                flush=True,
            )

    def on_eval(self, trainer: Any, metrics: Mapping[str, float]) -> None:
        line = f"eval at step {trainer.step}: {_format(metrics)}"
        if self.bar is not None:
            self.bar.console.print(line)
        else:
            print(line, file=self.stream, flush=True)

    def on_train_end(self, trainer: Any, status: str) -> None:
        if self.bar is not None:
            self.bar.stop()

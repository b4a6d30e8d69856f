"""The training loop: one for every family.

The family builds named networks and optimizers and says what one training step does
(vision_kernels.family.Family); the trainer runs the steps and, between them, evaluation, samples,
schedules, EMA and checkpoints. Around it: `vision_kernels.engine.api.train` owns the run (world,
device, run directory, resume policy, report); checkpoint_manager keeps the index and retention;
signals handles Ctrl-C; contexts are what the family's hooks receive.

Exact resume: everything a step depends on is in the checkpoint (weights, optimizer, scheduler and
scaler state, every RNG, epoch, step and the position in the epoch's data order, which comes from
seed + epoch alone), and evaluation and samples run on an isolated RNG stream. So a run stopped at
any step and resumed produces bit-identical weights to one that never stopped (on CPU; GPU kernels
may be non-deterministic unless train.deterministic).

Distributed: every rank runs the same sequence of collectives whatever the settings: DDP's inside
each step, one all-reduce of the stop flags after it (rank 0's clock decides train.max_minutes), a
broadcast of rank 0's evaluation (rank 0 evaluates alone, its metrics reduced locally, while the
others wait at that broadcast), and a gather of RNG states plus a barrier per checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vision_kernels.engine import data as engine_data
from vision_kernels.engine import distributed as dist
from vision_kernels.engine import rundir
from vision_kernels.engine.callbacks import (
    CallbackList,
    MetricsWriter,
    Progress,
    TensorBoardLogger,
    tensorboard_available,
)
from vision_kernels.engine.checkpoint import load as load_checkpoint
from vision_kernels.engine.checkpoint_manager import CheckpointManager
from vision_kernels.engine.compiling import compile_networks
from vision_kernels.engine.contexts import EvalContext, StepContext
from vision_kernels.engine.devices import autocast_dtype, native_bf16, resolve_device
from vision_kernels.engine.schedules import Ema, ema_networks, make_scheduler, step_scheduler
from vision_kernels.engine.seeding import isolated_rng, restore_rng_state, rng_state, seed_everything
from vision_kernels.engine.signals import StopOnSignals
from vision_kernels.family import Family

__all__ = ["EvalContext", "FitResult", "StepContext", "Trainer", "autocast_dtype", "native_bf16", "resolve_device"]


@dataclass
class FitResult:
    status: str  # finished or interrupted
    run_dir: Path
    step: int
    epoch: int
    checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)  # the evaluation of the last checkpoint's weights


class Trainer:
    """Trains `family` with `config` (its run config: family fields + train + data) in `run_dir`,
    which must exist. `device` is resolved here unless it is a torch.device already."""

    def __init__(
        self,
        family: Family,
        config: Any,
        run_dir: Path,
        device: str | torch.device = "auto",
        resume: bool = False,
        quiet: bool = False,
        datasets: Mapping[str, Any] | None = None,
        callbacks: Mapping[str, Any] | None = None,
        extra_callbacks: list[Any] | None = None,
        world: dist.World | None = None,
    ) -> None:
        if family.training_step is None or family.optimizers is None:
            raise ValueError(f"family {family.name!r} cannot be trained: it defines no optimizers/training_step")
        self.family, self.config, self.run_dir = family, config, Path(run_dir)
        self.resume, self.quiet = resume, quiet
        self.world = world or dist.from_environment()
        self.device = resolve_device(device, self.world)
        self.amp_dtype = autocast_dtype(config.train.precision, self.device)
        self._datasets, self._callback_specs = datasets, callbacks
        self._extra_callbacks = list(extra_callbacks or [])
        self.step = self.epoch = self.position = 0
        self.last_eval: dict[str, float] = {}
        self.last_eval_step: int | None = None
        self.checkpoints = CheckpointManager(self.run_dir, config.train.checkpoint)
        self.signals = StopOnSignals(announce=self.world.main)
        self._stop_requested = False
        self._started = time.perf_counter()
        self._eval_loader: Any = None
        self._eval_split = ""

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested or self.signals.requested

    def request_stop(self) -> None:
        """Stop after the current step, as Ctrl-C does (for callbacks and embedding programs)."""
        self._stop_requested = True

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    @property
    def optimizer_names(self) -> list[str]:
        return sorted(self.optimizers)

    # ---- set-up ----------------------------------------------------------------------------------------

    def _dataset_entry(self) -> Any:
        from vision_kernels.registry import get_registry

        datasets = get_registry().datasets if self._datasets is None else self._datasets
        name = self.config.data.name
        if name is None:
            raise ValueError(f"data.name is not set; registered datasets: {', '.join(sorted(datasets)) or 'none'}")
        if name not in datasets:
            raise ValueError(f"data.name {name!r} is not a registered dataset; known: {', '.join(sorted(datasets))}")
        return datasets[name]

    def _build(self) -> None:
        c = self.config
        seed_everything(c.train.seed, c.train.deterministic)
        built = dict(self.family.build(c))
        if not built or not all(isinstance(m, nn.Module) for m in built.values()):
            raise TypeError(f"family {self.family.name!r}: build() must return {{name: nn.Module}}, got {built!r}")
        for network in built.values():
            network.to(self.device)
        compile_networks(built, c.train)
        self.networks: dict[str, nn.Module] = built  # unwrapped: what checkpoints hold
        self.train_networks = {
            n: dist.wrap(self.world, m, self.device, c.train.sync_batchnorm) for n, m in built.items()
        }
        self.optimizers = dict(self.family.optimizers(c, self.networks))
        monitor = c.train.checkpoint.monitor
        if c.train.schedule.name == "plateau" and monitor is None:
            raise ValueError("train.schedule.name=plateau follows an eval metric: set train.checkpoint.monitor")
        maximize = self.checkpoints.maximize(monitor) if monitor else False
        self.schedulers = {
            n: make_scheduler(c.train.schedule, o, c.train.epochs, maximize) for n, o in self.optimizers.items()
        }
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self.ema = (
            Ema({n: self.networks[n] for n in ema_networks(self.networks, c.train.ema.networks)}, c.train.ema.decay)
            if c.train.ema.decay is not None
            else None
        )
        entry = self._dataset_entry()
        raw_train = engine_data.load_split(entry, "train", c.data.options, c)
        train_set, skipped = engine_data.prepare(c.data, raw_train, train=True)
        self.data_skipped = {"train": skipped}
        self.loader = engine_data.train_loader(c.data, train_set, c.train.seed, self.world.rank, self.world.size)
        self.sampler: engine_data.ResumableSampler = self.loader.sampler
        self.steps_per_epoch = engine_data.batches_per_epoch(self.sampler, c.data.drop_last)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"data.batch_size {c.data.batch_size} is larger than this process's share of the training data "
                f"({len(self.sampler.inner)} samples) with data.drop_last: no step would run"
            )
        evaluates = self.family.evaluate is not None and c.train.evaluate
        if self.world.main and (evaluates or self.family.samples is not None):
            self._eval_loader, self._eval_split = self._make_eval_loader(entry, raw_train)

    def _make_eval_loader(self, entry: Any, raw_train: Any) -> tuple[Any, str]:
        """The evaluation split (untransformed), or the training split when the data has no such."""
        data = self.config.data
        split = data.eval_split if data.eval_split in getattr(entry, "splits", ("train", "val")) else "train"
        raw = engine_data.load_split(entry, split, data.options, self.config) if split != "train" else raw_train
        dataset, skipped = engine_data.prepare(data, raw, train=False)
        if split != "train":
            self.data_skipped[split] = skipped
        return engine_data.eval_loader(data, dataset), split

    def _restore(self) -> Path:
        checkpoint = load_checkpoint(self.run_dir, self.family.name)
        checkpoint.load_into(self.networks, self.ema.networks if self.ema else None)
        state = checkpoint.state()
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            if scheduler is not None and state["schedulers"].get(name) is not None:
                scheduler.load_state_dict(state["schedulers"][name])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.checkpoints.best = dict(state.get("best", {}))
        self.last_eval = dict(checkpoint.meta.get("metrics", {}))
        self.last_eval_step = self.step if self.last_eval else None
        rng = state["rng"]
        restore_rng_state(rng[self.world.rank] if len(rng) == self.world.size else rng[0])
        return checkpoint.path

    def _callbacks(self) -> CallbackList:
        if not self.world.main:
            return CallbackList()
        callbacks: list[Any] = [MetricsWriter(self.run_dir / "metrics.jsonl", self.config.train.log_every)]
        if self.config.train.tensorboard and tensorboard_available():
            callbacks.append(TensorBoardLogger(self.run_dir / "tensorboard"))
        callbacks.append(Progress(self.total_steps(), self.config.data.batch_size * self.world.size, self.quiet))
        if self.config.train.callbacks:
            from vision_kernels.registry import get_registry

            specs = get_registry().callbacks if self._callback_specs is None else self._callback_specs
            for name in self.config.train.callbacks:
                if name not in specs:
                    raise ValueError(f"train.callbacks names {name!r}; registered callbacks: {sorted(specs)}")
                callbacks.append(specs[name].create())
        return CallbackList(callbacks + self._extra_callbacks)

    def total_steps(self) -> int:
        total = self.config.train.epochs * self.steps_per_epoch
        return min(total, self.config.train.max_steps) if self.config.train.max_steps else total

    def _write_run_start(self, resumed_from: Path | None) -> None:
        rundir.write_config(self.run_dir, self.family.name, self.config)
        rundir.write_environment(self.run_dir, self.device)
        rundir.update_run_json(
            self.run_dir,
            family=self.family.name,
            family_version=self.family.version,
            name=self.run_dir.name,
            status="running",
            started=rundir.now(),
            ended=None,
            device=str(self.device),
            world_size=self.world.size,
            step=self.step,
            epoch=self.epoch,
            resumed_from=str(resumed_from) if resumed_from else None,
            data_skipped={split: {"count": len(items), "items": [list(i) for i in items[:20]]}
                          for split, items in self.data_skipped.items()},
        )  # fmt: skip
        for split, items in self.data_skipped.items():
            if items:
                shown = "; ".join(f"{file}: {problem}" for file, problem in items[:3])
                more = "; ..." if len(items) > 3 else ""
                print(f"warning: data.skip_bad skipped {len(items)} bad item(s) of the {split} split ({shown}{more})",
                      file=sys.stderr, flush=True)  # fmt: skip

    # ---- the loop --------------------------------------------------------------------------------------

    def fit(self) -> FitResult:
        """Trains to the end (epochs, max_steps or max_minutes, whichever comes first), evaluates the
        final weights, and writes the last checkpoint. The process group (if any) is the caller's."""
        dist.init(self.world, self.device)
        self._build()
        resumed_from = self._restore() if self.resume else None
        if self.world.main:
            self._write_run_start(resumed_from)
        self.callbacks = self._callbacks()
        status = "failed"
        self.callbacks("on_train_start", self)
        try:
            with self.signals:
                status = self._loop()
            metrics = self.last_eval if self.last_eval_step == self.step else {}
            return FitResult(status, self.run_dir, self.step, self.epoch, self.last_checkpoint, metrics)
        finally:
            if self.world.main:
                rundir.update_run_json(self.run_dir, status=status, ended=rundir.now(), step=self.step,
                                       epoch=self.epoch)  # fmt: skip
                self.callbacks("on_train_end", self, status)

    def _loop(self) -> str:
        self.last_checkpoint: Path | None = None
        if self.step >= self.total_steps() or self.epoch >= self.config.train.epochs:
            return self._nothing_to_do()
        while True:
            self.sampler.set_epoch(self.epoch, self.position)
            if self.loader.generator is not None:  # worker seeds: from seed + epoch, not from history
                self.loader.generator.manual_seed(self.config.train.seed + self.epoch)
            for batch in self.loader:
                metrics = self._train_step(batch)
                self.step += 1
                self.position += 1
                self.callbacks("on_step", self, metrics)
                status = self._between_steps()
                if status is not None:
                    return status
                if self.position == 0:
                    break  # the epoch ended
            else:  # never expected; without this the epoch would restart forever
                raise RuntimeError(f"the training loader ended after {self.position} of {self.steps_per_epoch} batches")

    def _nothing_to_do(self) -> str:
        """A resume whose budget is already spent: evaluate and checkpoint the weights as they are."""
        if self.last_eval_step != self.step:
            self.evaluate()
        self.last_checkpoint = self._checkpoint()
        return "finished"

    def _due(self, every: int, epoch_done: bool) -> bool:
        """An interval setting: every N steps, or 0 for the end of each epoch."""
        return epoch_done if every == 0 else self.step % every == 0

    def _between_steps(self) -> str | None:
        """What follows a step, in the same order on every rank: stop flags, evaluation, samples,
        the end of the epoch, the checkpoint. Returns the run's status when it ends here."""
        train = self.config.train
        interrupted, out_of_time = self._stop_flags()
        epoch_done = self.position >= self.steps_per_epoch
        final = interrupted or out_of_time or self.step >= self.total_steps()
        final = final or (epoch_done and self.epoch + 1 >= train.epochs)
        if out_of_time and not self.quiet and self.world.main:
            print(f"train.max_minutes={train.max_minutes} reached at step {self.step}", flush=True)
        new_best = False
        if not interrupted:  # Ctrl-C: checkpoint now, evaluate later (vk eval, or the resumed run)
            if final or self._due(train.eval_every, epoch_done):
                new_best = self.evaluate()
            if final or self._due(train.sample_every, epoch_done):
                self.write_samples()
        if epoch_done:
            self.epoch += 1
            self.position = 0
            value = self.last_eval.get(train.checkpoint.monitor) if train.checkpoint.monitor else None
            for scheduler in self.schedulers.values():
                step_scheduler(scheduler, value)
        every = train.checkpoint.every
        if final or epoch_done or new_best or (every and self.step % every == 0):
            self.last_checkpoint = self._checkpoint()
        if final:
            return "interrupted" if interrupted else "finished"
        return None

    def _stop_flags(self) -> tuple[bool, bool]:
        """(stop requested on any rank, rank 0's time budget spent): one collective per step."""
        max_minutes = self.config.train.max_minutes
        out_of_time = bool(max_minutes) and self.world.main and self.elapsed() >= 60 * max_minutes
        interrupted, out_of_time = dist.any_true(self.world, [self.stop_requested, out_of_time], self.device)
        return interrupted, out_of_time

    def _train_step(self, batch: Any) -> dict[str, float]:
        for network in self.train_networks.values():
            network.train()
        for optimizer in self.optimizers.values():  # whatever an earlier step left (a GAN's G loss reaches D)
            optimizer.zero_grad(set_to_none=True)
        batch = engine_data.to_device(batch, self.device)
        ctx = StepContext(
            self.config, self.train_networks, self.optimizers, self.device,
            step=self.step, epoch=self.epoch, amp_dtype=self.amp_dtype, scaler=self.scaler,
        )  # fmt: skip
        metrics = self.family.training_step(ctx, batch) or {}
        if self.ema is not None:
            self.ema.update(self.networks)
        out = {k: float(v.detach() if isinstance(v, torch.Tensor) else v) for k, v in metrics.items()}
        bad = [k for k, v in out.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(
                f"training step {self.step + 1}: {', '.join(bad)} is not finite ({out}); lower the learning rate, "
                "clip gradients (train.clip_grad_norm) or use train.precision=fp32"
            )
        return out

    # ---- evaluation and samples (rank 0) ----------------------------------------------------------------

    def _eval_networks(self) -> dict[str, nn.Module]:
        networks = dict(self.networks)
        if self.ema is not None:
            networks.update(self.ema.networks)
        return networks

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[EvalContext]:
        """The networks in eval mode on the isolated stream, metrics reduced on this rank alone."""
        from vision_kernels.metrics.base import local_only

        networks = self._eval_networks()
        modes = {name: net.training for name, net in networks.items()}
        for net in networks.values():
            net.eval()
        try:
            with isolated_rng(self.config.train.seed), torch.no_grad(), local_only():
                yield EvalContext(self.config, networks, self.device, self._eval_loader, self._eval_split)
        finally:
            for name, net in networks.items():
                net.train(modes[name])

    def evaluate(self) -> bool:
        """Runs the family's evaluate on rank 0 and gives its metrics to every rank; True when they
        are the best so far (this step's checkpoint is then written and marked best)."""
        if self.family.evaluate is None or not self.config.train.evaluate:
            return False
        metrics: dict[str, float] | None = None
        if self.world.main:
            with self._evaluating() as ctx:
                metrics = {k: float(v) for k, v in (self.family.evaluate(ctx) or {}).items()}
        metrics = dist.broadcast(self.world, metrics)
        self.last_eval, self.last_eval_step = metrics, self.step
        new_best = self.checkpoints.is_new_best(metrics, self.step)
        self.callbacks("on_eval", self, metrics)
        return new_best

    def write_samples(self) -> list[Path]:
        if self.family.samples is None or not self.world.main:
            return []
        from vision_kernels.viz.grid import save_image

        with self._evaluating() as ctx:
            images = self.family.samples(ctx) or {}
        (self.run_dir / "samples").mkdir(exist_ok=True)
        paths = []
        for name, tensor in images.items():
            path = self.run_dir / "samples" / f"{name}-step-{self.step:08d}.png"
            save_image(tensor.detach().float().cpu(), path)
            paths.append(path)
        return paths

    # ---- checkpoints -----------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: (s.state_dict() if s is not None else None) for n, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": dist.gather(self.world, rng_state()),
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "best": dict(self.checkpoints.best),
        }

    def _checkpoint(self) -> Path | None:
        """This step's checkpoint (written by rank 0; every rank contributes its RNG state). Its
        metrics are those of these weights, or none when they were not evaluated."""
        state = self._state()  # every rank: the RNG states are gathered
        path = None
        if self.world.main:
            meta = {
                "family": self.family.name,
                "family_version": self.family.version,
                "config": self.config.model_dump(mode="json"),
                "epoch": self.epoch,
                "position": self.position,
                "metrics": self.last_eval if self.last_eval_step == self.step else {},
                "created": rundir.now(),
            }
            path = self.checkpoints.save(self.step, self.networks, meta, state, self.ema.networks if self.ema else None)
            self.callbacks("on_checkpoint", self, path)
        dist.barrier(self.world)
        return path

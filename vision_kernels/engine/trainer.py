"""The training engine: one loop for every family.

The family builds named networks and optimizers and says what one training step does
(vision_kernels.family.Family); the trainer does the rest: devices and distributed data parallel,
mixed precision, gradient clipping, learning-rate schedules, EMA, data order, evaluation, samples,
metrics, checkpoints, resume, and stopping cleanly on Ctrl-C.

Exact resume: everything a step depends on is in the checkpoint (weights, optimizer, scheduler and
scaler state, every RNG, epoch, step and the position in the epoch's data order, which comes from
seed + epoch alone), and evaluation and samples run on an isolated RNG stream. So a run stopped at
any step and resumed produces bit-identical weights to one that never stopped (on CPU; GPU kernels
may be non-deterministic unless train.deterministic).
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vision_kernels.engine import checkpoint as ckpt
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
from vision_kernels.engine.compiling import compile_networks
from vision_kernels.engine.schedules import Ema, ema_networks, make_scheduler, step_scheduler
from vision_kernels.engine.seeding import isolated_rng, restore_rng_state, rng_state, seed_everything
from vision_kernels.family import Family
from vision_kernels.viz.report import lower_is_better


def resolve_device(requested: str, world: dist.World) -> torch.device:
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be cpu, cuda or auto; got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA GPU here (use --device cpu or auto)")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", world.local_rank if world.distributed else torch.cuda.current_device())
    return torch.device("cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 arithmetic runs in hardware on the device: a GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (elsewhere CPU bf16 is emulated and slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None: full precision. auto: bf16 on a GPU that has it, fp32 on CPU. auto-bf16: bf16 wherever
    native_bf16(device), else fp32."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" and native_bf16(device) else None
    if precision == "auto-bf16":
        return torch.bfloat16 if native_bf16(device) else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class StepContext:
    """What a family's training_step gets (vision_kernels.family.StepContext)."""

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer
        self.config = trainer.config
        self.networks = trainer.train_networks
        self.optimizers = trainer.optimizers
        self.device = trainer.device

    @property
    def step(self) -> int:
        return self._trainer.step

    @property
    def epoch(self) -> int:
        return self._trainer.epoch

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        dtype = self._trainer.amp_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def backward(self, loss: torch.Tensor, optimizer: str) -> None:
        self._trainer._optimizer(optimizer)  # a clear error for a misspelt name, before any work
        scaler = self._trainer.scaler
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def step_optimizer(self, optimizer: str) -> None:
        t = self._trainer
        opt = t._optimizer(optimizer)
        if t.scaler is not None:
            t.scaler.unscale_(opt)
        if t.config.train.clip_grad_norm is not None:
            params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, t.config.train.clip_grad_norm)
        if t.scaler is not None:
            t.scaler.step(opt)
            t.scaler.update()  # after every optimizer step: a GAN's k discriminator steps each get one
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)


class EvalContext:
    """What a family's evaluate and samples get (vision_kernels.family.EvalContext): the networks
    in eval mode (the EMA copies where there are some), and the evaluation data on the device."""

    def __init__(
        self, config: Any, networks: Mapping[str, nn.Module], device: torch.device, loader: Any, split: str
    ) -> None:
        self.config, self.networks, self.device, self.split = config, networks, device, split
        self._loader = loader

    def batches(self) -> Iterator[Any]:
        if self._loader is None:
            return iter(())
        return (engine_data.to_device(batch, self.device) for batch in self._loader)


@dataclass
class RunResult:
    status: str  # finished or interrupted
    run_dir: Path
    step: int
    epoch: int
    checkpoint: Path | None
    metrics: dict[str, float]


class Trainer:
    """Trains `family` with `config` (its run config: family fields + train + data) in `run_dir`."""

    def __init__(
        self,
        family: Family,
        config: Any,
        run_dir: Path,
        device: str = "auto",
        resume: bool = False,
        quiet: bool = False,
        datasets: Mapping[str, Any] | None = None,
        callbacks: Mapping[str, Any] | None = None,
        extra_callbacks: list[Any] | None = None,
    ) -> None:
        if family.training_step is None or family.optimizers is None:
            raise ValueError(f"family {family.name!r} cannot be trained: it defines no optimizers/training_step")
        self.family, self.config, self.run_dir = family, config, Path(run_dir)
        self.resume, self.quiet = resume, quiet
        self.world = dist.from_environment()
        self.device = resolve_device(device, self.world)
        self.amp_dtype = autocast_dtype(config.train.precision, self.device)
        self._datasets, self._callback_specs = datasets, callbacks
        self._extra_callbacks = list(extra_callbacks or [])
        self.step = self.epoch = self.position = 0
        self.best: dict[str, Any] = {}
        self.last_eval: dict[str, float] = {}
        self.stop_requested = False
        self._started = time.perf_counter()
        self._eval_loader: Any = None
        self._eval_split = ""

    # ---- set-up ----------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def _optimizer(self, name: str) -> torch.optim.Optimizer:
        if name not in self.optimizers:
            raise KeyError(f"no optimizer {name!r}; the family's optimizers are {sorted(self.optimizers)}")
        return self.optimizers[name]

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
        self.train_networks: dict[str, nn.Module] = {}
        self.networks: dict[str, nn.Module] = {}  # unwrapped: what checkpoints hold
        for network in built.values():
            network.to(self.device)
        compile_networks(built, c.train)
        for name, network in built.items():
            wrapped = dist.wrap(self.world, network, self.device, c.train.sync_batchnorm)
            self.train_networks[name] = wrapped
            self.networks[name] = getattr(wrapped, "module", wrapped)
        self.optimizers = dict(self.family.optimizers(c, self.networks))
        plateau_metric = c.train.checkpoint.monitor
        if c.train.schedule.name == "plateau" and plateau_metric is None:
            raise ValueError("train.schedule.name=plateau follows an eval metric: set train.checkpoint.monitor")
        maximize = self._maximize(plateau_metric) if plateau_metric else False
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
        raw_train = engine_data.load_split(entry, "train", c.data.options)
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
        if self.family.evaluate is not None or self.family.samples is not None:
            self._eval_loader, self._eval_split = self._make_eval_loader(entry, raw_train)

    def _make_eval_loader(self, entry: Any, raw_train: Any) -> tuple[Any, str]:
        """The evaluation split (untransformed), or the training split when the data has no such."""
        data = self.config.data
        split = data.eval_split if data.eval_split in getattr(entry, "splits", ("train", "val")) else "train"
        raw = engine_data.load_split(entry, split, data.options) if split != "train" else raw_train
        dataset, skipped = engine_data.prepare(data, raw, train=False)
        if split != "train":
            self.data_skipped[split] = skipped
        return engine_data.eval_loader(data, dataset), split

    def _restore(self) -> Path:
        checkpoint = ckpt.load(self.run_dir, self.family.name)
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
        self.best = state.get("best", {})
        self.last_eval = dict(checkpoint.meta.get("metrics", {}))
        rng = state["rng"]
        restore_rng_state(rng[self.world.rank] if len(rng) == self.world.size else rng[0])
        return checkpoint.path

    def _callbacks(self) -> CallbackList:
        if not self.world.main:
            return CallbackList()
        total = self.total_steps()
        callbacks: list[Any] = [MetricsWriter(self.run_dir / "metrics.jsonl", self.config.train.log_every)]
        if self.config.train.tensorboard and tensorboard_available():
            callbacks.append(TensorBoardLogger(self.run_dir / "tensorboard"))
        callbacks.append(Progress(total, self.config.data.batch_size * self.world.size, self.quiet))
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

    # ---- the loop --------------------------------------------------------------------------------------

    def fit(self) -> RunResult:
        dist.init(self.world, self.device)
        self._build()
        resumed_from = self._restore() if self.resume else None
        if self.world.main:
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
                    print(
                        f"warning: data.skip_bad skipped {len(items)} bad item(s) of the {split} split ({shown}"
                        f"{'; ...' if len(items) > 3 else ''})",
                        file=sys.stderr,
                        flush=True,
                    )
        self.callbacks = self._callbacks()
        status, last = "failed", None
        self.callbacks("on_train_start", self)
        try:
            with self._stop_on_signals():
                status = self._loop()
            last = self._checkpoint()
            return RunResult(status, self.run_dir, self.step, self.epoch, last, self.last_eval)
        finally:
            if self.world.main:
                rundir.update_run_json(
                    self.run_dir, status=status, ended=rundir.now(), step=self.step, epoch=self.epoch
                )
                self.callbacks("on_train_end", self, status)
            dist.barrier(self.world)
            dist.shutdown()

    def _loop(self) -> str:
        train = self.config.train
        total = self.total_steps()
        while self.epoch < train.epochs and self.step < total:
            self.sampler.set_epoch(self.epoch, self.position)
            if self.loader.generator is not None:  # worker seeds: from seed + epoch, not from history
                self.loader.generator.manual_seed(train.seed + self.epoch)
            for batch in self.loader:
                metrics = self._train_step(batch)
                self.step += 1
                self.position += 1
                self.callbacks("on_step", self, metrics)
                if train.eval_every and self.step % train.eval_every == 0:
                    self.evaluate()
                if train.sample_every and self.step % train.sample_every == 0:
                    self.write_samples()
                if train.checkpoint.every and self.step % train.checkpoint.every == 0:
                    self._checkpoint()
                if dist.any_true(self.world, self.stop_requested, self.device):
                    return "interrupted"
                if train.max_minutes and dist.any_true(
                    self.world, self.elapsed() >= 60 * train.max_minutes, self.device
                ):
                    return self._out_of_time()
                if self.step >= total:
                    break
            if self.position < self.steps_per_epoch:
                break  # max_steps ended the run mid-epoch
            self.epoch += 1
            self.position = 0
            self._end_of_epoch()
        return "finished"

    def _out_of_time(self) -> str:
        """train.max_minutes is spent: a finished run (evaluated, checkpointed by fit) that stopped
        where the clock said, mid-epoch if so (a resume continues from there)."""
        if not self.quiet and self.world.main:
            print(f"train.max_minutes={self.config.train.max_minutes} reached at step {self.step}", flush=True)
        self.evaluate()
        self.write_samples()
        return "finished"

    def _train_step(self, batch: Any) -> dict[str, float]:
        for network in self.train_networks.values():
            network.train()
        for optimizer in self.optimizers.values():  # whatever an earlier step left (a GAN's G loss reaches D)
            optimizer.zero_grad(set_to_none=True)
        batch = engine_data.to_device(batch, self.device)
        metrics = self.family.training_step(StepContext(self), batch) or {}
        if self.ema is not None:
            self.ema.update(self.networks)
        out = {k: float(v) for k, v in metrics.items()}
        bad = [k for k, v in out.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(
                f"training step {self.step + 1}: {', '.join(bad)} is not finite ({out}); lower the learning rate, "
                "clip gradients (train.clip_grad_norm) or use train.precision=fp32"
            )
        return out

    def _end_of_epoch(self) -> None:
        train = self.config.train
        if train.eval_every == 0:
            self.evaluate()
        if train.sample_every == 0:
            self.write_samples()
        monitor = self.config.train.checkpoint.monitor
        value = self.last_eval.get(monitor) if monitor else None
        for scheduler in self.schedulers.values():
            step_scheduler(scheduler, value)
        self._checkpoint()

    def _eval_networks(self) -> dict[str, nn.Module]:
        networks = dict(self.networks)
        if self.ema is not None:
            networks.update(self.ema.networks)
        return networks

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[dict[str, nn.Module]]:
        networks = self._eval_networks()
        modes = {name: net.training for name, net in networks.items()}
        for net in networks.values():
            net.eval()
        try:
            with isolated_rng(self.config.train.seed), torch.no_grad():
                yield networks
        finally:
            for name, net in networks.items():
                net.train(modes[name])

    def evaluate(self) -> dict[str, float]:
        """Runs the family's evaluate on rank 0 (the others wait)."""
        if self.family.evaluate is None:
            return {}
        if self.world.main:
            with self._evaluating() as networks:
                ctx = EvalContext(self.config, networks, self.device, self._eval_loader, self._eval_split)
                metrics = {k: float(v) for k, v in (self.family.evaluate(ctx) or {}).items()}
            self.last_eval = metrics
            self._update_best(metrics)
            self.callbacks("on_eval", self, metrics)
        self.last_eval = dist.gather(self.world, self.last_eval)[0]
        return self.last_eval

    def write_samples(self) -> list[Path]:
        if self.family.samples is None or not self.world.main:
            return []
        from vision_kernels.viz.grid import save_image

        with self._evaluating() as networks:
            ctx = EvalContext(self.config, networks, self.device, self._eval_loader, self._eval_split)
            images = self.family.samples(ctx) or {}
        (self.run_dir / "samples").mkdir(exist_ok=True)
        paths = []
        for name, tensor in images.items():
            path = self.run_dir / "samples" / f"{name}-step-{self.step:08d}.png"
            save_image(tensor.detach().float().cpu(), path)
            paths.append(path)
        return paths

    def _maximize(self, metric: str) -> bool:
        mode = self.config.train.checkpoint.mode
        return mode == "max" or (mode == "auto" and not lower_is_better(metric))

    def _monitor(self) -> tuple[str | None, bool]:
        """The metric that defines the best checkpoint (default: the first the family reports)."""
        monitor = self.config.train.checkpoint.monitor or next(iter(self.last_eval), None)
        return (monitor, self._maximize(monitor)) if monitor else (None, False)

    def _update_best(self, metrics: Mapping[str, float]) -> None:
        monitor, maximize = self._monitor()
        if monitor is None or monitor not in metrics:
            return
        value = metrics[monitor]
        best = self.best.get("value")
        if best is None or (value > best if maximize else value < best):
            self.best = {"metric": monitor, "value": value, "step": self.step, "pending": True}

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
            "best": {k: v for k, v in self.best.items() if k != "pending"},
        }

    def _checkpoint(self) -> Path | None:
        """Writes the checkpoint of this step (rank 0), updates the index, prunes old ones."""
        state = self._state()  # every rank: the RNG states are gathered
        if not self.world.main:
            dist.barrier(self.world)
            return None
        directory = self.run_dir / "checkpoints"
        meta = {
            "family": self.family.name,
            "family_version": self.family.version,
            "config": self.config.model_dump(mode="json"),
            "epoch": self.epoch,
            "position": self.position,
            "metrics": self.last_eval,
            "created": rundir.now(),
        }
        path = ckpt.save(directory, self.step, self.networks, meta, state, self.ema.networks if self.ema else None)
        index = ckpt.read_index(directory)
        history = [n for n in index.get("history", []) if n != path.name] + [path.name]
        index.update(last=path.name, history=history)
        if self.best.pop("pending", False):
            index.update(best=path.name, best_metric=self.best["metric"], best_value=self.best["value"])
        ckpt.write_index(directory, index)
        keep = set(history[-self.config.train.checkpoint.keep_last :])
        if self.config.train.checkpoint.keep_best and index.get("best"):
            keep.add(index["best"])
        index["history"] = [n for n in history if n in keep]
        ckpt.write_index(directory, index)
        ckpt.prune(directory, keep)
        self.callbacks("on_checkpoint", self, path)
        dist.barrier(self.world)
        return path

    # ---- Ctrl-C ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and ends the run as
        interrupted; a second Ctrl-C aborts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True
            if self.world.main:
                print(
                    f"\n{signal.Signals(signum).name}: stopping after this step and writing a checkpoint "
                    "(Ctrl-C again to abort without one)",
                    file=sys.stderr,
                    flush=True,
                )

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def request_stop(self) -> None:
        """Stop after the current step, as Ctrl-C does (for callbacks and embedding programs)."""
        self.stop_requested = True

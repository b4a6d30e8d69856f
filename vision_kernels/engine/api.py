"""The Python API of a run, which the CLI's `vk train / eval / predict / report` only wrap:

    from vision_kernels.engine import train, evaluate, predict

    result = train("dcgan", "train.epochs=5", "data.name=digits", name="first")
    result.run_dir, result.checkpoint, result.final_metrics, result.steps, result.epochs
    evaluate(result.run_dir, "data.batch_size=256", checkpoint="best", split="val")
    predict(result.run_dir, ["a.png"], "out/", "predict.seeds=16")

`train` owns the whole run: it resolves the config (or, with `resume`, the run's own config plus
the overrides a resume may change), sets up the world (torchrun's process group) and the device
once, creates the run directory (rank 0, under its lock), trains, evaluates the final weights,
writes report.html, and tears down what it set up.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vision_kernels.config import ConfigError, resolve
from vision_kernels.engine import distributed as dist
from vision_kernels.engine import overrides as override_policy
from vision_kernels.engine import rundir
from vision_kernels.engine.devices import resolve_device
from vision_kernels.engine.run_config import RESUMABLE_KEYS, run_config_model
from vision_kernels.family import Family


@dataclass
class RunResult:
    status: str  # finished or interrupted
    run_dir: Path
    checkpoint: Path | None  # the last checkpoint (None on ranks other than 0)
    final_metrics: dict[str, float] = field(default_factory=dict)  # the evaluation of that checkpoint's weights
    steps: int = 0
    epochs: int = 0
    report: Path | None = None


def _family(family: str | Family) -> Family:
    if isinstance(family, Family):
        return family
    from vision_kernels.registry import get_registry

    return get_registry().family(family)


def resume_config(family: Family, run_dir: Path, overrides: Iterable[str] = ()) -> Any:
    """The run's own config.yaml with the overrides a resume may change (equal values always pass)."""
    stored_family, stored = rundir.read_config(run_dir)
    if stored_family != family.name:
        raise ValueError(f"--resume {str(run_dir)!r} is a run of family {stored_family!r}, not {family.name!r}")
    return override_policy.apply(
        run_config_model(family.config), stored, overrides, RESUMABLE_KEYS, "when resuming",
        repr(str(Path(run_dir) / "config.yaml")),
    )  # fmt: skip


def train(
    family: str | Family,
    *overrides: str,
    config: str | Path | None = None,
    name: str | None = None,
    device: str | torch.device = "auto",
    resume: str | Path | None = None,
    runs_dir: str | Path | None = None,
    quiet: bool = False,
    callbacks: Sequence[Any] = (),
) -> RunResult:
    """Trains `family` (a name or a Family): defaults < `config` (YAML) < `overrides` ("key=value"),
    in a new run directory runs_dir/FAMILY/NAME (runs_dir: $VK_RUNS_DIR or ./runs), or continues
    the run in `resume`. Every rank of a torchrun job calls it; rank 0 gets the checkpoint."""
    from vision_kernels.engine.trainer import Trainer

    spec = _family(family)
    if resume is not None:
        if config is not None:
            raise ValueError("config cannot be combined with resume: the run's own config.yaml is used")
        resolved = resume_config(spec, Path(resume), overrides)
    else:
        try:
            resolved = resolve(run_config_model(spec.config), config, overrides)
        except ConfigError as exc:
            exc.hint = f"`vk families info {spec.name}` lists every key with its type and default"
            raise
    world = dist.from_environment()
    target = resolve_device(device, world)
    created_group = dist.init(world, target)
    try:
        with contextlib.ExitStack() as stack:
            run_dir = _open_run_dir(stack, world, spec.name, name, runs_dir, resume)
            trainer = Trainer(spec, resolved, run_dir, device=target, resume=resume is not None, quiet=quiet,
                              extra_callbacks=list(callbacks), world=world)  # fmt: skip
            try:
                fit = trainer.fit()
            except BaseException:
                if world.main and resume is None:
                    rundir.remove_if_unstarted(run_dir)  # a failed start must not block the name
                raise
            report = write_report(run_dir) if world.main else None
        dist.barrier(world)
    finally:
        if created_group:
            dist.shutdown()
    return RunResult(fit.status, run_dir, fit.checkpoint, fit.metrics, fit.step, fit.epoch, report)


def _open_run_dir(
    stack: contextlib.ExitStack,
    world: dist.World,
    family: str,
    name: str | None,
    runs_dir: str | Path | None,
    resume: str | Path | None,
) -> Path:
    """Rank 0 creates (or, resuming, checks) the run directory and locks it; every rank learns the
    path, or the error, from it."""
    path, error = None, None
    if world.main:
        try:
            if resume is not None:
                path = Path(resume)
                rundir.read_config(path)  # a clear error for what is not a run directory
            else:
                path = rundir.new_run_dir(family, name, Path(runs_dir) if runs_dir is not None else None)
            stack.enter_context(rundir.RunLock(path))
        except Exception as exc:
            if path is not None and resume is None:
                rundir.remove_if_unstarted(path)
            if not world.distributed:
                raise
            error = exc
    path, error = dist.broadcast(world, (path, error))
    if error is not None:
        raise error
    return Path(path)


def write_report(run_dir: Path) -> Path | None:
    """The run's report.html; a failure to write it is reported, never fatal to the run (the
    checkpoint is safe; `vk report RUN` can write it again)."""
    try:
        from vision_kernels.viz.report import write_report as write

        return write(run_dir)
    except Exception as exc:
        print(f"warning: the report was not written ({type(exc).__name__}: {exc}); try `vk report {run_dir}`",
              file=sys.stderr, flush=True)  # fmt: skip
        return None


def report(run_dir: str | Path) -> Path:
    """Writes RUN/report.html (curves, samples, metrics, config, environment) and returns its path."""
    from vision_kernels.viz.report import write_report as write

    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists() and not (run_dir / "config.yaml").exists():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run directory (no run.json)")
    return write(run_dir)


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist (a run directory, or one of its checkpoints)")
    return path


def evaluate(
    run_dir: str | Path,
    *overrides: str,
    checkpoint: str = "best",
    split: str | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """The family's metrics for a checkpoint of a run (`checkpoint`: best, last, or a checkpoint
    directory) on `split` (default: the run's data.eval_split); `overrides` may change data.* and
    predict.*. Writes RUN/eval.json; returns its content (checkpoint, step, split, metrics)."""
    from vision_kernels.engine.inference import evaluate as run_evaluate
    from vision_kernels.engine.inference import load_model, write_eval

    run_dir = _existing(run_dir, "run")
    loaded = load_model(run_dir, which=checkpoint, device=device, overrides=overrides)
    result = run_evaluate(loaded, split)
    owner = loaded.checkpoint.path.parent.parent
    if (owner / "config.yaml").exists():
        write_eval(owner, result)
    return result


def predict(
    run_dir: str | Path,
    inputs: Sequence[str | Path],
    output: str | Path,
    *overrides: str,
    checkpoint: str = "best",
    device: str = "auto",
) -> list[Path]:
    """Runs a checkpoint of a run on image files or folders (none for a generator) and writes its
    outputs under `output`; `overrides` may change data.* and predict.*. Returns the files written."""
    from vision_kernels.engine.inference import load_model
    from vision_kernels.engine.inference import predict as run_predict

    run_dir = _existing(run_dir, "run")
    loaded = load_model(run_dir, which=checkpoint, device=device, overrides=overrides)
    return run_predict(loaded, list(inputs), Path(output))

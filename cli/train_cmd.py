"""`vk train`, `vk eval`, `vk predict`, `vk report`: the engine's commands (torch is imported when
one of them runs, not at start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .errors import CliError

Overrides = Annotated[list[str] | None, typer.Argument(help="key=value overrides (nested keys with dots).")]
Device = Annotated[str, typer.Option(help="cpu, cuda, or auto (a GPU when there is one).")]
Which = Annotated[str, typer.Option("--checkpoint", help="last, best, or a checkpoint directory.")]


def _resume_config(family_name: str, run_dir: Path, overrides: list[str]) -> dict:
    """The run's own config plus the overrides a resume may change."""
    from vision_kernels.config import parse_override
    from vision_kernels.engine.run_config import RESUMABLE_KEYS
    from vision_kernels.engine.rundir import read_config

    family, data = read_config(run_dir)
    if family != family_name:
        raise CliError(f"--resume {str(run_dir)!r} is a run of family {family!r}, not {family_name!r}")
    for item in overrides:
        keys, value = parse_override(item)
        dotted = ".".join(keys)
        if not any(dotted == k or dotted.startswith(k + ".") for k in RESUMABLE_KEYS):
            raise CliError(
                f"{dotted} cannot change when resuming: the weights were trained with the run's value",
                hint=f"keys a resume may change: {', '.join(RESUMABLE_KEYS)}",
            )
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value
    return data


def train(
    family: Annotated[str, typer.Argument(help="The family to train (`vk families list`).")],
    overrides: Overrides = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="A YAML config file.")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: the date and time).")] = None,
    device: Device = "auto",
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this directory.")] = None,
    quiet: Annotated[bool, typer.Option(help="Plain log lines instead of a progress bar.")] = False,
    runs_dir: Annotated[Path | None, typer.Option(help="Where runs go (default: $VK_RUNS_DIR or ./runs).")] = None,
) -> None:
    """Train FAMILY: family defaults < --config file < key=value; writes runs/FAMILY/RUN/."""
    from vision_kernels.config import ConfigError, resolve
    from vision_kernels.engine import distributed as dist
    from vision_kernels.engine import rundir
    from vision_kernels.engine.run_config import run_config_model
    from vision_kernels.engine.trainer import Trainer, resolve_device
    from vision_kernels.registry import get_registry

    spec = get_registry().family(family)
    model = run_config_model(spec.config)
    try:
        if resume is not None:
            if config is not None:
                raise CliError("--config cannot be combined with --resume: the run's own config.yaml is used")
            resolved = model.model_validate(_resume_config(family, resume, overrides or []))
        else:
            resolved = resolve(model, config, overrides or [])
    except ConfigError as exc:
        exc.hint = f"`vk families info {family}` lists every key with its type and default"
        raise
    world = dist.from_environment()
    dist.init(world, resolve_device(device, world))
    if resume is not None:
        run_dir = resume
    else:
        created = rundir.new_run_dir(family, name, runs_dir) if world.main else None
        run_dir = Path(dist.broadcast(world, str(created) if created else None))
    result = Trainer(spec, resolved, run_dir, device=device, resume=resume is not None, quiet=quiet).fit()
    if not world.main:
        return
    report = _write_report(run_dir)
    where = f"checkpoint {result.checkpoint}" if result.checkpoint else "no checkpoint"
    if result.status == "interrupted":
        typer.echo(f"interrupted at step {result.step}: {where}", err=True)
        typer.echo(f"continue with: vk train {family} --resume {run_dir}", err=True)
        raise typer.Exit(130)
    metrics = " ".join(f"{k}={v:.4g}" for k, v in result.metrics.items())
    typer.echo(f"finished: {result.step} steps, {result.epoch} epochs{'; ' + metrics if metrics else ''}")
    typer.echo(f"run: {run_dir}  ({where}{'; report ' + str(report) if report else ''})")


def _write_report(run_dir: Path) -> Path | None:
    """The run's report; a failure to write it is reported, never fatal to the run."""
    try:
        from vision_kernels.viz.report import write_report

        return write_report(run_dir)
    except Exception as exc:  # the checkpoint is safe; the report can be rewritten with `vk report`
        typer.secho(
            f"warning: the report was not written ({type(exc).__name__}: {exc}); try `vk report {run_dir}`",
            err=True,
            fg=typer.colors.YELLOW,
        )
        return None


def evaluate(
    run: Annotated[Path, typer.Argument(help="A run directory (or a checkpoint directory).")],
    which: Which = "best",
    split: Annotated[str | None, typer.Option(help="Data split (default: the run's data.eval_split).")] = None,
    device: Device = "auto",
) -> None:
    """Evaluate a run's checkpoint (rebuilt from the checkpoint alone); writes RUN/eval.json."""
    from rich.console import Console
    from rich.table import Table

    from vision_kernels.engine.inference import evaluate as run_evaluate
    from vision_kernels.engine.inference import load_model, write_eval

    loaded = load_model(run, which=which, device=device)
    result = run_evaluate(loaded, split)
    run_dir = loaded.checkpoint.path.parent.parent
    if (run_dir / "config.yaml").exists():
        write_eval(run_dir, result)
    table = Table(title=f"{loaded.family.name}: {result['split']} split, checkpoint {loaded.checkpoint.path.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["metrics"].items():
        table.add_row(key, f"{value:.6g}")
    Console().print(table)


def predict(
    run: Annotated[Path, typer.Argument(help="A run directory (or a checkpoint directory).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the outputs.")],
    inputs: Annotated[list[Path] | None, typer.Option("--input", "-i", help="Image files or folders.")] = None,
    which: Which = "best",
    device: Device = "auto",
) -> None:
    """Run a trained model on images (or, for a generator, on nothing) and write its outputs."""
    from vision_kernels.engine.inference import load_model
    from vision_kernels.engine.inference import predict as run_predict

    loaded = load_model(run, which=which, device=device)
    written = run_predict(loaded, inputs or [], output)
    typer.echo(f"{len(written)} file(s) written to {output}")


def report(run: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Write RUN/report.html: curves, samples, metrics, config, environment."""
    from vision_kernels.viz.report import write_report

    if not (run / "run.json").exists() and not (run / "config.yaml").exists():
        raise CliError(f"{str(run)!r} is not a run directory (no run.json)")
    typer.echo(str(write_report(run)))


def add_to(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(evaluate)
    app.command("predict")(predict)
    app.command("report")(report)

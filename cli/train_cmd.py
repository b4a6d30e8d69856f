"""`vk train`, `vk eval`, `vk predict`, `vk report`: argument parsing and printing around
vision_kernels.engine.api (torch is imported when one of them runs, not at start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .errors import CliError

Overrides = Annotated[list[str] | None, typer.Argument(help="key=value overrides (nested keys with dots).")]
InferenceOverrides = Annotated[
    list[str] | None, typer.Argument(help="data.*=value / predict.*=value overrides (other keys: the run's own).")
]
Device = Annotated[str, typer.Option(help="cpu, cuda, or auto (a GPU when there is one).")]
Which = Annotated[str, typer.Option("--checkpoint", help="last, best, or a checkpoint directory.")]


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
    from vision_kernels.engine import distributed as dist
    from vision_kernels.engine.api import train as run_train

    if resume is not None and config is not None:
        raise CliError("--config cannot be combined with --resume: the run's own config.yaml is used")
    result = run_train(family, *(overrides or []), config=config, name=name, device=device, resume=resume,
                       runs_dir=runs_dir, quiet=quiet)  # fmt: skip
    if not dist.from_environment().main:
        return
    where = f"checkpoint {result.checkpoint}" if result.checkpoint else "no checkpoint"
    if result.status == "interrupted":
        typer.echo(f"interrupted at step {result.steps}: {where}", err=True)
        typer.echo(f"continue with: vk train {family} --resume {result.run_dir}", err=True)
        raise typer.Exit(130)
    metrics = " ".join(f"{k}={v:.4g}" for k, v in result.final_metrics.items())
    typer.echo(f"finished: {result.steps} steps, {result.epochs} epochs{'; ' + metrics if metrics else ''}")
    typer.echo(f"run: {result.run_dir}  ({where}{'; report ' + str(result.report) if result.report else ''})")


def evaluate(
    run: Annotated[Path, typer.Argument(help="A run directory (or a checkpoint directory).")],
    overrides: InferenceOverrides = None,
    which: Which = "best",
    split: Annotated[str | None, typer.Option(help="Data split (default: the run's data.eval_split).")] = None,
    device: Device = "auto",
) -> None:
    """Evaluate a run's checkpoint (rebuilt from the checkpoint alone); writes RUN/eval.json."""
    from rich.console import Console
    from rich.table import Table

    from vision_kernels.engine.api import evaluate as run_evaluate

    result = run_evaluate(run, *(overrides or []), checkpoint=which, split=split, device=device)
    table = Table(title=f"{result['split']} split, checkpoint {Path(result['checkpoint']).name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["metrics"].items():
        table.add_row(key, f"{value:.6g}")
    Console().print(table)


def predict(
    run: Annotated[Path, typer.Argument(help="A run directory (or a checkpoint directory).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the outputs.")],
    overrides: InferenceOverrides = None,
    inputs: Annotated[
        list[Path] | None, typer.Option("--input", "-i", help="An image file or folder (repeat: -i a.png -i b.png).")
    ] = None,
    which: Which = "best",
    device: Device = "auto",
) -> None:
    """Run a trained model on images (or, for a generator, on nothing) and write its outputs."""
    from vision_kernels.engine.api import predict as run_predict

    written = run_predict(run, inputs or [], output, *(overrides or []), checkpoint=which, device=device)
    typer.echo(f"{len(written)} file(s) written to {output}")


def report(run: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Write RUN/report.html: curves, samples, metrics, config, environment."""
    from vision_kernels.engine.api import report as write_report

    typer.echo(str(write_report(run)))


def add_to(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(evaluate)
    app.command("predict")(predict)
    app.command("report")(report)

"""`vk demo cgan` (what `make demo` runs): trains the conditional GAN on real handwritten digits
for a few minutes, evaluates it, draws its samples, writes the run's report, and prints where
everything is and the figures that matter."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer


def run_gan_demo(minutes: float, device: str, runs_dir: Path | None) -> Path:
    from vision_kernels.data.embedded import OPENCV_DIGITS

    from .train_cmd import evaluate, predict, train

    dataset, overrides = "opencv-digits", []
    if not OPENCV_DIGITS.exists():  # the Debian package is missing: scikit-learn's digits instead
        dataset, overrides = "digits", ["data.options={size: 28}"]
        typer.echo(f"note: {OPENCV_DIGITS} is missing (`make data` installs it); using scikit-learn's digits")
    name = time.strftime("demo-%Y%m%d-%H%M%S")
    typer.echo(f"training cgan on {dataset} for {minutes:g} minutes ...")
    train(
        "cgan",
        [f"data.name={dataset}", *overrides, f"train.max_minutes={minutes}", "train.epochs=1000",
         "train.tensorboard=false"],
        name=name, device=device, quiet=True, runs_dir=runs_dir,
    )  # fmt: skip
    run_dir = (runs_dir or Path("runs")) / "cgan" / name
    evaluate(run_dir, which="last", split=None, device=device)
    predict(run_dir, output=run_dir / "predictions", inputs=None, which="last", device=device)
    from vision_kernels.viz.report import write_report

    report = write_report(run_dir)
    metrics = json.loads((run_dir / "eval.json").read_text())["metrics"]
    run = json.loads((run_dir / "run.json").read_text())
    typer.echo("")
    typer.echo(f"steps trained:        {run['step']}")
    typer.echo(f"class accuracy:       {metrics['class_accuracy']:.1%} of generated digits are recognised as the "
               "class they were conditioned on (held-out classifier)")  # fmt: skip
    typer.echo(f"FID / KID:            {metrics['fid']:.3g} / {metrics['kid']:.3g} (offline feature space, "
               f"{int(metrics['fake_samples'])} samples; not comparable with Inception-FID)")  # fmt: skip
    typer.echo(f"samples per class:    {run_dir / 'predictions'}")
    typer.echo(f"report:               {report}")
    return run_dir

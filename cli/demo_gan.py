"""`vk demo cgan` (what `make demo` runs): first the box ops' speed table (`vk demo kernels
--quick`), then the conditional GAN trained on real handwritten digits for a few minutes through
the engine's Python API (train, evaluate, predict: the calls a user makes), and where everything is
and the figures that matter."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import typer

# The data the demo trains on: OpenCV's 5000 handwritten digits (Debian's opencv-doc, which
# `make demo` installs through `make data`), or, where that package is missing, scikit-learn's 1797
# 8x8 digits scaled to the cGAN's 28x28 (always installed: a dependency). On those 1442 blurred
# training digits the paper's SGD (rate 0.1) blows up at step 220 (the discriminator's loss reaches
# 1e35); clipping each network's gradient norm to 10 keeps all 3500 steps finite.
REAL_DIGITS = ["data.name=opencv-digits"]
FALLBACK_DIGITS = ["data.name=digits", "data.options={size: 28}", "train.clip_grad_norm=10"]
# Everything else is the family's default (the paper's SGD schedule, seed 0); only the budget is the
# demo's. It is counted in steps, so every machine trains the same run and shows the same figure
# (3500 steps: about 3 minutes of training on a 2-core AMD EPYC); `minutes` caps it on a slow machine.
STEPS = 3500
BUDGET = ["train.epochs=1000", "train.tensorboard=false"]


def demo_overrides(steps: int, minutes: float) -> tuple[str, list[str]]:
    """(the data set's name, the overrides of the demo's run)."""
    from vision_kernels.data.embedded import opencv_digits_file

    digits_png = opencv_digits_file()
    if digits_png.exists():
        data = REAL_DIGITS
    else:
        typer.echo(f"note: {digits_png} is missing (`make data` installs it); using scikit-learn's digits")
        data = FALLBACK_DIGITS
    budget = [f"train.max_steps={steps}", f"train.max_minutes={minutes}", *BUDGET]
    return data[0].removeprefix("data.name="), [*data, *budget]


def _kernel_device(device: str) -> str:
    import torch

    return "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)


def run_gan_demo(
    steps: int, minutes: float, device: str, runs_dir: Path | None, overrides: Sequence[str] = (),
    kernels: bool = True,
) -> Path:
    """The whole demo; `overrides` come after the demo's own (a smoke test's train.max_steps)."""
    from vision_kernels.engine import api

    if kernels:
        from .demo import run_demo

        run_demo(device=_kernel_device(device), quick=True)
        typer.echo("")
    dataset, demo = demo_overrides(steps, minutes)
    typer.echo(f"training cgan on {dataset} for {steps} steps (at most {minutes:g} minutes) ...")
    started = time.perf_counter()
    result = api.train(
        "cgan", *demo, *overrides, name=time.strftime("demo-%Y%m%d-%H%M%S"), device=device, quiet=True,
        runs_dir=runs_dir,
    )  # fmt: skip
    trained_s = time.perf_counter() - started
    run_dir = result.run_dir  # where the run really is (VK_RUNS_DIR, --runs-dir or ./runs)
    evaluated = api.evaluate(run_dir, checkpoint="last", device=device)  # eval.json, as `vk eval` writes it
    api.predict(run_dir, [], run_dir / "predictions", checkpoint="last", device=device)
    report = api.report(run_dir)
    metrics = evaluated["metrics"]
    typer.echo("")
    typer.echo(f"steps trained:        {result.steps} in {trained_s:.0f} s")
    typer.echo(f"class accuracy:       {metrics['class_accuracy']:.1%} of generated digits are recognised as the "
               "class they were conditioned on (held-out classifier)")  # fmt: skip
    typer.echo(f"FID / KID:            {metrics['fid']:.3g} / {metrics['kid']:.3g} (offline feature space, "
               f"{int(metrics['fake_samples'])} samples; not comparable with Inception-FID)")  # fmt: skip
    typer.echo(f"samples per class:    {run_dir / 'predictions'}")
    typer.echo(f"report:               {report}")
    return run_dir

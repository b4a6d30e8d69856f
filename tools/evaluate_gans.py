"""The README's figures for the adversarial families, measured on this machine (not a test: it
takes minutes, and its numbers depend on the machine).

    .venv/bin/python tools/evaluate_gans.py [--cgan-minutes 10] [--dcgan-minutes 10] [--only cgan,dcgan,throughput]

- cgan, default settings, on opencv-digits for at most --cgan-minutes: the held-out classifier's
  accuracy on the conditioned class (the issue's bar: at least 80%), FID and KID.
- dcgan on fashion-mnist at 32x32 for --dcgan-minutes: FID in the offline feature space at each
  evaluation (it should fall), and the final sample grid.
- dcgan training throughput (real images per second) with fused=true against fused=false, same
  process, interleaved rounds, median of each.

Writes benchmarks/results/gans-<machine>.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
VK = [sys.executable, "-m", "vision_kernels.cli"]
FIGURES = ("fid", "kid", "class_accuracy")


def vk(*args: str) -> None:
    subprocess.run([*VK, *args], check=True, cwd=ROOT)


def train_and_eval(family: str, name: str, runs: Path, overrides: list[str]) -> dict:
    run_dir = runs / family / name
    if run_dir.exists():
        raise SystemExit(f"{run_dir} exists: remove it or pass another --runs-dir")
    started = time.perf_counter()
    vk("train", family, *overrides, "train.tensorboard=false", "--name", name, "--runs-dir", str(runs), "--quiet")
    seconds = time.perf_counter() - started
    vk("eval", str(run_dir), "--checkpoint", "last")
    vk("predict", str(run_dir), "--output", str(run_dir / "predictions"), "--checkpoint", "last")
    evaluations = [
        {"step": row["step"], "time_s": row["time"], **{k: row[k] for k in FIGURES if k in row}}
        for row in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
        if row.get("split") == "eval"
    ]
    run = json.loads((run_dir / "run.json").read_text())
    return {
        "run": str(run_dir.relative_to(ROOT) if run_dir.is_relative_to(ROOT) else run_dir),
        "overrides": overrides,
        "steps": run["step"],
        "wall_s": round(seconds, 1),
        "final": json.loads((run_dir / "eval.json").read_text())["metrics"],
        "evaluations": evaluations,
    }


def throughput(
    device: str = "cpu", random_data: bool = False, rounds: int = 5, steps: int = 10, batch: int = 128
) -> dict:
    """Real images per second of dcgan training steps (Algorithm 1, k=1), fused vs unfused G.
    `random_data`: uniform noise images instead of Fashion-MNIST (a machine without the Debian
    package, e.g. a lent GPU; the timing does not depend on the pixels)."""
    from vision_kernels.plugins.gans.dcgan import DcganConfig, adam_optimizers, build
    from vision_kernels.plugins.gans.step import adversarial_step

    if random_data:
        images = torch.rand(batch * steps, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    else:
        from vision_kernels.data.embedded import fashion_mnist

        images = fashion_mnist("train").tensors[0][: batch * steps]
    images = images.to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    class Context:
        def __init__(self, fused: bool) -> None:
            torch.manual_seed(0)
            self.config = DcganConfig(fused=fused)
            self.networks = {name: net.to(device) for name, net in build(self.config).items()}
            self.optimizers = adam_optimizers(self.config, self.networks)
            self.device = torch.device(device)

        def autocast(self):
            return torch.autocast("cpu", enabled=False)

        def backward(self, loss, optimizer):
            loss.backward()

        def step_optimizer(self, name):
            self.optimizers[name].step()
            self.optimizers[name].zero_grad(set_to_none=True)

    contexts = {fused: Context(fused) for fused in (True, False)}
    rates: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(rounds + 1):  # round 0 warms up
        for fused, ctx in contexts.items():
            sync()
            started = time.perf_counter()
            for i in range(steps):
                for optimizer in ctx.optimizers.values():  # as the engine does before every step
                    optimizer.zero_grad(set_to_none=True)
                adversarial_step(ctx, (images[i * batch : (i + 1) * batch],))
            sync()
            if round_:
                rates[fused].append(steps * batch / (time.perf_counter() - started))
    fused, unfused = statistics.median(rates[True]), statistics.median(rates[False])
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "data": "uniform noise" if random_data else "fashion-mnist",
        "batch": batch,
        "image_size": 32,
        "steps_per_round": steps,
        "rounds": rounds,
        "fused_images_per_s": round(fused, 1),
        "unfused_images_per_s": round(unfused, 1),
        "speedup": round(fused / unfused, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cgan-minutes", type=float, default=10.0)
    parser.add_argument("--dcgan-minutes", type=float, default=10.0)
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "evaluation")
    parser.add_argument("--only", default="cgan,dcgan,throughput")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="cpu", help="throughput: cpu or cuda")
    parser.add_argument("--random-data", action="store_true", help="throughput: noise instead of Fashion-MNIST")
    args = parser.parse_args()
    only = set(args.only.split(","))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    result: dict = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "torch": torch.__version__,
        "commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }  # fmt: skip
    if "cgan" in only:
        result["cgan"] = train_and_eval(
            "cgan", f"opencv-digits-{stamp}", args.runs_dir,
            ["data.name=opencv-digits", f"train.max_minutes={args.cgan_minutes}", "train.epochs=1000"],
        )  # fmt: skip
    if "dcgan" in only:
        result["dcgan"] = train_and_eval(
            "dcgan", f"fashion-mnist-{stamp}", args.runs_dir,
            ["data.name=fashion-mnist", "image_size=32", f"train.max_minutes={args.dcgan_minutes}",
             "train.epochs=1000", "train.eval_every=100", "eval_samples=2000"],
        )  # fmt: skip
    if "throughput" in only:
        result[f"dcgan_throughput_{args.device}"] = throughput(args.device, args.random_data)
    out = args.out or ROOT / "benchmarks" / "results" / f"gans-{'gpu' if torch.cuda.is_available() else 'cpu'}.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

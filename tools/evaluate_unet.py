"""The README's figures for the unet family, measured on this machine (not a test: minutes).

    .venv/bin/python tools/evaluate_unet.py [--minutes 10] [--ablation-minutes 2.5] [--seeds 0,1]
                                            [--only quality,ablation]

- quality: unet with default settings on `shapes` at 128x128, trained for at most --minutes; mIoU,
  Dice and pixel accuracy on 200 held-out (val split) images.
- ablation: the paper's regime of 30 training images, each configuration trained for
  --ablation-minutes per seed: full (border weight map + elastic deformation), without the border
  term of the weight map, without elastic deformation. Reported on 200 val images: mIoU, and the
  accuracy on the pixels within 3 px of an object's border, where the weight map acts (touching
  objects, thin gaps).

Writes benchmarks/results/unet-<machine>.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
VAL_COUNT = 200
AUGMENT_NO_ELASTIC = "[hflip, vflip, {shift: {fraction: 0.1}}, {rotation: {degrees: 15}}]"


def train(name: str, runs: Path, overrides: list[str]) -> Path:
    command = [sys.executable, "-m", "vision_kernels.cli", "train", "unet", *overrides, "train.tensorboard=false",
               "--name", name, "--runs-dir", str(runs), "--quiet"]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT)
    return runs / "unet" / name


@torch.no_grad()
def held_out(run_dir: Path) -> dict[str, float]:
    """mIoU, Dice, pixel accuracy and border-band accuracy on VAL_COUNT val images."""
    from scipy import ndimage

    from vision_kernels.data.shapes import ShapesDataset
    from vision_kernels.engine.inference import load_model
    from vision_kernels.metrics.segmentation import SegmentationMetrics
    from vision_kernels.plugins.unet.steps import predict_logits

    loaded = load_model(run_dir, which="last", device="cpu")
    config = loaded.config
    options = {**config.data.options, "count": VAL_COUNT, "task": "instance"}
    data = ShapesDataset(split="val", **options)
    metrics = SegmentationMetrics(config.num_classes, ignore_index=config.ignore_index)
    band_correct = band_total = 0
    for index in range(len(data)):
        image, target = data[index]
        semantic = target["semantic"]
        predicted = predict_logits(loaded.networks["model"], image[None], config).argmax(1)[0]
        metrics.update(predicted[None], semantic[None])
        band = torch.zeros_like(semantic, dtype=torch.bool)
        for mask in target["masks"].numpy():
            edge = ndimage.binary_dilation(mask, iterations=3) & ~ndimage.binary_erosion(mask, iterations=3)
            band |= torch.from_numpy(edge)
        band_correct += int(((predicted == semantic) & band).sum())
        band_total += int(band.sum())
    result = metrics.compute()
    return {
        "miou": result["miou"],
        "mean_dice": result["mean_dice"],
        "pixel_accuracy": result["pixel_accuracy"],
        "border_accuracy": band_correct / max(band_total, 1),
        "val_images": VAL_COUNT,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--ablation-minutes", type=float, default=2.5)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--only", default="quality,ablation")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "evaluation")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "unet-cpu.json")
    args = parser.parse_args()
    only, stamp = set(args.only.split(",")), time.strftime("%Y%m%d-%H%M%S")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    result: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(), "commit": commit,
                    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    if "quality" in only:
        started = time.perf_counter()
        run_dir = train(f"quality-{stamp}", args.runs_dir, [f"train.max_minutes={args.minutes}", "train.epochs=1000"])
        run = json.loads((run_dir / "run.json").read_text())
        result["quality"] = {"run": str(run_dir), "minutes": args.minutes, "steps": run["step"],
                             "wall_s": round(time.perf_counter() - started, 1), **held_out(run_dir)}  # fmt: skip
        print(json.dumps(result["quality"]), flush=True)
    if "ablation" in only:
        variants = {
            "full": [],
            "no_border_weight": ["border_weight=false"],
            "no_elastic": [f"data.transforms={AUGMENT_NO_ELASTIC}"],
        }
        rows: dict[str, list[dict]] = {name: [] for name in variants}
        for seed in args.seeds.split(","):
            for name, extra in variants.items():
                overrides = ["data.options={task: instance, size: 128, count: 30}", f"train.seed={seed}",
                             f"train.max_minutes={args.ablation_minutes}", "train.epochs=100000", *extra]  # fmt: skip
                run_dir = train(f"ablation-{name}-seed{seed}-{stamp}", args.runs_dir, overrides)
                row = {"seed": int(seed), **held_out(run_dir)}
                rows[name].append(row)
                print(name, json.dumps(row), flush=True)
        result["ablation"] = {
            "training_images": 30,
            "minutes_per_run": args.ablation_minutes,
            "runs": rows,
            "mean": {
                name: {k: statistics.mean(r[k] for r in runs) for k in ("miou", "border_accuracy")}
                for name, runs in rows.items()
            },  # fmt: skip
        }
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

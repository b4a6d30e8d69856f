"""The README's figures for the unet family, measured on this machine (not a test: minutes).

    .venv/bin/python tools/evaluate_unet.py [--minutes 10] [--ablation-epochs 300] [--seeds 0,1]
        [--only quality,ablation,large] [--ablation-data shapes|cells|stained-cells]
        [--variants full,no_border_weight,no_elastic] [--device cpu] [--workers 0] [--out FILE]

- quality: unet with default settings on `shapes` at 128x128 (36 epochs of 400 images, constant
  rate then linear decay, bf16 autocast where native), trained for at most --minutes; mIoU, Dice
  and pixel accuracy on 200 held-out (val split) images.
- ablation: the paper's regime of 30 training images, each configuration trained for
  --ablation-epochs (3 steps each, the default schedule) per seed: full (border weight map +
  elastic deformation), without the border term of the weight map, without elastic deformation,
  on the data set --ablation-data (see ABLATION_DATA). Reported on 200 val images: mIoU; the
  accuracy on the pixels within 3 px of an object's border; and on the background pixels between
  nearby objects where the border term is >= 1 (separation accuracy: what the weight map is for).
- large: overlap-tile inference on 1024, 2048 and 4096 pixel square images (an untrained default
  network; time and memory do not depend on the weights), each in a fresh process: peak memory
  beyond the input image and the output logits, which stays flat as the image grows.

Writes --out (default benchmarks/results/unet-cpu.json; during an ablation after every run) and
prints a summary. The committed results: benchmarks/results/unet-cpu-{quality,ablation,large}.json.
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
VAL_COUNT = 200# The ablations' 30 training images: the default `shapes` (3 classes of rigid shapes told apart by
# their outline, random colours on random textures); `cells`: one class of irregular blobs
# (ellipses bent by each scene's own elastic field, shapes' `deform`), 3 to 8 per image and often
# touching, segmented from the background, still in random colours; `stained-cells`: the same blobs
# as light grey on dim grey in every image, as the paper's microscope images of one stain, where
# what varies between images is the objects' shape and arrangement, not their appearance.
CELLS = "task: instance, size: 128, count: 30, classes: [ellipse], objects: [3, 8], deform: 8"
ABLATION_DATA = {
    "shapes": ["data.options={task: instance, size: 128, count: 30}"],
    "cells": [f"data.options={{{CELLS}}}", "num_classes=2"],
    "stained-cells": [f"data.options={{{CELLS}, appearance: stained}}", "num_classes=2"],
}


def _without_elastic() -> str:
    """The family's default augmentation list without the elastic deformation, as an override."""
    from vision_kernels.plugins.unet.family import AUGMENTATION

    def is_elastic(entry: object) -> bool:
        return entry == "elastic" or (isinstance(entry, dict) and "elastic" in entry)

    kept = [entry for entry in AUGMENTATION if not is_elastic(entry)]
    return json.dumps(kept)  # JSON is YAML: the override parser reads it


def train(name: str, runs: Path, overrides: list[str], device: str = "cpu") -> Path:
    command = [sys.executable, "-m", "vision_kernels.cli", "train", "unet", *overrides, "train.tensorboard=false",
               "--name", name, "--runs-dir", str(runs), "--device", device, "--quiet"]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT)
    return runs / "unet" / name


@torch.no_grad()
def held_out(run_dir: Path, device: str = "cpu") -> dict[str, float]:
    """On VAL_COUNT val images: mIoU, Dice, pixel accuracy; border accuracy (pixels within 3 px of
    an object's edge) and separation accuracy (background pixels where the weight map's border term
    is at least 1: the gaps between nearby objects, where that term acts)."""
    from scipy import ndimage

    from vision_kernels.data.shapes import ShapesDataset
    from vision_kernels.engine.inference import load_model
    from vision_kernels.metrics.segmentation import SegmentationMetrics
    from vision_kernels.plugins.unet.steps import predict_logits
    from vision_kernels.plugins.unet.weights import border_term

    loaded = load_model(run_dir, which="last", device=device)
    config = loaded.config
    options = {**config.data.options, "count": VAL_COUNT, "task": "instance"}
    data = ShapesDataset(split="val", **options)
    metrics = SegmentationMetrics(config.num_classes, ignore_index=config.ignore_index)
    counts = {"border": [0, 0], "separation": [0, 0]}
    for index in range(len(data)):
        image, target = data[index]
        semantic = target["semantic"]
        logits = predict_logits(loaded.networks["model"], image[None].to(device), config)
        predicted = logits.argmax(1)[0].cpu()
        metrics.update(predicted[None], semantic[None])
        band = torch.zeros_like(semantic, dtype=torch.bool)
        for mask in target["masks"].numpy():
            edge = ndimage.binary_dilation(mask, iterations=3) & ~ndimage.binary_erosion(mask, iterations=3)
            band |= torch.from_numpy(edge)
        gaps = border_term(target["masks"], config.w0 or 10.0, config.sigma) >= 1
        for name, where in (("border", band), ("separation", gaps)):
            counts[name][0] += int(((predicted == semantic) & where).sum())
            counts[name][1] += int(where.sum())
    result = metrics.compute()
    return {
        "miou": result["miou"],
        "mean_dice": result["mean_dice"],
        "pixel_accuracy": result["pixel_accuracy"],
        "border_accuracy": counts["border"][0] / max(counts["border"][1], 1),
        "separation_accuracy": counts["separation"][0] / max(counts["separation"][1], 1),
        "val_images": VAL_COUNT,
    }


LARGE_PROBE = """
import json, resource, sys, time, torch
from vision_kernels.engine.run_config import run_config_model
from vision_kernels.plugins.unet.family import UnetConfig, build
from vision_kernels.plugins.unet.steps import predict_logits
size, padding = int(sys.argv[1]), sys.argv[2]
config = run_config_model(UnetConfig)(padding=padding)
model = build(config)["model"].eval()
image = torch.rand(1, 3, size, size)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
logits = predict_logits(model, image, config)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
io = (image.numel() + logits.numel()) * 4 / 2**20
print(json.dumps({"size": size, "padding": padding, "seconds": round(seconds, 1), "peak_rss_mib": round(peak / 1024),
                  "growth_mib": round((peak - before) / 1024), "input_output_mib": round(io),
                  "working_mib": round((peak - before) / 1024 - io + image.numel() * 4 / 2**20)}))
"""


def large_images(sizes: tuple[int, ...] = (1024, 2048, 4096)) -> list[dict]:
    """Overlap-tile memory against image size, each size in a fresh process (peak RSS is per
    process): the growth beyond the input image and the output logits stays flat."""
    rows = []
    for padding in ("same", "valid"):
        for size in sizes:
            out = subprocess.run([sys.executable, "-c", LARGE_PROBE, str(size), padding], check=True, cwd=ROOT,
                                 capture_output=True, text=True).stdout  # fmt: skip
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--ablation-epochs", type=int, default=300)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--ablation-data", choices=sorted(ABLATION_DATA), default="shapes")
    parser.add_argument("--variants", default="", help="ablation variants to run (default: all)")
    parser.add_argument("--only", default="quality,ablation,large")
    parser.add_argument("--device", default="cpu", help="where the runs train and evaluate (cpu or cuda)")
    parser.add_argument("--workers", type=int, default=0, help="data.num_workers of the ablation runs")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "evaluation")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "unet-cpu.json")
    args = parser.parse_args()
    only, stamp = set(args.only.split(",")), time.strftime("%Y%m%d-%H%M%S")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    result: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(), "commit": commit,
                    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": device_name(args.device)}  # fmt: skip
    if "quality" in only:
        started = time.perf_counter()
        # The defaults, with the time budget as a cap.
        run_dir = train(f"quality-{stamp}", args.runs_dir, [f"train.max_minutes={args.minutes}"], args.device)
        run = json.loads((run_dir / "run.json").read_text())
        result["quality"] = {"run": str(run_dir), "minutes": args.minutes, "steps": run["step"],
                             "wall_s": round(time.perf_counter() - started, 1),
                             **held_out(run_dir, args.device)}  # fmt: skip
        print(json.dumps(result["quality"]), flush=True)
    if "ablation" in only:
        result["ablation"] = ablation(args, stamp, result)
    if "large" in only:
        result["large_images"] = large_images()
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return f"cpu ({torch.get_num_threads()} threads)"


def ablation(args: argparse.Namespace, stamp: str, result: dict) -> dict:
    """The paper's regime, 30 training images: full, without the border term, without elastic
    deformation, each for a fixed number of epochs (not minutes, so that the comparison does not
    depend on the machine's speed or load) and several seeds. The results so far are written to
    --out after every run (a time-boxed run keeps what it finished)."""
    variants = {
        "full": [],
        "no_border_weight": ["border_weight=false"],
        "no_elastic": [f"data.transforms={_without_elastic()}"],
    }
    if args.variants:
        variants = {name: variants[name] for name in args.variants.split(",")}
    rows: dict[str, list[dict]] = {name: [] for name in variants}
    workers = f"data.num_workers={args.workers}"
    for seed in args.seeds.split(","):
        for name, extra in variants.items():
            settings = [f"train.seed={seed}", f"train.epochs={args.ablation_epochs}", workers]
            overrides = [*ABLATION_DATA[args.ablation_data], *settings, *extra]
            run_name = f"ablation-{args.ablation_data}-{name}-seed{seed}-{stamp}"
            run_dir = train(run_name, args.runs_dir, overrides, args.device)
            row = {"seed": int(seed), **held_out(run_dir, args.device)}
            rows[name].append(row)
            print(name, json.dumps(row), flush=True)
            partial = {**result, "ablation": summarise(rows, args.ablation_epochs, args.ablation_data)}
            args.out.write_text(json.dumps(partial, indent=1))
    return summarise(rows, args.ablation_epochs, args.ablation_data)


def summarise(rows: dict[str, list[dict]], epochs: int, data: str) -> dict:
    keys = ("miou", "border_accuracy", "separation_accuracy", "pixel_accuracy")
    summary = {}
    for name, runs in rows.items():
        if not runs:
            continue
        summary[name] = {key: statistics.mean(r[key] for r in runs) for key in keys}
        if len(runs) > 1:
            summary[name] |= {f"{key}_stdev": statistics.stdev(r[key] for r in runs) for key in keys}
    return {"data": data, "overrides": ABLATION_DATA[data], "training_images": 30, "epochs_per_run": epochs,
            "steps_per_epoch": 3, "runs": rows, "mean": summary}  # fmt: skip


if __name__ == "__main__":
    main()

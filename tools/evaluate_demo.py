"""The README's figures for `make demo`, measured on this machine (not a test: minutes, and its
wall times depend on the machine): `vk demo cgan` as `make demo` runs it, on OpenCV's digits
(Debian's opencv-doc) and on the fallback a machine without that package gets (scikit-learn's
digits, which must train to the end with finite losses).

    .venv/bin/python tools/evaluate_demo.py [--only real,fallback] [--out benchmarks/results/demo-cpu.json]

Each demo runs in its own process with a fresh VK_RUNS_DIR; the JSON has the wall time of the whole
command (kernels table, training, evaluation, prediction, report), the steps, the final figures,
the evaluations along the way, whether every logged loss was finite, and the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("fid", "kid", "class_accuracy")


def run_demo(data: str, runs: Path) -> dict:
    env = {**os.environ, "VK_RUNS_DIR": str(runs)}
    if data == "fallback":
        env["VK_OPENCV_DIGITS"] = str(runs / "no-opencv-doc" / "digits.png")
    command = [sys.executable, "-m", "vision_kernels.cli", "demo", "cgan", "--device", "auto"]
    started = time.perf_counter()
    output = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    wall_s = time.perf_counter() - started
    (run_dir,) = (runs / "cgan").iterdir()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [row[k] for row in rows for k in ("loss_d", "loss_g") if k in row]
    run = json.loads((run_dir / "run.json").read_text())
    return {
        "data": yaml.safe_load((run_dir / "config.yaml").read_text())["data"],
        "command": "vk " + " ".join(command[3:]),
        "opencv_digits_hidden": data == "fallback",
        "steps": run["step"],
        "wall_s": round(wall_s, 1),
        "losses_logged": len(losses),
        "losses_finite": all(math.isfinite(v) for v in losses),
        "final": json.loads((run_dir / "eval.json").read_text())["metrics"],
        "evaluations": [
            {"step": row["step"], "time_s": row["time"], **{k: row[k] for k in FIGURES if k in row}}
            for row in rows
            if row.get("split") == "eval"
        ],
        "summary": output[output.rindex("steps trained:") :].strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="real,fallback")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/demo-cpu.json")
    args = parser.parse_args()

    from vision_kernels.environment import environment

    env = environment("cpu")
    result = {
        "what": "make demo (vk demo cgan --device auto): cgan, the family's defaults (the paper's SGD schedule, "
        "seed 0), 3500 steps of batch 100; class_accuracy: the held-out classifier recognises the conditioned "
        "class (1000 samples, 100 per class); FID/KID in the offline feature space",
        "tool": "tools/evaluate_demo.py",
        "date": env["date"],
        "commit": env["commit"],
        "torch": env["torch"],
        "cpu": env["cpu"],
        "cpu_threads": env["cpu_threads"],
        "cpu_capability": env["cpu_capability"],
        "demos": {},
    }
    for data in args.only.split(","):
        with tempfile.TemporaryDirectory() as runs:
            result["demos"][data] = demo = run_demo(data, Path(runs))
        print(f"{data}: {demo['steps']} steps in {demo['wall_s']} s; {demo['summary']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

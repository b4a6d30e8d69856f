"""The run directory, `runs/<family>/<run>/`:

run.json          family, version, name, status (running, finished, interrupted, failed), times,
                  device, world size, step, epoch
config.yaml       the resolved config (the run's whole definition, with the family's name)
environment.json  versions, CPU/GPU, and which kernel backend runs each op
metrics.jsonl     training metrics every train.log_every steps and every evaluation
checkpoints/      see vision_kernels.engine.checkpoint
samples/          <name>-step-<step>.png image grids
tensorboard/      when tensorboard is installed
eval.json         written by `vk eval`
report.html       written by `vk report` (and at the end of training)
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import yaml

from vision_kernels.engine.checkpoint import write_text_atomic


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def runs_root() -> Path:
    """Where new runs go: $VK_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("VK_RUNS_DIR", "runs"))


def new_run_dir(family: str, name: str | None, root: Path | None = None) -> Path:
    """runs/<family>/<name>; a name already taken fails (use --resume to continue a run)."""
    root = runs_root() if root is None else root
    if name is None:
        name = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        base, n = name, 1
        while (root / family / name).exists():
            n += 1
            name = f"{base}-{n}"
    path = root / family / name
    if path.exists():
        raise FileExistsError(
            f"run directory {str(path)!r} exists; choose another --name, or continue it with --resume {path}"
        )
    path.mkdir(parents=True)
    return path


def write_config(run_dir: Path, family: str, config: Any) -> None:
    data = {"family": family, **config.model_dump(mode="json")}
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(data, sort_keys=False))


def read_config(run_dir: Path) -> tuple[str, dict[str, Any]]:
    """(family, config data) from run_dir/config.yaml."""
    path = run_dir / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run directory: config.yaml is missing")
    data = yaml.safe_load(path.read_text()) or {}
    family = data.pop("family", None)
    if not family:
        raise ValueError(f"{str(path)!r} does not name its family (key 'family')")
    return family, data


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def update_run_json(run_dir: Path, **fields: Any) -> dict[str, Any]:
    info = read_json(run_dir / "run.json")
    info.update(fields)
    write_text_atomic(run_dir / "run.json", json.dumps(info, indent=2))
    return info


def write_environment(run_dir: Path, device: Any) -> None:
    from vision_kernels import backends
    from vision_kernels.benchmarking.environment import environment
    from vision_kernels.ops import OPS

    env = environment()
    env["platform"] = __import__("platform").platform()
    env["device"] = str(device)
    env["backends"] = {
        op: {d: backends.available_backends(op, d) for d in ["cpu"] + (["cuda"] if device.type == "cuda" else [])}
        for op in OPS
    }
    env["auto"] = {op: backends.resolve(op, device, "auto") for op in OPS}
    write_text_atomic(run_dir / "environment.json", json.dumps(env, indent=2))

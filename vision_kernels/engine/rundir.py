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
.lock             held (flock) by the process training in it: a second one is refused
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from vision_kernels.engine.checkpoint import write_text_atomic

LOCK = ".lock"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def runs_root() -> Path:
    """Where new runs go: $VK_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("VK_RUNS_DIR", "runs"))


def check_run_name(name: str) -> str:
    """A run name is one path component: no separators, not '.' or '..', not hidden."""
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(
            f"--name must be a single folder name (letters, digits, '-', '_', '.'; not starting with '.'), got {name!r}"
        )
    return name


# What a run directory may hold before its run has started (a failed start leaves only these).
_BEFORE_START = {LOCK}


def unstarted(path: Path) -> bool:
    """A directory a run was created in but never started (no config.yaml, no checkpoints)."""
    return path.is_dir() and all(p.name in _BEFORE_START for p in path.iterdir())


def new_run_dir(family: str, name: str | None, root: Path | None = None) -> Path:
    """runs/<family>/<name>; a name already taken fails (use --resume to continue a run), unless
    its directory holds nothing yet (a run that failed to start): that one is reused."""
    root = runs_root() if root is None else root
    if name is None:
        name = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        base, n = name, 1
        while (root / family / name).exists():
            n += 1
            name = f"{base}-{n}"
    path = root / family / check_run_name(name)
    if path.exists() and not unstarted(path):
        raise FileExistsError(
            f"run directory {str(path)!r} exists; choose another --name, or continue it with --resume {path}"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_if_unstarted(path: Path) -> None:
    """Removes the directory of a run that failed before it started, so that it blocks no name."""
    if unstarted(path):
        shutil.rmtree(path, ignore_errors=True)


class RunLockedError(FileExistsError):
    """Another process is training in the run directory."""


class RunLock:
    """An exclusive lock on a run directory while a process trains in it (fcntl.flock on
    RUN/.lock: the kernel releases it when the process dies, so a killed run leaves no stale lock).
    On taking it, the temporary files a killed run left behind are removed."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLockedError(
                f"run directory {str(self.run_dir)!r} is in use by {holder}: wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} (since {now()})".encode())
        self._fd = fd
        remove_stale_temporaries(self.run_dir)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock; the file stays (unlinking it would race a waiter)
            self._fd = None


def remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files and directories of atomic writes that a killed process never renamed
    (.NAME.tmp-PID, checkpoints/.tmp-step-...-PID): safe to remove while holding the run's lock."""
    for folder in (run_dir, run_dir / "checkpoints"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith(".") and ".tmp-" in path.name:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


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
    from vision_kernels.environment import environment

    write_text_atomic(run_dir / "environment.json", json.dumps(environment(device), indent=2))

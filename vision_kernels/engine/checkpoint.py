"""Checkpoints: weights in safetensors, training state alongside, written atomically.

A checkpoint is a directory `checkpoints/step-<step>/`:
    weights.safetensors   every network's state_dict as "<network>.<key>" (EMA copies as
                          "ema.<network>.<key>"); its metadata repeats meta.json, so the weights file
                          alone says which family, version and config built them
    state.pt              optimizers, schedulers, grad scaler, RNG states, epoch, step, data position
                          (tensors and plain values only: loaded with torch.load(weights_only=True))
    meta.json             format, family, family version, resolved config, step, epoch, networks and
                          their parameter shapes, the eval metrics at that step

It is written into a temporary directory, each file fsync'ed, then renamed into place, and only
then does `checkpoints/index.json` (replaced atomically too) point at it: a crash or a full disk
mid-write leaves the previous checkpoint and index as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = 1
WEIGHTS, STATE, META, INDEX = "weights.safetensors", "state.pt", "meta.json", "index.json"
METADATA_KEY = "vision_kernels"


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, corrupt, or does not fit what loads it."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_text_atomic(path: Path, text: str) -> None:
    """Replaces `path` with `text`: a reader sees the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def flatten_weights(networks: Mapping[str, nn.Module], prefix: str = "") -> dict[str, torch.Tensor]:
    """'<prefix><network>.<key>' -> a CPU copy of the tensor (safetensors refuses shared storage)."""
    return {
        f"{prefix}{name}.{key}": value.detach().to("cpu", copy=True).contiguous()
        for name, network in networks.items()
        for key, value in network.state_dict().items()
    }


def save(
    directory: Path,
    step: int,
    networks: Mapping[str, nn.Module],
    meta: Mapping[str, Any],
    state: Mapping[str, Any],
    ema: Mapping[str, nn.Module] | None = None,
) -> Path:
    """Writes checkpoint `step` under `directory` atomically and returns its path (an existing
    checkpoint of the same step is kept: it holds the same state)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    final = directory / checkpoint_name(step)
    if final.exists():
        return final
    meta = {
        "format": FORMAT,
        **meta,
        "step": step,
        "networks": {n: {k: list(v.shape) for k, v in m.state_dict().items()} for n, m in networks.items()},
        "ema": sorted(ema or {}),
    }
    tmp = directory / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tensors = flatten_weights(networks)
    tensors.update(flatten_weights(ema or {}, prefix="ema."))
    save_file(tensors, tmp / WEIGHTS, metadata={METADATA_KEY: json.dumps(meta)})
    torch.save(dict(state), tmp / STATE)
    (tmp / META).write_text(json.dumps(meta, indent=2))
    for name in (WEIGHTS, STATE, META):
        _fsync_file(tmp / name)
    _fsync_dir(tmp)
    os.rename(tmp, final)
    _fsync_dir(directory)
    return final


# ---- the index: which checkpoint is last, which is best -----------------------------------------------


def read_index(directory: Path) -> dict[str, Any]:
    path = directory / INDEX
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint index {str(path)!r} is corrupt: {exc}") from exc


def write_index(directory: Path, index: Mapping[str, Any]) -> None:
    write_text_atomic(directory / INDEX, json.dumps(dict(index), indent=2))


def prune(directory: Path, keep: Iterable[str]) -> None:
    """Removes checkpoints not in `keep`, and temporary directories a crash left behind."""
    keep = set(keep)
    for path in directory.iterdir():
        if path.is_dir() and (
            path.name.startswith(".tmp-") or (path.name.startswith("step-") and path.name not in keep)
        ):
            shutil.rmtree(path, ignore_errors=True)


# ---- loading -----------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    path: Path
    meta: dict[str, Any]

    @property
    def family(self) -> str:
        return self.meta["family"]

    def tensors(self) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        try:
            return load_file(self.path / WEIGHTS)
        except Exception as exc:
            raise CheckpointError(
                f"checkpoint file {str(self.path / WEIGHTS)!r} is truncated or corrupt: {exc}"
            ) from exc

    def state(self) -> dict[str, Any]:
        path = self.path / STATE
        if not path.exists():
            raise CheckpointError(f"checkpoint {str(self.path)!r} has no training state ({STATE} is missing)")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"checkpoint file {str(path)!r} is truncated or corrupt: {exc}") from exc

    def load_into(self, networks: Mapping[str, nn.Module], ema: Mapping[str, nn.Module] | None = None) -> None:
        """Loads the weights into networks built from a config; a config that builds other shapes
        fails naming the first differences."""
        tensors = self.tensors()
        missing = sorted(set(networks) - {k.split(".")[0] for k in tensors})
        if missing:
            raise CheckpointError(f"checkpoint {str(self.path)!r} has no weights for network(s) {', '.join(missing)}")
        for prefix, targets in (("", networks), ("ema.", ema or {})):
            for name, network in targets.items():
                own = {
                    k[len(prefix) + len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(f"{prefix}{name}.")
                }
                _check_fits(self.path, prefix + name, own, network.state_dict())
                network.load_state_dict(own)


def _check_fits(path: Path, network: str, saved: Mapping[str, torch.Tensor], built: Mapping[str, torch.Tensor]) -> None:
    problems = [f"{network}.{k} is missing in the checkpoint" for k in built if k not in saved]
    problems += [f"{network}.{k} is in the checkpoint but not in the model" for k in saved if k not in built]
    problems += [
        f"{network}.{k} is {list(saved[k].shape)} in the checkpoint but {list(v.shape)} in the model"
        for k, v in built.items()
        if k in saved and saved[k].shape != v.shape
    ]
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise CheckpointError(
            f"the config does not match the weights in {str(path)!r}: {shown} (the checkpoint's own config is in "
            f"its {META})"
        )


def locate(path: str | Path, which: str = "last") -> Path:
    """A checkpoint directory from a run directory, its checkpoints/ directory, a checkpoint
    directory or its weights file; `which` is last or best (for the first two)."""
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS, STATE, META):
        path = path.parent
    if (path / META).exists() or (path / WEIGHTS).exists():
        return path
    directory = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint at {str(path)!r}: not a run directory or checkpoint")
    index = read_index(directory)
    name = index.get(which) or (index.get("last") if which == "best" else None)
    if not name or not (directory / name).is_dir():
        raise CheckpointError(f"no {which} checkpoint in {str(directory)!r} (has the run written one yet?)")
    return directory / name


def load(path: str | Path, family: str | None = None, which: str = "last") -> Checkpoint:
    """Opens a checkpoint and checks it: complete, readable, and (if given) of `family`."""
    directory = locate(path, which)
    meta_path = directory / META
    if not meta_path.exists():
        raise CheckpointError(f"checkpoint {str(directory)!r} is incomplete: {META} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint file {str(meta_path)!r} is corrupt: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {str(directory)!r} has format {meta.get('format')!r}; this version reads {FORMAT}"
        )
    if not (directory / WEIGHTS).exists():
        raise CheckpointError(f"checkpoint {str(directory)!r} is incomplete: {WEIGHTS} is missing")
    if family is not None and meta.get("family") != family:
        raise CheckpointError(
            f"checkpoint {str(directory)!r} was written by family {meta.get('family')!r}, not {family!r}"
        )
    return Checkpoint(directory, meta)

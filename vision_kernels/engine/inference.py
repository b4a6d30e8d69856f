"""`vk eval` and `vk predict`: a model rebuilt from a checkpoint alone (its family, version and
resolved config are in it), then evaluated or run on inputs."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vision_kernels.engine import checkpoint as ckpt
from vision_kernels.engine import data as engine_data
from vision_kernels.engine.checkpoint import write_text_atomic
from vision_kernels.engine.contexts import EvalContext
from vision_kernels.engine.devices import resolve_device
from vision_kernels.engine.run_config import run_config_model
from vision_kernels.engine.seeding import isolated_rng
from vision_kernels.family import Family


@dataclass
class Loaded:
    family: Family
    config: Any
    networks: dict[str, nn.Module]  # the EMA copies where the checkpoint has them, in eval mode
    checkpoint: ckpt.Checkpoint
    device: torch.device


def load_model(path: str | Path, which: str = "last", device: str = "auto", overrides: Sequence[str] = ()) -> Loaded:
    """Rebuilds the networks of the checkpoint at `path` (a run directory or a checkpoint)."""
    from vision_kernels.engine import overrides as override_policy
    from vision_kernels.engine.distributed import World
    from vision_kernels.registry import get_registry

    checkpoint = ckpt.load(path, which=which)
    registry = get_registry()
    if checkpoint.family not in registry.families:
        raise ckpt.CheckpointError(
            f"checkpoint {str(checkpoint.path)!r} was written by family {checkpoint.family!r}, which is not installed "
            f"(installed: {', '.join(sorted(registry.families)) or 'none'})"
        )
    family = registry.families[checkpoint.family]
    if checkpoint.meta.get("family_version") != family.version:
        warnings.warn(
            f"checkpoint written by {family.name} version {checkpoint.meta.get('family_version')}, "
            f"loading with version {family.version}",
            stacklevel=2,
        )
    config = override_policy.apply(
        run_config_model(family.config), checkpoint.meta["config"], overrides, override_policy.INFERENCE_KEYS,
        "for evaluation or prediction", repr(str(checkpoint.path / ckpt.META)),
    )  # fmt: skip
    dev = resolve_device(device, World())
    networks = {name: net.to(dev) for name, net in dict(family.build(config)).items()}
    ema = {name: _copy(networks[name]) for name in checkpoint.meta.get("ema", [])}
    checkpoint.load_into(networks, ema)
    networks.update({name: net.to(dev) for name, net in ema.items()})
    for net in networks.values():
        net.eval()
    return Loaded(family, config, networks, checkpoint, dev)


def _copy(network: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(network)


def evaluate(loaded: Loaded, split: str | None = None) -> dict[str, Any]:
    """The family's metrics on `split` (default: the run's data.eval_split); returns eval.json's data."""
    from vision_kernels.registry import get_registry

    family, config = loaded.family, loaded.config
    if family.evaluate is None:
        raise ValueError(f"family {family.name!r} defines no evaluate()")
    entry = get_registry().datasets.get(config.data.name)
    if entry is None:
        raise ValueError(f"the run's dataset {config.data.name!r} is not registered (is its plugin installed?)")
    split = split or config.data.eval_split
    if split not in entry.splits:
        raise ValueError(f"dataset {entry.name!r} has no split {split!r}; it has {', '.join(entry.splits)}")
    items = engine_data.load_split(entry, split, config.data.options, config)
    dataset, _ = engine_data.prepare(config.data, items, False)
    loader = engine_data.eval_loader(config.data, dataset)
    with isolated_rng(config.train.seed), torch.no_grad():
        metrics = family.evaluate(EvalContext(config, loaded.networks, loaded.device, loader, split)) or {}
    return {
        "checkpoint": str(loaded.checkpoint.path),
        "step": loaded.checkpoint.meta.get("step"),
        "split": split,
        "metrics": {k: float(v) for k, v in metrics.items()},
    }


def write_eval(run_dir: Path, result: Mapping[str, Any]) -> Path:
    path = run_dir / "eval.json"
    write_text_atomic(path, json.dumps(dict(result), indent=2))
    return path


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def input_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files from files and directories (sorted); a missing path fails naming it."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"--input {str(path)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"--input {str(path)!r} does not exist")
    return files


def predict(loaded: Loaded, inputs: Sequence[str | Path], output: Path) -> list[Path]:
    """Runs the family's predict on the input images (or on none) and writes what it returns:
    image batches as PNGs (one per input, named after it, in a folder per output name; a single
    image made from no input, such as a generator's grid, as <name>.png), everything else as
    predictions.json. Returns the files written."""
    from vision_kernels.viz.grid import load_image, save_image

    family = loaded.family
    if family.predict is None:
        raise ValueError(f"family {family.name!r} defines no predict()")
    files = input_files(inputs)
    images = [load_image(f).to(loaded.device) for f in files] if files else None
    with isolated_rng(loaded.config.train.seed), torch.no_grad():
        result = family.predict(loaded.networks, images, loaded.config)
    outputs = result if isinstance(result, Mapping) else {"output": result}
    output.mkdir(parents=True, exist_ok=True)
    names = [f.stem for f in files]
    written: list[Path] = []
    other: dict[str, Any] = {}
    for key, value in outputs.items():
        if isinstance(value, torch.Tensor) and value.dim() == 4 and not files and len(value) == 1:
            path = output / f"{key}.png"  # one picture made from no input (a generator's grid)
            save_image(value[0].detach().float().cpu(), path)
            written.append(path)
        elif _is_pictures(value):
            folder = output / key if len(outputs) > 1 else output
            folder.mkdir(exist_ok=True)
            for i, picture in enumerate(value):
                path = folder / f"{names[i] if i < len(names) else f'sample-{i:04d}'}.png"
                if picture.is_floating_point():
                    save_image(picture.detach().float().cpu(), path)
                else:
                    save_label_map(picture, path)
                written.append(path)
        else:
            other[key] = _jsonable(value)
    if other:
        path = output / "predictions.json"
        path.write_text(json.dumps({"inputs": [str(f) for f in files], **other}, indent=2))
        written.append(path)
    return written


def _is_pictures(value: Any) -> bool:
    """An image batch [N, C, H, W], or a list with one picture per input: a float image [C, H, W]
    in [0, 1] or an integer label map [H, W] (inputs of different sizes cannot be stacked)."""
    if isinstance(value, torch.Tensor):
        return value.dim() == 4
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(
            isinstance(v, torch.Tensor)
            and (v.dim() == 3 and v.is_floating_point() or v.dim() == 2 and not v.is_floating_point())
            for v in value
        )
    )


def save_label_map(labels: torch.Tensor, path: Path) -> None:
    """An integer [H, W] label map as a palette PNG: the pixel values are the class indices (as
    VOC's SegmentationClass files), the palette only colours them for viewing."""
    from PIL import Image

    from vision_kernels.data.preview import PALETTE

    values = labels.detach().cpu()
    if values.min() < 0 or values.max() > 255:
        raise ValueError(
            f"label maps must hold class indices 0..255 for a palette PNG, got {int(values.min())}..{int(values.max())}"
        )
    picture = Image.fromarray(values.to(torch.uint8).numpy(), mode="P")
    colours = (PALETTE * 255).round().to(torch.uint8)
    palette = colours.repeat(256 // len(colours) + 1, 1)[:256]
    palette[255] = 255  # the ignore index: white
    picture.putpalette(palette.flatten().tolist())
    picture.save(path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value

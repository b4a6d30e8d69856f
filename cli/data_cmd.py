"""`vk data list | show NAME [key=value ...]`: the registered datasets, and a look at one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Datasets the installed plugins provide.", no_args_is_help=True)


@app.command("list")
def list_datasets() -> None:
    """Every dataset: name, splits, tasks, description, and the plugin it comes from."""
    from rich.console import Console
    from rich.table import Table

    from vision_kernels.registry import get_registry

    registry = get_registry()
    origin = {name: r.name for r in registry.plugins for name in r.registered.get("datasets", [])}
    table = Table(title="datasets (options go in data.options.KEY=VALUE)")
    for column in ("name", "splits", "tasks", "description", "plugin"):
        table.add_column(column)
    for name, dataset in sorted(registry.datasets.items()):
        table.add_row(name, ", ".join(dataset.splits), ", ".join(dataset.tasks), dataset.description,
                      origin.get(name, ""))  # fmt: skip
    Console().print(table if registry.datasets else "no datasets registered")


def _options(items: list[str]) -> dict[str, Any]:
    from vision_kernels.config import parse_override

    options: dict[str, Any] = {}
    for item in items:
        keys, value = parse_override(item)
        options[".".join(keys)] = value
    return options


def _describe(item: Any) -> str:
    """The structure of one item: shapes and dtypes of its tensors."""
    import torch

    if isinstance(item, torch.Tensor):
        return f"{str(item.dtype).removeprefix('torch.')}{list(item.shape)}"
    if isinstance(item, (tuple, list)):
        return "(" + ", ".join(_describe(i) for i in item) + ")"
    if isinstance(item, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in item.items()) + "}"
    return type(item).__name__


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The dataset's name (`vk data list`).")],
    options: Annotated[list[str] | None, typer.Argument(help="Options of its loader: key=value.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The sample grid PNG.")] = None,
    count: Annotated[int, typer.Option(help="Samples in the grid.")] = 16,
) -> None:
    """Counts per split, classes, the format of an item, and a grid PNG of samples."""
    from rich.console import Console

    from vision_kernels.data.preview import preview
    from vision_kernels.registry import get_registry

    from .errors import CliError

    datasets = get_registry().datasets
    if name not in datasets:
        raise CliError(f"unknown dataset {name!r}; known: {', '.join(sorted(datasets))}", hint="`vk data list`")
    entry = datasets[name]
    output = output or Path(f"{name}-samples.png")
    summary = preview(entry, _options(options or []), output, count)
    console = Console()
    console.print(f"[bold]{name}[/]: {entry.description}")
    for split, size in summary["counts"].items():
        console.print(f"  {split}: {size} items")
    if summary["classes"]:
        console.print(f"  classes ({len(summary['classes'])}): {', '.join(map(str, summary['classes']))}")
    console.print(f"  item: {_describe(summary['item'])}")
    console.print(f"  samples: {output}")

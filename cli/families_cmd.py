"""`vk families list | info NAME`."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Model families the installed plugins provide.", no_args_is_help=True)


@app.command("list")
def list_families() -> None:
    """Every family: name, task, description, and the plugin it comes from."""
    from rich.console import Console
    from rich.table import Table

    from vision_kernels.registry import get_registry

    registry = get_registry()
    origin = {name: r.name for r in registry.plugins for name in r.registered.get("families", [])}
    table = Table(title="model families")
    for column in ("name", "task", "description", "plugin"):
        table.add_column(column)
    for name, family in sorted(registry.families.items()):
        table.add_row(name, family.task, family.description, origin.get(name, ""))
    Console().print(table if registry.families else "no families installed: install a family plugin")


@app.command("info")
def family_info(name: Annotated[str, typer.Argument(help="The family's name.")]) -> None:
    """A family's task, description, and every config field with type, default and help."""
    from rich.console import Console
    from rich.table import Table

    from vision_kernels.config import describe_fields
    from vision_kernels.engine.run_config import run_config_model
    from vision_kernels.registry import get_registry

    family = get_registry().family(name)
    console = Console()
    console.print(f"[bold]{family.name}[/] ({family.task}), version {family.version}\n{family.description}")
    table = Table(title="config (defaults are the paper's; override with key=value)")
    for column in ("key", "type", "default", "help"):
        table.add_column(column)
    for row in describe_fields(run_config_model(family.config)):
        table.add_row(row["name"], row["type"], row["default"], row["help"])
    console.print(table)

"""`vk config show FAMILY [--config FILE] [key=value ...]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Family configurations.", no_args_is_help=True)


@app.command("show")
def show(
    family: Annotated[str, typer.Argument(help="The family's name.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides (nested keys with dots).")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="A YAML config file (between the defaults and overrides).")
    ] = None,
) -> None:
    """Print the resolved run config (the family's fields, `train` and `data`): family defaults < --config
    file < key=value overrides."""
    from vision_kernels.config import ConfigError, resolve, to_yaml
    from vision_kernels.engine.run_config import run_config_model
    from vision_kernels.registry import get_registry

    try:
        resolved = resolve(run_config_model(get_registry().family(family).config), config, overrides or [])
    except ConfigError as exc:
        exc.hint = f"`vk families info {family}` lists every key with its type and default"
        raise
    typer.echo(to_yaml(resolved), nl=False)

"""`vk plugins list | check`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .errors import CliError

app = typer.Typer(help="Installed plugins: what they register, and whether they load.", no_args_is_help=True)


def _records():
    from vision_kernels.registry import get_registry

    return get_registry().plugins


@app.command("list")
def list_plugins(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every plugin: name, version, distribution, hooks implemented, names registered, status."""
    records = _records()
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in records], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="vision_kernels plugins")
    for column in ("name", "version", "distribution", "hooks", "registered", "status"):
        table.add_column(column)
    for r in records:
        registered = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in r.registered.items() if names)
        status = r.status if r.status == "ok" else f"[red]{r.status}[/]: {r.error}"
        table.add_row(r.name, r.version or "", r.distribution or r.source, ", ".join(h.removeprefix("register_")
                      for h in r.hooks), registered, status)
    Console().print(table if records else "no plugins installed (entry-point group `vision_kernels`)")


@app.command("check")
def check_plugins(ctx: typer.Context) -> None:
    """Exit non-zero if any plugin failed to load, with the reason (and its traceback with --debug);
    warn about plugins that import torch when they load (every `vk` start pays for it) and say
    which plugins -p no:NAME blocked."""
    from vision_kernels.registry import get_registry, import_cost

    debug = bool(ctx.find_root().params.get("debug"))
    registry = get_registry()
    records = registry.plugins
    problems = [r for r in records if r.status == "error"]
    for r in records:
        cost = import_cost(r) if r.status == "ok" else None
        if cost and cost.heavy:
            typer.secho(
                f"warning: plugin {r.name!r} imports {', '.join(cost.heavy)} when it loads ({cost.seconds:.1f} s "
                f"added to every vk start, --help included): import {'them' if len(cost.heavy) > 1 else 'it'} inside "
                "the functions you register, or register vision_kernels.family.lazy(module, name) stand-ins",
                err=True,
                fg=typer.colors.YELLOW,
            )
    unknown = sorted(set(registry.blocked) - {r.name for r in records})
    if unknown:
        typer.secho(f"warning: -p no:{', no:'.join(unknown)} matches no installed plugin", err=True,
                    fg=typer.colors.YELLOW)  # fmt: skip
    if problems:
        for r in problems:
            if debug and r.traceback:
                typer.echo("".join(r.traceback), err=True)
            typer.secho(f"{r.name}: {r.error}", err=True, fg=typer.colors.RED)
        raise CliError(f"{len(problems)} plugin(s) failed to load", hint="fix or uninstall them; -p no:NAME blocks one")
    blocked = [r.name for r in records if r.status == "blocked"]
    loaded = len(records) - len(blocked)
    if blocked:
        typer.echo(f"{loaded} plugin(s) loaded; blocked with -p: {', '.join(blocked)}")
    else:
        typer.echo(f"{loaded} plugin(s), all loaded")

"""`vk`: the Typer application. Its start-up imports no torch (commands import what they need when
they run), so `vk --help`, `vk plugins list` and shell completion stay fast."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from . import bench_cmd, config_cmd, families_cmd, plugins_cmd
from .errors import exit_with

app = typer.Typer(
    name="vk",
    help="vision-kernels: fast, exact PyTorch kernels and model families for computer vision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(plugins_cmd.app, name="plugins")
app.add_typer(families_cmd.app, name="families")
app.add_typer(config_cmd.app, name="config")
app.command("bench")(bench_cmd.bench)


def _print_version(value: bool) -> None:
    if value:
        from vision_kernels import __version__

        typer.echo(f"vision-kernels {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    plugin: Annotated[
        list[str] | None, typer.Option("-p", metavar="no:NAME", help="Block the plugin NAME (repeatable).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """vision-kernels: fast, exact PyTorch kernels and model families for computer vision."""


@app.command()
def kernels(as_json: Annotated[bool, typer.Option("--json", help="Print the build info as JSON.")] = False) -> None:
    """Ops x backends x devices available here, and how the native extension was built."""
    from .kernels import show_kernels

    if as_json:
        import vision_kernels

        typer.echo(json.dumps(vision_kernels.build_info(), indent=2))
    else:
        show_kernels()


@app.command()
def demo(
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    quick: Annotated[bool, typer.Option(help="Smaller shapes and fewer repeats (a few seconds).")] = False,
) -> None:
    """Run the box ops on random boxes and print their speed next to torchvision's."""
    from .demo import run_demo

    run_demo(device=device, quick=quick)


def blocked_plugins(argv: list[str]) -> list[str]:
    """The NAMEs of `-p no:NAME` (and `-pno:NAME`) in argv."""
    names = []
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg == "-p" and i + 1 < len(argv) else arg[2:] if arg.startswith("-p") else None
        if value and value.startswith("no:"):
            names.append(value[3:])
    return names


def setup(argv: list[str]) -> None:
    """Loads the plugins (honouring -p no:NAME) and lets them add their commands."""
    from vision_kernels.registry import Registry, set_registry

    registry = Registry(blocked=blocked_plugins(argv)).load()
    set_registry(registry)
    registry.add_commands(app)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        setup(argv)
        app(argv, standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        # Typer vendors click, so its usage errors are recognised by what they do, not by class:
        # they know how to show themselves and which status to exit with.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        exit_with(exc, argv)

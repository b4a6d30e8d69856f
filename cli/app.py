"""`vk`: the Typer application. Its start-up imports no torch (commands import what they need when
they run), so `vk --help`, `vk plugins list` and shell completion stay fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import bench_cmd, config_cmd, data_cmd, families_cmd, plugins_cmd, train_cmd
from .demo_gan import STEPS as DEMO_STEPS
from .errors import CliError, exit_with, report


class _VkGroup(TyperGroup):
    """The root command: an error a command raises is reported as one line and a hint (the
    traceback only with --debug), whoever runs the app: `vk`, CliRunner, or an embedding program."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _is_click_control(exc):
                raise
            raise typer.Exit(report(exc, debug=bool(ctx.params.get("debug")))) from exc


def _is_click_control(exc: BaseException) -> bool:
    """Exit, Abort and usage errors: click handles them itself. (Typer vendors click, so usage errors
    are recognised by what they do: they show themselves and carry an exit status.)"""
    return isinstance(exc, (typer.Exit, typer.Abort)) or (
        callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int)
    )


def _print_version(value: bool) -> None:
    if value:
        from vision_kernels import __version__

        typer.echo(f"vision-kernels {__version__}")
        raise typer.Exit()


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
    # -p is applied before the app is built (main() scans argv: blocked plugins add no commands);
    # --debug is read by _VkGroup.invoke.


def kernels(as_json: Annotated[bool, typer.Option("--json", help="Print the build info as JSON.")] = False) -> None:
    """Ops x backends x devices available here (plugins' backends included), and how the native
    extension was built."""
    from .kernels import show_kernels

    if as_json:
        import vision_kernels

        typer.echo(json.dumps(vision_kernels.build_info(), indent=2))
    else:
        show_kernels()


def demo(
    what: Annotated[
        str, typer.Argument(help="kernels: the box ops next to torchvision; cgan: train, evaluate and report a GAN.")
    ] = "kernels",
    device: Annotated[str, typer.Option(help="cpu or cuda (cgan: also auto).")] = "cpu",
    quick: Annotated[bool, typer.Option(help="kernels: smaller shapes and fewer repeats (a few seconds).")] = False,
    steps: Annotated[int, typer.Option(help="cgan: training steps (about 3 minutes on 2 cores).")] = DEMO_STEPS,
    minutes: Annotated[float, typer.Option(help="cgan: stop after this many minutes whatever the steps.")] = 10.0,
    runs_dir: Annotated[Path | None, typer.Option(help="cgan: where the run goes (default: ./runs).")] = None,
    kernels: Annotated[bool, typer.Option(help="cgan: print the box ops' speed table first.")] = True,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="cgan: key=value overrides after the demo's own (train.max_steps=40).")
    ] = None,
) -> None:
    """A first look: the box ops' speed next to torchvision's (kernels), or a conditional GAN
    trained on real digits, evaluated and reported (cgan; what `make demo` runs)."""
    if what == "kernels":
        from .demo import run_demo

        run_demo(device=device, quick=quick)
    elif what == "cgan":
        from .demo_gan import run_gan_demo

        run_gan_demo(steps, minutes, device, runs_dir, overrides or [], kernels)
    else:
        raise CliError(f"vk demo: unknown demo {what!r}; choose kernels or cgan")


def build_app(registry: Any = None) -> typer.Typer:
    """The `vk` app: the core commands, and those the registry's plugins add (registry None: core
    commands only). Built per run, so plugins' commands never leak between registries."""
    app = typer.Typer(
        name="vk",
        help="vision-kernels: fast, exact PyTorch kernels and model families for computer vision.",
        cls=_VkGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    train_cmd.add_to(app)
    app.add_typer(plugins_cmd.app, name="plugins")
    app.add_typer(families_cmd.app, name="families")
    app.add_typer(config_cmd.app, name="config")
    app.add_typer(data_cmd.app, name="data")
    app.command("kernels")(kernels)
    app.command("bench")(bench_cmd.bench)
    app.command("demo")(demo)
    if registry is not None:
        registry.add_commands(app)
    return app


def blocked_plugins(argv: list[str]) -> list[str]:
    """The NAMEs of `-p no:NAME` (and `-pno:NAME`) in argv."""
    names = []
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg == "-p" and i + 1 < len(argv) else arg[2:] if arg.startswith("-p") else None
        if value and value.startswith("no:"):
            names.append(value[3:])
    return names


def main(argv: list[str] | None = None) -> None:
    """`vk`: loads the plugins (honouring -p no:NAME), builds the app with their commands, runs it."""
    from vision_kernels.registry import Registry, set_registry

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        registry = Registry(blocked=blocked_plugins(argv)).load()
    except Exception as exc:  # VK_STRICT_PLUGINS=1 and a broken plugin
        exit_with(exc, argv)
    set_registry(registry)
    build_app(registry)(args=argv, prog_name="vk")


app = build_app()
"""The core commands without plugins' (documentation, completion scripts, tests)."""

"""`vk`: the Typer application and its commands."""

from __future__ import annotations

import json

import typer

app = typer.Typer(
    name="vk",
    help="vision-kernels: fast, exact PyTorch kernels and model families for computer vision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from vision_kernels import __version__

        typer.echo(f"vision-kernels {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """vision-kernels: fast, exact PyTorch kernels and model families for computer vision."""


@app.command()
def kernels(as_json: bool = typer.Option(False, "--json", help="Print the build info as JSON.")) -> None:
    """Ops x backends x devices available here, and how the native extension was built."""
    from .kernels import show_kernels

    if as_json:
        import vision_kernels

        typer.echo(json.dumps(vision_kernels.build_info(), indent=2))
    else:
        show_kernels()


@app.command()
def demo(
    device: str = typer.Option("cpu", help="cpu or cuda."),
    quick: bool = typer.Option(False, help="Smaller shapes and fewer repeats (a few seconds)."),
) -> None:
    """Run the box ops on random boxes and print their speed next to torchvision's."""
    from .demo import run_demo

    run_demo(device=device, quick=quick)


def main() -> None:
    app()

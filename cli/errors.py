"""How `vk` reports failures: one readable line and a hint, the traceback only with --debug."""

from __future__ import annotations

import sys
import traceback

import typer


class CliError(Exception):
    """A user-facing error: `message` is one line, `hint` what to do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


# Errors in what the user asked for (exit status 2, like click's usage errors, and no type name in
# the message); anything else is a failure (status 1).
USER_ERRORS = (CliError, ValueError, TypeError, FileNotFoundError, FileExistsError)


LIMIT = 300  # characters of a message on its one line: enough for torch's "got ..., expected ..."


def one_line(message: str, limit: int = LIMIT) -> str:
    """A multi-line message on one line, keeping what says what went wrong. torch's messages put
    it after the first line ("conv2d() received an invalid combination of arguments - got (list,
    ...), but expected one of:" and then the signatures), so the lines are joined rather than cut;
    a traceback quoted in a message (a DataLoader worker's) gives its first line and its last (the
    exception); a C++ stack trace ("Exception raised from ...") is dropped."""
    lines = [" ".join(line.split()) for line in message.strip().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    cpp = next((i for i, line in enumerate(lines) if line.startswith("Exception raised from ")), None)
    if cpp:
        lines = lines[:cpp]
    if len(lines) > 2 and any("Traceback (most recent call last)" in line for line in lines):
        lines = [lines[0], lines[-1]]
    text = " ".join(lines)
    return text if len(text) <= limit else text[: limit - 4].rstrip() + " ..."


def report(exc: BaseException, debug: bool) -> int:
    """Prints `exc` for a person and returns the exit status."""
    from vision_kernels.config import ConfigError
    from vision_kernels.family import PluginError

    if debug:
        traceback.print_exception(exc)
    message = one_line(str(exc)) or type(exc).__name__
    hint = getattr(exc, "hint", None)
    if isinstance(exc, ConfigError):
        hint = hint or "`vk families info FAMILY` lists every key with its type and default"
    elif isinstance(exc, PluginError):
        hint = hint or "`vk plugins list` shows every plugin and its status"
    elif not isinstance(exc, USER_ERRORS):
        message = f"{type(exc).__name__}: {message}"
    if not debug and hint is None:
        hint = "rerun with --debug for the traceback"
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    if hint:
        typer.echo(f"hint: {hint}", err=True)
    # 2: the input was wrong (as click's usage errors); 1: something failed.
    return 2 if isinstance(exc, (PluginError, *USER_ERRORS)) else 1


def debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv


def exit_with(exc: BaseException, argv: list[str] | None = None) -> None:
    sys.exit(report(exc, debug_requested(sys.argv if argv is None else argv)))

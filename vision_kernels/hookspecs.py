"""The plugin contract: pluggy hooks a plugin implements to add families, datasets, kernel
backends, training callbacks and CLI commands.

A plugin is a module (or object) with functions marked @hookimpl, advertised in the `vision_kernels`
entry-point group of its distribution:

    [project.entry-points.vision_kernels]
    autoencoder = "vk_autoencoder"

Each hook receives a `register` callback rather than returning values, so the host can add keyword
arguments later without breaking plugins. Importing a plugin module must not import torch: the CLI
loads plugins on every start, and `vk --help` stays fast (build models inside the functions you
register). See docs/plugins.md.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "vision_kernels"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_families(register: Any) -> None:
    """Call register(family) for each vision_kernels.family.Family this plugin provides."""


@hookspec
def register_datasets(register: Any) -> None:
    """Call register(dataset) for each vision_kernels.family.Dataset this plugin provides."""


@hookspec
def register_kernels(register: Any) -> None:
    """Call register(kernel) for each vision_kernels.family.Kernel: another backend for an op, which
    then runs wherever the op does (backend= its name), shows in `vk kernels` and runs in the tests
    and benchmarks."""


@hookspec
def register_callbacks(register: Any) -> None:
    """Call register(callback) for each vision_kernels.family.Callback (training callbacks, loggers)."""


@hookspec
def register_commands(app: Any) -> None:
    """Add commands to the `vk` Typer app (app.command(...), app.add_typer(...))."""


HOOKS = ("register_families", "register_datasets", "register_kernels", "register_callbacks", "register_commands")

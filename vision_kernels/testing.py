"""pytest fixtures for plugin authors (and this project's tests), loaded by pytest through the
`pytest11` entry point whenever vision-kernels is installed.

    def test_my_family_registers(vk_register, vk_registry):
        vk_register(my_plugin_module)
        assert "autoencoder" in vk_registry.families

    def test_cli(vk_register, vk_cli):
        vk_register(my_plugin_module)
        result = vk_cli("families", "info", "autoencoder")
        assert result.exit_code == 0, result.output

    def test_one_training_step(vk_step):
        metrics, ctx = vk_step(MY_FAMILY, batch, "lr=0.01")   # no run directory, no data loader
        assert metrics["loss"] > 0 and ctx.step == 0

Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def vk_registry() -> Iterator[Any]:
    """An empty plugin registry (no entry points, no VK_PLUGINS), installed as the process's
    registry for the test and removed after it."""
    from vision_kernels.registry import Registry, get_registry, set_registry

    previous = get_registry()
    registry = Registry(autoload=False, strict=False, modules=[]).load()
    set_registry(registry)
    yield registry
    set_registry(previous)


@pytest.fixture
def vk_register(vk_registry: Any) -> Iterator[Callable[..., Any]]:
    """register(plugin, name=None) -> PluginRecord: registers a plugin object (a module, or an object
    with @hookimpl methods) in the test's registry, for this test only."""
    names: list[str] = []

    def register(plugin: Any, name: str | None = None) -> Any:
        record = vk_registry.register(plugin, name=name)
        names.append(record.name)
        return record

    yield register
    for name in names:
        if any(r.name == name for r in vk_registry.plugins):
            vk_registry.unregister(name)


@pytest.fixture
def vk_cli(vk_registry: Any) -> Callable[..., Any]:
    """vk_cli(*args) -> click.testing.Result: runs `vk args...` against the test's registry, its
    plugins' commands included (result.exit_code, result.output; result.stderr holds errors). The
    terminal is 240 columns wide, so rich tables do not wrap the text a test looks for."""
    from typer.testing import CliRunner

    from vision_kernels.cli.app import build_app

    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(build_app(vk_registry), list(args), env={"COLUMNS": "240"})

    return invoke


def step_context(family: Any, *overrides: str, device: str = "cpu") -> Any:
    """A StepContext for `family` (a Family) with the config from its defaults and `overrides`: the
    networks it builds (train mode, on `device`) and its optimizers, as the engine would pass them
    to training_step, without a run directory, data or DDP."""
    from vision_kernels.config import resolve
    from vision_kernels.engine.contexts import StepContext
    from vision_kernels.engine.devices import autocast_dtype
    from vision_kernels.engine.run_config import run_config_model
    from vision_kernels.engine.seeding import seed_everything

    config = resolve(run_config_model(family.config), overrides=list(overrides))
    seed_everything(config.train.seed, False)
    networks = {name: net.to(device).train() for name, net in dict(family.build(config)).items()}
    optimizers = dict(family.optimizers(config, networks))
    import torch

    target = torch.device(device)
    return StepContext(config, networks, optimizers, target, amp_dtype=autocast_dtype(config.train.precision, target))


@pytest.fixture
def vk_step() -> Callable[..., Any]:
    """vk_step(family, batch, *overrides, device="cpu") -> (metrics, ctx): one call of the family's
    training_step on `batch` (moved to the device, as the engine does), through step_context."""

    def run(family: Any, batch: Any, *overrides: str, device: str = "cpu") -> tuple[dict[str, float], Any]:
        from vision_kernels.engine.data import to_device

        ctx = step_context(family, *overrides, device=device)
        metrics = family.training_step(ctx, to_device(batch, ctx.device)) or {}
        return {k: float(v) for k, v in metrics.items()}, ctx

    return run

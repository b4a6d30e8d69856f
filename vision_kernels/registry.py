"""The plugin host: finds plugins through the `vision_kernels` entry-point group, registers each
in isolation, and keeps what they registered.

A plugin that fails to import, implements a hook that does not exist (pluggy's check_pending),
raises in a hook, or registers a name another plugin already took, is recorded with the reason and
skipped; the others work. The first-party plugin (the entry point whose target is
vision_kernels.plugins) loads first, whatever the entry points are named, so that a third-party
plugin can never take a built-in family's or dataset's name: a later claim of a taken name fails
the later plugin, naming the plugin that holds the name. Environment:
    VK_STRICT_PLUGINS=1            raise on the first problem instead
    VK_DISABLE_PLUGIN_AUTOLOAD=1   load no entry points
    VK_PLUGINS=pkg.mod,...         also load these modules by name (development, tests)
and the CLI's `-p no:NAME` blocks the plugin (entry point) NAME.

Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from vision_kernels import hookspecs
from vision_kernels.family import Callback, Dataset, Family, Kernel, PluginError, Registrations

GROUP = "vision_kernels"
# The first-party entry point (`builtin`): this module, advertised by this distribution.
FIRST_PARTY = ("vision_kernels.plugins", "vision-kernels")


def _first_party(ep: importlib.metadata.EntryPoint) -> bool:
    dist = getattr(ep, "dist", None)
    return ep.module == FIRST_PARTY[0] and (dist is None or dist.metadata["Name"] == FIRST_PARTY[1])


def _load_order(ep: importlib.metadata.EntryPoint) -> tuple[bool, str]:
    """First party first (a name claimed twice goes to the first claimant), then by name: a
    third-party entry point named `alexnet` that registers `unet` must not displace the built-in."""
    return (not _first_party(ep), ep.name)


@dataclass
class PluginRecord:
    """One plugin as `vk plugins list` shows it."""

    name: str
    source: str  # "entry point" or "VK_PLUGINS" or "test"
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    status: str = "ok"  # ok, error, blocked
    error: str | None = None
    traceback: list[str] | None = None  # of the error, for --debug

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "traceback"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class Registry:
    """Plugins and what they registered: families, datasets, kernels, callbacks."""

    def __init__(
        self,
        autoload: bool | None = None,
        strict: bool | None = None,
        blocked: Iterable[str] = (),
        modules: Iterable[str] | None = None,
    ) -> None:
        self.autoload = not _flag("VK_DISABLE_PLUGIN_AUTOLOAD") if autoload is None else autoload
        self.strict = _flag("VK_STRICT_PLUGINS") if strict is None else strict
        self.blocked = set(blocked)
        env_modules = [m.strip() for m in os.environ.get("VK_PLUGINS", "").split(",") if m.strip()]
        self.modules = list(env_modules if modules is None else modules)
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginRecord] = []
        self.families: dict[str, Family] = {}
        self.datasets: dict[str, Dataset] = {}
        self.kernels: dict[tuple[str, str], Kernel] = {}
        self.callbacks: dict[str, Callback] = {}
        self._objects: dict[str, Any] = {}

    # ---- loading -----------------------------------------------------------------------------------

    def load(self) -> Registry:
        if self.autoload:
            for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=_load_order):
                dist = getattr(ep, "dist", None)
                record = PluginRecord(
                    ep.name,
                    "entry point",
                    ep.value,
                    dist.metadata["Name"] if dist else None,
                    dist.version if dist else None,
                )
                if ep.name in self.blocked:
                    record.status, record.error = "blocked", "blocked with -p no:" + ep.name
                    self.plugins.append(record)
                    continue
                self._load_one(record, ep.load)
        for module in self.modules:
            record = PluginRecord(module, "VK_PLUGINS", module)
            if module in self.blocked:
                record.status, record.error = "blocked", "blocked with -p no:" + module
                self.plugins.append(record)
                continue
            self._load_one(record, lambda m=module: importlib.import_module(m))
        return self

    def register(self, plugin: Any, name: str | None = None, source: str = "test") -> PluginRecord:
        """Registers a plugin object (module, class instance) directly: for tests and embedding."""
        name = name or getattr(plugin, "__name__", type(plugin).__name__)
        return self._load_one(PluginRecord(name, source, getattr(plugin, "__name__", repr(plugin))), lambda: plugin)

    def unregister(self, name: str) -> None:
        record = self._record(name)
        if record.status == "ok":
            self._forget(record)
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.plugins.remove(record)

    def _load_one(self, record: PluginRecord, get: Any) -> PluginRecord:
        self.plugins.append(record)
        try:
            plugin = get()
        except Exception as exc:
            return self._fail(record, f"import failed: {type(exc).__name__}: {exc}", exc)
        try:
            self.pm.register(plugin, name=record.name)
            self.pm.check_pending()  # a hook name no spec declares
        except Exception as exc:
            if self.pm.has_plugin(record.name):
                self.pm.unregister(name=record.name)
            return self._fail(record, f"invalid hooks: {exc}", exc)
        record.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
        registrations = Registrations()
        try:
            self._call(plugin, "register_families", register=self._collector(registrations.families, Family))
            self._call(plugin, "register_datasets", register=self._collector(registrations.datasets, Dataset))
            self._call(plugin, "register_kernels", register=self._collector(registrations.kernels, Kernel))
            self._call(plugin, "register_callbacks", register=self._collector(registrations.callbacks, Callback))
            self._commit(registrations)
        except Exception as exc:
            self.pm.unregister(name=record.name)
            return self._fail(record, str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}", exc)
        record.registered = registrations.names()
        self._objects[record.name] = plugin
        return record

    def _fail(self, record: PluginRecord, message: str, exc: Exception) -> PluginRecord:
        record.status, record.error = "error", message
        if self.strict:
            raise PluginError(f"plugin {record.name!r}: {message}") from exc
        record.traceback = traceback.format_exception(exc)  # for --debug
        return record

    def _call(self, plugin: Any, hook: str, **kwargs: Any) -> None:
        """The plugin's own implementation of `hook`, called alone (one plugin's failure stays its own)."""
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})

    @staticmethod
    def _collector(target: list, kind: type) -> Any:
        def register(item: Any) -> None:
            if not isinstance(item, kind):
                raise PluginError(
                    f"register() takes a vision_kernels.family.{kind.__name__}, got {type(item).__name__}"
                )
            item.validate()
            target.append(item)

        return register

    def _commit(self, reg: Registrations) -> None:
        """Adds a plugin's registrations, all or none: a name already taken fails the plugin (the
        whole plugin, as any other error does: half a plugin would be harder to reason about)."""
        for kind, items, table, key in (
            ("family", reg.families, self.families, lambda f: f.name),
            ("dataset", reg.datasets, self.datasets, lambda d: d.name),
            ("kernel", reg.kernels, self.kernels, lambda k: (k.op, k.backend)),
            ("callback", reg.callbacks, self.callbacks, lambda c: c.name),
        ):
            names = [key(i) for i in items]
            for name in names:
                if name in table:
                    shown = "/".join(name) if isinstance(name, tuple) else name
                    owner = self._owner(kind, shown)
                    raise PluginError(
                        f"{kind} {shown!r} is already registered by plugin {owner!r}; choose another name"
                        if owner
                        else f"{kind} {shown!r} is already registered; choose another name"
                    )
            twice = [n for i, n in enumerate(names) if n in names[:i]]
            if twice:
                shown = "/".join(twice[0]) if isinstance(twice[0], tuple) else twice[0]
                raise PluginError(f"{kind} {shown!r} is already registered: this plugin registers it twice")
        for items, table, key in (
            (reg.families, self.families, lambda f: f.name),
            (reg.datasets, self.datasets, lambda d: d.name),
            (reg.kernels, self.kernels, lambda k: (k.op, k.backend)),
            (reg.callbacks, self.callbacks, lambda c: c.name),
        ):
            for item in items:
                table[key(item)] = item
        if reg.kernels:
            _kernels_changed()

    def _forget(self, record: PluginRecord) -> None:
        names = record.registered
        for name in names.get("families", []):
            self.families.pop(name, None)
        for name in names.get("datasets", []):
            self.datasets.pop(name, None)
        for name in names.get("callbacks", []):
            self.callbacks.pop(name, None)
        for name in names.get("kernels", []):
            op, _, backend = name.partition("/")
            self.kernels.pop((op, backend), None)
            _kernels_changed()
        self._objects.pop(record.name, None)

    def _owner(self, kind: str, name: str) -> str | None:
        """The plugin that registered `name` (a kernel as "op/backend"), for the refusal message."""
        section = {"family": "families", "dataset": "datasets", "kernel": "kernels", "callback": "callbacks"}[kind]
        for record in self.plugins:
            if name in record.registered.get(section, []):
                return record.name
        return None

    def _record(self, name: str) -> PluginRecord:
        for record in self.plugins:
            if record.name == name:
                return record
        raise KeyError(name)

    # ---- use -----------------------------------------------------------------------------------------

    def add_commands(self, app: Any) -> None:
        """Lets every working plugin add its CLI commands; one that fails is recorded and skipped."""
        for record in self.plugins:
            plugin = self._objects.get(record.name)
            if plugin is None:
                continue
            try:
                self._call(plugin, "register_commands", app=app)
            except Exception as exc:
                record.status, record.error = "error", f"register_commands failed: {type(exc).__name__}: {exc}"
                if self.strict:
                    raise PluginError(f"plugin {record.name!r}: {record.error}") from exc

    def family(self, name: str) -> Family:
        if name not in self.families:
            known = ", ".join(sorted(self.families)) or "none (no family plugin is installed)"
            raise PluginError(f"unknown family {name!r}; known: {known}")
        return self.families[name]

    def problems(self) -> list[PluginRecord]:
        return [p for p in self.plugins if p.status == "error"]


# Modules that cost seconds to import: a plugin that imports one when it loads slows every `vk`.
HEAVY_MODULES = ("torch", "torchvision", "triton")

# Run in a fresh interpreter: loads one plugin as the CLI does (import, then its registrations) and
# reports which heavy modules that imported and how long it took. A fresh process because in the
# CLI's own one every plugin is loaded already, so sys.modules cannot say which one imported torch.
_PROBE = """
import importlib.metadata, json, sys, time
from vision_kernels.registry import HEAVY_MODULES, Registry
registry = Registry(autoload=False, strict=False, modules=[])
start = time.perf_counter()
plugin = importlib.metadata.EntryPoint(name=sys.argv[1], value=sys.argv[2], group="vision_kernels").load()
registry.register(plugin, name=sys.argv[1])
seconds = time.perf_counter() - start
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY_MODULES))
print(json.dumps({"heavy": heavy, "seconds": seconds}))
"""


@dataclass
class ImportCost:
    """What loading one plugin costs a `vk` start: the heavy modules it imports, and the seconds."""

    heavy: list[str]
    seconds: float


def import_cost(record: PluginRecord, timeout: float = 120) -> ImportCost | None:
    """Loads the plugin of `record` alone in a subprocess (with this process's sys.path) and
    measures it; None for a plugin that cannot be loaded by name (one registered as an object, as
    tests do) or whose probe fails (the load error is already in the record)."""
    import json
    import subprocess
    import sys

    if record.source not in ("entry point", "VK_PLUGINS"):
        return None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, record.name, record.module],
            capture_output=True, text=True, timeout=timeout, env=env,
        )  # fmt: skip
        found = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return None
    return ImportCost(found["heavy"], found["seconds"]) if found else None


_REGISTRY: Registry | None = None
# Counts changes to the process's plugin kernels (and registry swaps): backends.resolve() caches its
# choices under this number, so a backend a plugin registers later is seen.
_generation = 0


def generation() -> int:
    """A number that changes whenever the kernels a registry holds or the process's registry change."""
    return _generation


def _kernels_changed() -> None:
    global _generation
    _generation += 1


def get_registry() -> Registry:
    """The process's registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry().load()
    return _REGISTRY


def set_registry(registry: Registry | None) -> None:
    """Replaces the process's registry (None: reload on next use). For the CLI's -p and tests."""
    global _REGISTRY
    _REGISTRY = registry
    _kernels_changed()

"""The plugin host: entry-point discovery, isolation of broken plugins, strict mode, the
allow/block lists, what plugins register (families, datasets, kernels, callbacks, commands), and the
Family contract's validation.

Discovery is tested hermetically: a fake distribution (a *.dist-info folder with entry_points.txt
and its modules) is put on sys.path, exactly what pip leaves in site-packages. The installed plugin
template (examples/plugin-template, installed by `make test`) covers the real pip path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import vision_kernels.ops as vko
from vision_kernels import backends, reference
from vision_kernels import registry as registry_module
from vision_kernels.family import BUILTIN_BACKENDS, Callback, Dataset, Family, Kernel, PluginError
from vision_kernels.hookspecs import hookimpl
from vision_kernels.registry import Registry

GOOD = '''
from pydantic import BaseModel, Field
from vision_kernels.family import Callback, Dataset, Family
from vision_kernels.hookspecs import hookimpl

class Config(BaseModel):
    size: int = Field(4, ge=1, description="a size")

FAMILY = Family(name="vkt-good", task="testing", description="a family for tests", config=Config,
                build=lambda config: {})

@hookimpl
def register_families(register):
    register(FAMILY)

@hookimpl
def register_datasets(register):
    register(Dataset(name="vkt-data", description="nothing", load=lambda: []))

@hookimpl
def register_callbacks(register):
    register(Callback(name="vkt-log", description="a logger", create=lambda: object(), kind="logger"))
'''

DUPLICATE = '''
from vk_fake_good import FAMILY
from vision_kernels.hookspecs import hookimpl

@hookimpl
def register_families(register):
    register(FAMILY)
'''

UNKNOWN_HOOK = '''
from vision_kernels.hookspecs import hookimpl

@hookimpl
def register_famillies(register):  # misspelt: pluggy's check_pending finds it
    pass
'''

RAISES = '''
from vk_fake_good import Config
from vision_kernels.family import Family
from vision_kernels.hookspecs import hookimpl

@hookimpl
def register_families(register):
    register(Family(name="vkt-partial", task="testing", description="d", config=Config, build=lambda c: {}))
    raise RuntimeError("boom in register_families")
'''

# entry-point name -> module; loaded in name order, so the duplicate comes after the original.
ENTRY_POINTS = {
    "vkt-a-good": "vk_fake_good",
    "vkt-b-duplicate": "vk_fake_duplicate",
    "vkt-c-broken": "vk_fake_missing_module",
    "vkt-d-unknown-hook": "vk_fake_unknown_hook",
    "vkt-e-raises": "vk_fake_raises",
}
BROKEN = ["vkt-b-duplicate", "vkt-c-broken", "vkt-d-unknown-hook", "vkt-e-raises"]


@pytest.fixture(scope="module")
def fake_distribution(tmp_path_factory) -> Path:
    """A site-packages-like folder holding the distribution vk-fake-plugins 1.2.3."""
    root = tmp_path_factory.mktemp("site")
    for name, source in (
        ("vk_fake_good", GOOD),
        ("vk_fake_duplicate", DUPLICATE),
        ("vk_fake_unknown_hook", UNKNOWN_HOOK),
        ("vk_fake_raises", RAISES),
    ):
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    info = root / "vk_fake_plugins-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vk-fake-plugins\nVersion: 1.2.3\n")
    lines = "".join(f"{name} = {module}\n" for name, module in ENTRY_POINTS.items())
    (info / "entry_points.txt").write_text(f"[vision_kernels]\n{lines}")
    return root


@pytest.fixture
def site(fake_distribution, monkeypatch) -> Path:
    """The fake distribution installed for one test; the plugin environment variables cleared."""
    monkeypatch.syspath_prepend(str(fake_distribution))
    for variable in ("VK_STRICT_PLUGINS", "VK_DISABLE_PLUGIN_AUTOLOAD", "VK_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
    return fake_distribution


@pytest.fixture
def process_registry(monkeypatch):
    """Restores the process's registry after a test that lets main() replace it."""
    monkeypatch.setattr(registry_module, "_REGISTRY", registry_module._REGISTRY)


def records(registry: Registry) -> dict:
    return {r.name: r for r in registry.plugins}


# ---- discovery and isolation -------------------------------------------------------------------------


def test_entry_points_are_discovered_with_their_distribution(site):
    registry = Registry().load()
    good = records(registry)["vkt-a-good"]
    assert (good.status, good.source) == ("ok", "entry point")
    assert (good.distribution, good.version) == ("vk-fake-plugins", "1.2.3")
    assert good.hooks == ["register_callbacks", "register_datasets", "register_families"]
    assert good.registered == {"families": ["vkt-good"], "datasets": ["vkt-data"], "kernels": [],
                               "callbacks": ["vkt-log"]}
    assert registry.family("vkt-good").task == "testing"
    assert set(registry.datasets) >= {"vkt-data"} and registry.callbacks["vkt-log"].kind == "logger"


def test_first_party_families_use_the_same_entry_point_group(site):
    builtin = records(Registry().load())["builtin"]
    assert (builtin.status, builtin.distribution, builtin.module) == ("ok", "vision-kernels", "vision_kernels.plugins")


def test_each_broken_plugin_is_recorded_and_skipped(site):
    registry = Registry().load()
    found = records(registry)
    assert [name for name in ENTRY_POINTS if found[name].status == "error"] == BROKEN
    assert found["vkt-b-duplicate"].error == (
        "family 'vkt-good' is already registered by plugin 'vkt-a-good'; choose another name"
    )
    assert found["vkt-c-broken"].error.startswith("import failed: ModuleNotFoundError")
    assert found["vkt-d-unknown-hook"].error.startswith("invalid hooks") and "register_famillies" in found[
        "vkt-d-unknown-hook"
    ].error
    assert found["vkt-e-raises"].error == "RuntimeError: boom in register_families"
    assert all(found[name].traceback for name in BROKEN)  # kept for --debug
    # All or none: what the failing plugin registered before it raised is not kept.
    assert "vkt-partial" not in registry.families
    # The broken ones left no hook behind; the good one still works.
    assert not any(registry.pm.has_plugin(name) for name in BROKEN)
    assert registry.family("vkt-good").name == "vkt-good"


IMPOSTOR = '''
from pydantic import BaseModel
from vision_kernels.family import Dataset, Family
from vision_kernels.hookspecs import hookimpl

class Config(BaseModel):
    size: int = 1

@hookimpl
def register_families(register):
    register(Family(name="unet", task="segmentation", description="an impostor", config=Config,
                    build=lambda config: {}))
    register(Family(name="vkt-impostor-own", task="testing", description="d", config=Config,
                    build=lambda config: {}))

@hookimpl
def register_datasets(register):
    register(Dataset(name="fashion-mnist", description="an impostor", load=lambda split="train": []))
'''


@pytest.fixture
def impostor_site(tmp_path, monkeypatch) -> Path:
    """A distribution whose entry point `alenet` sorts before `builtin` and claims `unet`."""
    (tmp_path / "vk_fake_impostor.py").write_text(textwrap.dedent(IMPOSTOR))
    info = tmp_path / "vk_fake_impostor-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vk-fake-impostor\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[vision_kernels]\nalenet = vk_fake_impostor\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for variable in ("VK_STRICT_PLUGINS", "VK_DISABLE_PLUGIN_AUTOLOAD", "VK_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def test_first_party_names_cannot_be_taken_whatever_the_entry_point_names(impostor_site):
    registry = Registry().load()
    found = records(registry)
    names = [r.name for r in registry.plugins]
    assert names.index("builtin") < names.index("alenet")  # first party first, although "alenet" < "builtin"
    assert found["builtin"].status == "ok"
    assert {"unet", "dcgan", "gan", "cgan"} <= set(registry.families) and "fashion-mnist" in registry.datasets
    assert registry.families["unet"].description != "an impostor"
    assert registry.datasets["fashion-mnist"].description != "an impostor"
    # The whole conflicting plugin is refused (all or none), naming the plugin that holds the name.
    assert found["alenet"].status == "error"
    assert found["alenet"].error == "family 'unet' is already registered by plugin 'builtin'; choose another name"
    assert "vkt-impostor-own" not in registry.families


def test_an_impostor_is_reported_and_the_builtins_still_list(impostor_site, capsys, process_registry):
    code, out, _ = run_main(capsys, "families", "list")
    assert code == 0 and "dcgan" in out and "an impostor" not in out
    code, _, err = run_main(capsys, "plugins", "check")
    assert code == 2 and "alenet: family 'unet' is already registered by plugin 'builtin'" in err


def test_a_name_registered_twice_by_one_plugin_says_so(vk_register):
    record = vk_register(_plugin(families=[family(), family()]), name="twice")
    assert record.error == "family 'small' is already registered: this plugin registers it twice"


def test_strict_mode_raises_on_the_first_problem(site, monkeypatch):
    with pytest.raises(PluginError, match="plugin 'vkt-b-duplicate': family 'vkt-good' is already registered"):
        Registry(strict=True).load()
    monkeypatch.setenv("VK_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="vkt-b-duplicate"):
        Registry().load()


def test_autoload_can_be_disabled(site, monkeypatch):
    monkeypatch.setenv("VK_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert Registry().load().plugins == []


def test_vk_plugins_loads_modules_by_name(site, monkeypatch):
    monkeypatch.setenv("VK_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("VK_PLUGINS", "vk_fake_good, vk_fake_missing_module")
    found = records(Registry().load())
    assert found["vk_fake_good"].status == "ok" and found["vk_fake_good"].source == "VK_PLUGINS"
    assert found["vk_fake_missing_module"].status == "error"


def test_a_blocked_plugin_is_listed_but_not_loaded(site):
    registry = Registry(blocked=["vkt-a-good"]).load()
    found = records(registry)
    assert found["vkt-a-good"].status == "blocked" and not registry.pm.has_plugin("vkt-a-good")
    assert "vkt-data" not in registry.datasets
    # With the original blocked, the duplicate is no longer one.
    assert found["vkt-b-duplicate"].status == "ok" and found["vkt-b-duplicate"].registered["families"] == ["vkt-good"]


def test_installed_template_is_found_through_its_entry_point():
    found = records(Registry(modules=[]).load())
    if "autoencoder" not in found:
        pytest.skip("examples/plugin-template is not installed (make test installs it)")
    assert found["autoencoder"].status == "ok" and found["autoencoder"].distribution == "vk-autoencoder"


# ---- what a plugin registers ---------------------------------------------------------------------------


class Config:
    """Not a pydantic model."""


def family(**changes) -> Family:
    from pydantic import BaseModel

    class Small(BaseModel):
        size: int = 3

    fields = dict(name="small", task="testing", description="d", config=Small, build=lambda c: {})
    return Family(**{**fields, **changes})


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(name="Bad Name"), "family name must be lower-case"),
        (dict(config=Config), "config must be a pydantic BaseModel subclass"),
        (dict(build="not callable"), "build must be callable"),
        (dict(training_step=3), "training_step must be callable, got int"),
    ],
)
def test_family_validation(changes, message):
    with pytest.raises(PluginError, match=message):
        family(**changes).validate()


def test_family_config_needs_defaults():
    from pydantic import BaseModel

    class NoDefault(BaseModel):
        size: int

    with pytest.raises(PluginError, match="every config field needs a default"):
        family(config=NoDefault).validate()


def test_registering_something_invalid_fails_that_plugin(vk_register):
    class WrongType:
        @hookimpl
        def register_families(self, register):
            register({"name": "dict-family"})

    class Invalid:
        @hookimpl
        def register_datasets(self, register):
            register(Dataset(name="x", description="d", load=None))

    assert "takes a vision_kernels.family.Family, got dict" in vk_register(WrongType(), name="wrong").error
    assert "dataset 'x': load must be callable" in vk_register(Invalid(), name="invalid").error
    assert "callback name must be" in vk_register(_plugin(callbacks=[Callback("CB", "d", object)]), "cb").error


def _plugin(families=(), kernels=(), callbacks=()):
    class Plugin:
        @hookimpl
        def register_families(self, register):
            for f in families:
                register(f)

        @hookimpl
        def register_kernels(self, register):
            for k in kernels:
                register(k)

        @hookimpl
        def register_callbacks(self, register):
            for c in callbacks:
                register(c)

    return Plugin()


def test_unregister_forgets_what_the_plugin_registered(vk_registry, vk_register):
    vk_register(_plugin(families=[family()], kernels=[Kernel("box_iou", "mine", reference.box_iou)]), name="p")
    assert "small" in vk_registry.families and ("box_iou", "mine") in vk_registry.kernels
    vk_registry.unregister("p")
    assert "small" not in vk_registry.families and ("box_iou", "mine") not in vk_registry.kernels


def test_builtin_backend_names_match():
    assert BUILTIN_BACKENDS == backends.BACKENDS


def test_a_kernel_cannot_take_a_builtin_backend_name(vk_register):
    assert "backend name 'native' is built in" in vk_register(
        _plugin(kernels=[Kernel("box_iou", "native", reference.box_iou)]), name="p"
    ).error


def test_plugin_kernel_becomes_a_backend_of_the_op(vk_register):
    calls = []

    def box_iou_doubled(boxes1, boxes2, mode="iou", eps=1e-7):
        calls.append(mode)
        return reference.box_iou(boxes1, boxes2, mode, eps) * 2

    vk_register(_plugin(kernels=[Kernel("box_iou", "doubled", box_iou_doubled, description="x2")]), name="p")
    a, b = torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 1, 3, 3], [0, 0, 2, 2]])
    assert torch.equal(vko.box_iou(a, b, mode="giou", backend="doubled"), 2 * reference.box_iou(a, b, "giou"))
    assert calls == ["giou"]
    assert "doubled" in backends.available_backends("box_iou", "cpu")
    assert "doubled" not in backends.available_backends("nms", "cpu")
    with backends.use_backend("doubled"):
        assert torch.equal(vko.box_iou(a, b), 2 * reference.box_iou(a, b))
    # auto never picks a plugin's backend: it follows the measured preference.
    assert backends.resolve("box_iou", torch.device("cpu"), "auto") == "native"


def test_plugin_kernel_device_and_op_limits(vk_register):
    vk_register(_plugin(kernels=[Kernel("box_iou", "gpu-only", reference.box_iou, devices=("cuda",))]), name="p")
    a = torch.zeros(1, 4)
    with pytest.raises(RuntimeError, match="plugin backend 'gpu-only' runs box_iou on cuda only"):
        vko.box_iou(a, a, backend="gpu-only")
    with pytest.raises(RuntimeError, match="no plugin registered backend 'gpu-only' for nms"):
        vko.nms(a, torch.zeros(1), 0.5, backend="gpu-only")
    with pytest.raises(ValueError, match=r"plugins: gpu-only.*got 'nope'"):
        vko.box_iou(a, a, backend="nope")


def test_a_failing_register_commands_is_recorded(vk_registry, vk_register, vk_cli):
    class Commands:
        @hookimpl
        def register_commands(self, app):
            @app.command("hello")
            def hello(name: str = "world") -> None:
                """Say hello."""
                print(f"hello {name}")

    class Broken:
        @hookimpl
        def register_commands(self, app):
            raise RuntimeError("no commands today")

    vk_register(Commands(), name="commands")
    vk_register(Broken(), name="broken")
    result = vk_cli("hello", "--name", "plugins")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "hello plugins"
    broken = records(vk_registry)["broken"]
    assert broken.status == "error" and "register_commands failed: RuntimeError: no commands today" in broken.error


# ---- the CLI's plugin loading (main) -----------------------------------------------------------------


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    from vision_kernels.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code or 0, out, err


def test_main_lists_plugins_as_json(site, capsys, process_registry):
    code, out, _ = run_main(capsys, "plugins", "list", "--json")
    assert code == 0
    listed = {p["name"]: p for p in json.loads(out)}
    assert listed["vkt-a-good"]["registered"]["families"] == ["vkt-good"]
    assert listed["vkt-c-broken"]["status"] == "error" and "traceback" not in listed["vkt-c-broken"]


def test_main_blocks_with_p_no(site, capsys, process_registry):
    code, out, _ = run_main(capsys, "-p", "no:vkt-a-good", "-pno:vkt-b-duplicate", "plugins", "list", "--json")
    listed = {p["name"]: p for p in json.loads(out)}
    assert code == 0 and listed["vkt-a-good"]["status"] == listed["vkt-b-duplicate"]["status"] == "blocked"


def test_plugins_check_fails_with_the_reasons(site, capsys, process_registry):
    code, _, err = run_main(capsys, "plugins", "check")
    assert code == 2
    assert "vkt-c-broken: import failed: ModuleNotFoundError" in err
    assert "error: 4 plugin(s) failed to load" in err and "Traceback" not in err
    code, _, err = run_main(capsys, "--debug", "plugins", "check")
    assert code == 2 and "Traceback" in err and "boom in register_families" in err
    blocked = [f"-pno:{name}" for name in BROKEN]
    code, out, _ = run_main(capsys, *blocked, "plugins", "check")
    loaded = len(records(registry_module.get_registry())) - len(BROKEN)
    assert code == 0 and "all loaded" not in out
    assert out.strip() == f"{loaded} plugin(s) loaded; blocked with -p: {', '.join(BROKEN)}"


def test_plugins_check_warns_about_a_block_that_matches_nothing(site, capsys, process_registry):
    code, _, err = run_main(capsys, "-pno:vkt-nothing", *(f"-pno:{name}" for name in BROKEN), "plugins", "check")
    assert code == 0 and "warning: -p no:vkt-nothing matches no installed plugin" in err


HEAVY = '''
import torch  # at module level: every vk start pays for it
from vision_kernels.hookspecs import hookimpl

@hookimpl
def register_callbacks(register):
    pass
'''

LIGHT = '''
from vision_kernels.family import Callback
from vision_kernels.hookspecs import hookimpl

def create():
    import torch  # inside a registered function: called when a run uses it, not when vk starts
    return object()

@hookimpl
def register_callbacks(register):
    register(Callback(name="vkt-light", description="d", create=create))
'''


def test_plugins_check_warns_about_a_plugin_that_imports_torch(tmp_path, monkeypatch, capsys, process_registry):
    (tmp_path / "vk_fake_heavy.py").write_text(textwrap.dedent(HEAVY))
    (tmp_path / "vk_fake_light.py").write_text(textwrap.dedent(LIGHT))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("VK_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("VK_PLUGINS", "vk_fake_heavy,vk_fake_light")
    code, out, err = run_main(capsys, "plugins", "check")
    assert code == 0 and out.strip() == "2 plugin(s), all loaded"
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: plugin 'vk_fake_heavy' imports torch when it loads (")
    assert "s added to every vk start, --help included" in warnings[0] and "vision_kernels.family.lazy" in warnings[0]


def test_import_cost_of_the_first_party_plugin_is_light():
    from vision_kernels.registry import import_cost

    builtin = records(Registry(modules=[]).load())["builtin"]
    cost = import_cost(builtin)
    assert cost is not None and cost.heavy == [], cost


def test_strict_main_reports_one_line(site, capsys, process_registry, monkeypatch):
    monkeypatch.setenv("VK_STRICT_PLUGINS", "1")
    code, _, err = run_main(capsys, "families", "list")
    assert code == 2 and err.startswith("error: plugin 'vkt-b-duplicate'") and "Traceback" not in err


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


@pytest.mark.parametrize(
    "args, env",
    [
        (["--help"], {}),
        (["plugins", "list"], {}),
        (["families", "list"], {}),
        ([], {"_VK_COMPLETE": "complete_bash", "COMP_WORDS": "vk fam", "COMP_CWORD": "1"}),
    ],
    ids=["help", "plugins-list", "families-list", "completion"],
)
def test_start_up_imports_no_torch(args, env):
    code = textwrap.dedent(
        f"""
        import sys
        from vision_kernels.cli.app import main
        try:
            main({args!r})
        except SystemExit as exc:
            assert not exc.code, exc.code
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "triton"))
        assert not loaded, loaded
        """
    )
    result = _python(code, **env)
    assert result.returncode == 0, result.stderr
    if env:
        assert result.stdout.strip() == "families"


def test_lazy_imports_its_module_only_when_called(tmp_path, monkeypatch):
    from vision_kernels.family import lazy

    source = "CALLS = []\ndef work(a, b=2):\n    CALLS.append(a)\n    return a + b\n"
    (tmp_path / "lazy_probe_module.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    work = lazy("lazy_probe_module", "work")
    assert "lazy_probe_module" not in sys.modules
    assert work.__name__ == "work" and "lazy_probe_module.work" in work.__doc__
    assert work(1, b=5) == 6 and sys.modules["lazy_probe_module"].CALLS == [1]
    monkeypatch.delitem(sys.modules, "lazy_probe_module")


def test_a_backend_registered_after_the_choice_was_cached_is_seen(vk_registry, vk_register):
    """backends.resolve() caches its choices; registering or unregistering a plugin kernel
    invalidates them."""
    cpu = torch.device("cpu")
    with pytest.raises((ValueError, RuntimeError), match="mine"):
        backends.resolve("box_iou", cpu, "mine")
    auto = backends.resolve("box_iou", cpu)  # cached now
    vk_register(_plugin(kernels=[Kernel("box_iou", "mine", reference.box_iou)]), name="p")
    assert backends.resolve("box_iou", cpu, "mine") == "mine"
    assert backends.resolve("box_iou", cpu) == auto
    vk_registry.unregister("p")
    with pytest.raises((ValueError, RuntimeError), match="mine"):
        backends.resolve("box_iou", cpu, "mine")

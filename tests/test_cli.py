"""The `vk` command line, every command through Typer's CliRunner: version, plugins, families,
config, kernels, bench, demo; errors as one line and a hint (the traceback only with --debug).
(Start-up without torch and the plugin loading of main() are in test_plugins.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

import vision_kernels
from vision_kernels.cli import app
from vision_kernels.family import Family, Kernel
from vision_kernels.hookspecs import hookimpl

runner = CliRunner()


def test_help_and_version_do_not_import_torch():
    code = (
        "import sys; from vision_kernels.cli import app; from typer.testing import CliRunner;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "r = CliRunner().invoke(app, ['--version']); assert r.exit_code == 0, r.output;"
        "print(r.output.strip()); assert 'torch' not in sys.modules, 'torch imported at start-up'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"vision-kernels {vision_kernels.__version__}"


def test_kernels_json_is_build_info():
    result = runner.invoke(app, ["kernels", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["native"]["loaded"] and "box_iou" in info["backends"]


def test_kernels_table():
    result = runner.invoke(app, ["kernels"])
    assert result.exit_code == 0, result.output
    assert "box_iou" in result.output and "native" in result.output


def test_demo_quick_runs_and_agrees_with_torchvision():
    result = runner.invoke(app, ["demo", "--quick"])
    assert result.exit_code == 0, result.output
    for case in ("iou-1000x1000", "giou-1000x1000", "nms-5k"):
        assert case in result.output
    assert "DIFFERENT" not in result.output


class Optim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = Field(2e-4, gt=0, description="learning rate")


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    depth: int = Field(4, ge=1, description="number of blocks")
    optim: Optim = Field(default_factory=Optim)


class ToyPlugin:
    """A plugin object with a family and a kernel, registered per test through vk_register."""

    @hookimpl
    def register_families(self, register):
        register(Family(name="toy", task="testing", description="a toy family", config=ToyConfig,
                        build=lambda config: {}, version="1.0"))

    @hookimpl
    def register_kernels(self, register):
        from vision_kernels import reference

        register(Kernel("nms", "toy-nms", reference.nms, description="the reference, renamed"))


@pytest.fixture
def toy(vk_register):
    return vk_register(ToyPlugin(), name="toy-plugin")


def test_no_arguments_prints_help(vk_cli):
    result = vk_cli()
    assert "Usage" in result.output and "families" in result.output


def test_plugins_list(toy, vk_cli):
    table = vk_cli("plugins", "list")
    assert table.exit_code == 0, table.output
    assert "toy-plugin" in table.output and "families: toy" in table.output
    listed = json.loads(vk_cli("plugins", "list", "--json").stdout)
    assert "ToyPlugin object" in listed[0].pop("module")
    assert listed == [
        {
            "name": "toy-plugin",
            "source": "test",
            "distribution": None,
            "version": None,
            "hooks": ["register_families", "register_kernels"],
            "registered": {"families": ["toy"], "datasets": [], "kernels": ["nms/toy-nms"], "callbacks": []},
            "status": "ok",
            "error": None,
        }
    ]


def test_plugins_list_when_none(vk_cli):
    assert "no plugins installed" in vk_cli("plugins", "list").output


def test_plugins_check(toy, vk_register, vk_cli):
    ok = vk_cli("plugins", "check")
    assert ok.exit_code == 0 and "1 plugin(s), all loaded" in ok.output
    vk_register(ToyPlugin(), name="toy-again")  # registers family "toy" twice
    failed = vk_cli("plugins", "check")
    assert failed.exit_code == 2
    assert "toy-again: family 'toy' is already registered" in failed.stderr
    assert "error: 1 plugin(s) failed to load" in failed.stderr and "Traceback" not in failed.stderr


def test_families_list_and_info(toy, vk_cli):
    listed = vk_cli("families", "list")
    assert listed.exit_code == 0 and "toy" in listed.output and "a toy family" in listed.output
    info = vk_cli("families", "info", "toy")
    assert info.exit_code == 0, info.output
    for text in ("toy (testing), version 1.0", "depth", "number of blocks", "optim.lr", "0.0002"):
        assert text in info.output


def test_families_info_shows_the_familys_engine_defaults(vk_register, vk_cli):
    """dcgan declares train.epochs 10 and data.name fashion-mnist: info must agree with config show."""
    import yaml

    import vision_kernels.plugins

    vk_register(vision_kernels.plugins, name="builtin")
    info = vk_cli("families", "info", "dcgan")
    assert info.exit_code == 0, info.output
    rows = {cells[1].strip(): cells[3].strip() for cells in (line.split("│") for line in info.output.splitlines())
            if len(cells) == 6}
    shown = yaml.safe_load(vk_cli("config", "show", "dcgan").stdout)
    assert rows["train.epochs"] == repr(shown["train"]["epochs"]) == "10"
    assert rows["data.name"] == repr(shown["data"]["name"]) == "'fashion-mnist'"


def test_families_list_when_none(vk_cli):
    assert "no families installed" in vk_cli("families", "list").output


def test_unknown_family_is_one_line_and_a_hint(toy, vk_cli):
    result = vk_cli("families", "info", "nope")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: unknown family 'nope'; known: toy",
        "hint: `vk plugins list` shows every plugin and its status",
    ]
    debug = vk_cli("--debug", "families", "info", "nope")
    assert debug.exit_code == 2 and "Traceback" in debug.stderr and "PluginError" in debug.stderr


def test_config_show_precedence(toy, vk_cli, tmp_path):
    import yaml

    shown = yaml.safe_load(vk_cli("config", "show", "toy").stdout)
    assert (shown["depth"], shown["optim"]) == (4, {"lr": 0.0002})
    assert shown["train"]["epochs"] == 1 and shown["data"]["batch_size"] == 32  # the engine's sections
    path = tmp_path / "toy.yaml"
    path.write_text("depth: 8\noptim: {lr: 0.1}\ntrain: {epochs: 5}\n")
    result = vk_cli("config", "show", "toy", "--config", str(path), "optim.lr=0.5")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert (shown["depth"], shown["optim"], shown["train"]["epochs"]) == (8, {"lr": 0.5}, 5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["depth=0"], "error: config key 'depth': got 0 (int); input should be greater than or equal to 1"),
        (["optim.momentum=1"], "error: unknown config key 'optim.momentum'; allowed here: lr"),
        (["--config", "/no/such.yaml"], "error: config file '/no/such.yaml' does not exist"),
        (["--config", "/"], "error: config file '/' is a directory: expected a YAML file"),
    ],
)
def test_config_show_errors(toy, vk_cli, args, message):
    result = vk_cli("config", "show", "toy", *args)
    assert result.exit_code == 2
    hint = "hint: `vk families info toy` lists every key with its type and default"
    assert result.stderr.splitlines() == [message, hint]


def test_kernels_lists_plugin_backends(toy, vk_cli):
    table = vk_cli("kernels")
    assert table.exit_code == 0, table.output
    assert "toy-nms" in table.output and "the reference, renamed (from plugin toy-plugin)" in table.output
    info = json.loads(vk_cli("kernels", "--json").stdout)
    assert "toy-nms" in info["backends"]["nms"]["cpu"]
    assert info["plugin_kernels"] == [
        {"op": "nms", "backend": "toy-nms", "devices": ["cpu"], "description": "the reference, renamed",
         "plugin": "toy-plugin"}
    ]


def test_bench_one_op_includes_plugin_backends(toy, vk_cli):
    result = vk_cli("bench", "nms", "--quick")
    assert result.exit_code == 0, result.output
    for text in ("torchvision.nms", "native", "reference", "toy-nms", "baseline"):
        assert text in result.output


def test_bench_unknown_op(vk_cli):
    result = vk_cli("bench", "nope")
    assert result.exit_code == 2 and "error: no benchmark case for op 'nope'" in result.stderr
    assert "hint: ops with cases: " in result.stderr and "box_iou" in result.stderr


def test_bench_cuda_without_gpu(vk_cli):
    if __import__("torch").cuda.is_available():
        pytest.skip("a GPU is present")
    result = vk_cli("bench", "--device", "cuda")
    assert result.exit_code == 2 and "error: --device cuda, but torch sees no CUDA GPU here" in result.stderr


def test_a_multi_line_error_keeps_what_went_wrong_on_one_line(vk_register, vk_cli):
    """torch says what went wrong after its first line: the one-line error must keep it."""

    class Raises:
        @hookimpl
        def register_commands(self, app):
            @app.command("conv")
            def conv() -> None:
                import torch

                torch.nn.functional.conv2d([torch.zeros(1, 1, 2, 2)], torch.zeros(1, 1, 1, 1))

    vk_register(Raises(), name="raises")
    result = vk_cli("conv")
    assert result.exit_code == 2  # a TypeError counts as wrong input
    error, hint = result.stderr.splitlines()
    assert error.startswith("error: conv2d() received an invalid combination of arguments - got (list")
    assert "expected one of: * (Tensor input" in error and hint == "hint: rerun with --debug for the traceback"


def test_one_line():
    from vision_kernels.cli.errors import one_line

    assert one_line("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)") == (
        "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"
    )
    assert one_line("got (list), but expected one of:\n * (Tensor input)\n\n") == (
        "got (list), but expected one of: * (Tensor input)"
    )
    worker = (
        "Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 3, in f\n    raise ValueError(...)\nValueError: image \'a.png\' is not readable\n'
    )
    assert one_line(worker) == (
        "Caught ValueError in DataLoader worker process 0. ValueError: image 'a.png' is not readable"
    )
    assert one_line("bad size\nException raised from check at x.cpp:1\nframe #0: ...") == "bad size"
    long = one_line("x" * 1000)
    assert len(long) == 300 and long.endswith(" ...")
    assert one_line("  \n ") == ""

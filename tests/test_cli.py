"""The `vk` command line: start-up without torch, version, kernels, demo."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

import vision_kernels
from vision_kernels.cli import app

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

"""`vk train / eval / predict / report` through Typer's CliRunner on the tiny test families, and the
runs that need their own processes: Ctrl-C (SIGINT) and a 2-process gloo run under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import vk_tiny
from conftest import PLUGINS_DIR
from safetensors.torch import load_file

from vision_kernels.config import resolve
from vision_kernels.engine import checkpoint as ckpt
from vision_kernels.engine.run_config import run_config_model
from vision_kernels.engine.trainer import Trainer
from vision_kernels.viz.grid import save_image


@pytest.fixture
def cli(vk_register, vk_cli, tmp_path):
    """vk_cli with the tiny families registered; train writes under tmp_path/runs."""
    vk_register(vk_tiny, name="vk_tiny")

    def run(*args):
        if args and args[0] == "train" and "--resume" not in args:
            args = (*args, "--runs-dir", str(tmp_path / "runs"))
        return vk_cli(*args)

    return run


@pytest.fixture
def run_dir(cli, tmp_path):
    result = cli("train", "tiny", "train.tensorboard=false", "--name", "first", "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / "tiny" / "first"


def test_train_writes_the_run_directory(run_dir, cli):
    assert {"run.json", "config.yaml", "environment.json", "metrics.jsonl", "report.html", "checkpoints"} <= {
        p.name for p in run_dir.iterdir()
    }
    again = cli("train", "tiny", "--name", "first")
    assert again.exit_code == 2
    assert (
        "run directory" in again.stderr
        and "exists; choose another --name, or continue it with --resume" in again.stderr
    )


def test_train_output(cli, tmp_path):
    result = cli("train", "tiny", "train.tensorboard=false", "hidden=8", "--name", "out", "--quiet")
    assert result.exit_code == 0, result.output
    assert "finished: 16 steps, 1 epochs; loss=" in result.stdout and "accuracy=" in result.stdout
    assert f"run: {tmp_path / 'runs' / 'tiny' / 'out'}" in result.stdout and "report.html" in result.stdout


def test_train_config_errors(cli, tmp_path):
    bad = cli("train", "tiny", "train.epochs=0")
    assert bad.exit_code == 2
    assert bad.stderr.splitlines() == [
        "error: config key 'train.epochs': got 0 (int); input should be greater than or equal to 1",
        "hint: `vk families info tiny` lists every key with its type and default",
    ]
    assert not (tmp_path / "runs").exists()  # nothing created for a config that does not validate
    assert "unknown family 'nope'" in cli("train", "nope").stderr


def test_resume_through_the_cli(run_dir, cli):
    result = cli("train", "tiny", "--resume", str(run_dir), "train.epochs=2", "--quiet")
    assert result.exit_code == 0, result.output
    assert "finished: 32 steps, 2 epochs" in result.stdout
    changed = cli("train", "tiny", "--resume", str(run_dir), "hidden=8")
    assert changed.exit_code == 2
    assert "error: hidden cannot change when resuming" in changed.stderr and "train.epochs" in changed.stderr
    other = cli("train", "tiny-gan", "--resume", str(run_dir))
    assert other.exit_code == 2 and "is a run of family 'tiny', not 'tiny-gan'" in other.stderr
    with_config = cli("train", "tiny", "--resume", str(run_dir), "--config", str(run_dir / "config.yaml"))
    assert with_config.exit_code == 2 and "--config cannot be combined with --resume" in with_config.stderr


def test_eval(run_dir, cli):
    result = cli("eval", str(run_dir), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout and "val split" in result.stdout
    saved = json.loads((run_dir / "eval.json").read_text())
    assert saved["split"] == "val" and set(saved["metrics"]) == {"loss", "accuracy"}
    train_split = cli("eval", str(run_dir), "--split", "train")
    assert train_split.exit_code == 0 and json.loads((run_dir / "eval.json").read_text())["split"] == "train"
    assert "has no split 'test'" in cli("eval", str(run_dir), "--split", "test").stderr


def test_eval_errors(cli, tmp_path):
    result = cli("eval", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "error: run " in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_images_to_json(run_dir, cli, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        save_image(torch.rand(1, 2, 4), images / f"item{i}.png")
    out = tmp_path / "out"
    result = cli("predict", str(run_dir), "--input", str(images), "--output", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    predictions = json.loads((out / "predictions.json").read_text())
    assert [Path(p).name for p in predictions["inputs"]] == ["item0.png", "item1.png", "item2.png"]
    assert len(predictions["class"]) == 3 and all(0 <= c < 4 for c in predictions["class"])


def test_predict_bad_inputs(run_dir, cli, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    result = cli("predict", str(run_dir), "--input", str(broken), "--output", str(tmp_path / "out"))
    assert result.exit_code == 2 and f"image '{broken}' is not a readable image" in result.stderr
    missing = cli("predict", str(run_dir), "--input", str(tmp_path / "nope.png"), "--output", str(tmp_path / "o"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_generator_predict_and_samples(cli, tmp_path):
    trained = cli("train", "tiny-gan", "train.tensorboard=false", "train.ema.decay=0.9", "--name", "g", "--quiet")
    assert trained.exit_code == 0, trained.output
    run = tmp_path / "runs" / "tiny-gan" / "g"
    assert (run / "samples" / "fake-step-00000016.png").exists()
    result = cli("predict", str(run), "--output", str(tmp_path / "generated"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "generated").iterdir()) == [f"sample-{i:04d}.png" for i in range(4)]


def test_report(run_dir, cli):
    (run_dir / "report.html").unlink()
    result = cli("report", str(run_dir))
    assert result.exit_code == 0, result.output
    html = (run_dir / "report.html").read_text()
    assert "tiny" in html and "accuracy" in html and "data:image/png;base64," in html
    assert "not a run directory" in cli("report", str(run_dir / "checkpoints")).stderr


def test_families_info_and_config_show_include_the_engine_sections(cli):
    info = cli("families", "info", "tiny")
    assert "train.epochs" in info.stdout and "data.batch_size" in info.stdout and "train.schedule.name" in info.stdout
    shown = cli("config", "show", "tiny", "train.epochs=3")
    assert "train:\n  epochs: 3\n" in shown.stdout and "data:\n  name: blobs\n" in shown.stdout


# ---- separate processes ------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PLUGINS_DIR), "VK_PLUGINS": "vk_tiny", "VK_DISABLE_PLUGIN_AUTOLOAD": "1"}


def test_ctrl_c_writes_a_checkpoint_and_exits_cleanly(tmp_path):
    command = [
        sys.executable,
        "-m",
        "vision_kernels.cli",
        "train",
        "tiny",
        "train.epochs=10000",
        "train.log_every=5",
        "train.tensorboard=false",
        "--runs-dir",
        str(tmp_path),
        "--name",
        "stop",
        "--quiet",
        "--device",
        "cpu",
    ]
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "tiny" / "stop" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "SIGINT: stopping after this step and writing a checkpoint" in err and "Traceback" not in err
    assert f"continue with: vk train tiny --resume {tmp_path / 'tiny' / 'stop'}" in err
    run = tmp_path / "tiny" / "stop"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert ckpt.read_index(run / "checkpoints")["last"] == f"step-{info['step']:08d}"
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "vision_kernels.cli",
            "train",
            "tiny",
            "--resume",
            str(run),
            f"train.max_steps={info['step'] + 3}",
            "--quiet",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"finished: {info['step'] + 3} steps" in resumed.stdout


def _torchrun(*args: str, family: str = "tiny", timeout: float = 300) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node=2 -m vision_kernels.cli train FAMILY ARGS` on CPU (gloo); a run that
    does not end within `timeout` fails the test (a deadlock must not hang CI)."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "vision_kernels.cli",
        "train",
        family,
        *args,
        "--quiet",
        "--device",
        "cpu",
    ]
    env = {**_env(), "VK_PLUGINS": "vk_tiny,vision_kernels.plugins"}
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"torchrun did not finish in {timeout} s (deadlock?): {exc.stderr}") from None
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_ddp_run_of_a_family_that_evaluates_and_samples_mid_run(tmp_path):
    """dcgan on digits under 2 gloo processes, evaluating, sampling and checkpointing on
    different intervals that do not divide the run, with a batch size that splits the data unevenly,
    then resumed under torchrun: both runs end (every rank reaches the same collectives), evaluate
    their final weights, and the checkpoint's metrics are those of its step."""
    tiny_dcgan = ["data.name=digits", "image_size=8", "generator_width=8", "discriminator_width=8",
                  "eval_samples=64", "data.batch_size=13", "train.tensorboard=false"]  # fmt: skip
    intervals = ["train.eval_every=2", "train.sample_every=3", "train.checkpoint.every=4"]
    first = _torchrun(*tiny_dcgan, *intervals, "train.max_steps=5", "--runs-dir", str(tmp_path), "--name", "ddp",
                      family="dcgan", timeout=240)  # fmt: skip
    assert first.stdout.count("finished: 5 steps") == 1
    assert [line.split(":")[0] for line in first.stderr.splitlines() if line.startswith("eval at step")] == [
        "eval at step 2", "eval at step 4", "eval at step 5"]  # fmt: skip
    run = tmp_path / "dcgan" / "ddp"
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["samples-step-00000003.png",
                                                                    "samples-step-00000005.png"]  # fmt: skip
    resumed = _torchrun("--resume", str(run), "data.name=digits", "train.max_steps=7", family="dcgan", timeout=240)
    assert "finished: 7 steps" in resumed.stdout and "eval at step 7" in resumed.stderr
    last = ckpt.load(run)
    assert last.meta["step"] == 7 and set(last.meta["metrics"]) >= {"fid", "kid"}
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_two_gloo_processes_match_one_with_the_combined_batch(vk_register, tmp_path):
    """DDP averages the two processes' gradients of 8 samples each: the same step as one process
    on the 16 samples of the same batch (DistributedSampler splits each run of 16 between ranks).
    The 2-process run stops after an epoch and is resumed under torchrun for the second."""
    vk_register(vk_tiny, name="vk_tiny")
    common = ["dropout=0", "train.tensorboard=false"]
    one = tmp_path / "one"
    one.mkdir()
    config = resolve(run_config_model(vk_tiny.TINY.config), overrides=[*common, "train.epochs=2", "data.batch_size=16"])
    Trainer(vk_tiny.TINY, config, one, device="cpu", quiet=True).fit()

    first = _torchrun(*common, "train.epochs=1", "data.batch_size=8", "--runs-dir", str(tmp_path), "--name", "ddp")
    assert first.stdout.count("finished: 16 steps") == 1  # rank 0 alone reports
    run = tmp_path / "tiny" / "ddp"
    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    second = _torchrun("train.epochs=2", "--resume", str(run))
    assert "finished: 32 steps, 2 epochs" in second.stdout

    a = load_file(ckpt.locate(one) / ckpt.WEIGHTS)
    b = load_file(ckpt.locate(run) / ckpt.WEIGHTS)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)

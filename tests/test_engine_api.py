"""vision_kernels.engine's Python API (train / evaluate / predict / report) on the tiny families,
and what a run refuses: names that escape the runs folder, a second process in a locked run,
resume overrides that change the weights (equal values pass), inference overrides outside data.*
and predict.*. Also: a failed start leaves nothing behind, the final checkpoint's metrics are its
own, the best checkpoint names the weights that scored best."""

from __future__ import annotations

import json
import os

import pytest
import vk_tiny

from vision_kernels import engine
from vision_kernels.config import ConfigError
from vision_kernels.engine import checkpoint as ckpt
from vision_kernels.engine import rundir
from vision_kernels.engine.inference import evaluate as evaluate_loaded
from vision_kernels.engine.inference import load_model

QUIET = ("train.tensorboard=false",)


@pytest.fixture
def tiny(vk_register, tmp_path, monkeypatch):
    vk_register(vk_tiny, name="vk_tiny")
    monkeypatch.setenv("VK_RUNS_DIR", str(tmp_path / "runs"))
    return vk_tiny


def test_train_returns_the_run_and_writes_its_report(tiny, tmp_path):
    result = engine.train("tiny", *QUIET, "train.max_steps=5", name="api", device="cpu", quiet=True)
    assert result.run_dir == tmp_path / "runs" / "tiny" / "api"  # VK_RUNS_DIR honoured
    assert (result.status, result.steps, result.epochs) == ("finished", 5, 0)
    assert result.checkpoint == result.run_dir / "checkpoints" / "step-00000005"
    assert set(result.final_metrics) == {"loss", "accuracy"}  # evaluated at the end, eval_every or not
    assert result.report == result.run_dir / "report.html" and result.report.exists()
    assert ckpt.load(result.checkpoint).meta["metrics"] == result.final_metrics

    evaluated = engine.evaluate(result.run_dir, checkpoint="last", device="cpu")
    assert evaluated["metrics"] == pytest.approx(result.final_metrics)
    assert json.loads((result.run_dir / "eval.json").read_text())["step"] == 5
    assert engine.report(result.run_dir) == result.report


def test_train_evaluate_false_never_evaluates(tiny):
    result = engine.train("tiny", *QUIET, "train.max_steps=3", "train.evaluate=false", device="cpu", quiet=True)
    assert result.final_metrics == {}
    assert not any('"eval"' in line for line in (result.run_dir / "metrics.jsonl").read_text().splitlines())


def test_final_checkpoint_carries_its_own_metrics(tiny):
    """eval_every=20 over 57 steps (an epoch of 16 steps, 4 epochs cut by max_steps): the last
    checkpoint's metrics are an evaluation of step 57, equal to evaluating it again; 'best' names a
    checkpoint whose weights give the best value."""
    result = engine.train("tiny", *QUIET, "train.epochs=4", "train.max_steps=57", "train.eval_every=20",
                          "train.checkpoint.keep_last=2", device="cpu", quiet=True)  # fmt: skip
    last = ckpt.load(result.run_dir, which="last")
    assert last.meta["step"] == 57
    again = evaluate_loaded(load_model(result.run_dir, which="last", device="cpu"))["metrics"]
    assert last.meta["metrics"] == pytest.approx(again)
    index = ckpt.read_index(result.run_dir / "checkpoints")
    best = evaluate_loaded(load_model(result.run_dir, which="best", device="cpu"))["metrics"]
    assert best[index["best_metric"]] == pytest.approx(index["best_value"])
    for directory in (result.run_dir / "checkpoints").glob("step-*"):
        meta = json.loads((directory / ckpt.META).read_text())
        assert meta["metrics"] == {} or meta["step"] in (20, 40, 57)  # metrics only where evaluated


def test_resume_accepts_the_runs_own_values_and_names_a_real_change(tiny):
    first = engine.train("tiny", *QUIET, "train.max_steps=4", name="r", device="cpu", quiet=True)
    resumed = engine.train("tiny", "data.name=blobs", "hidden=16", "train.max_steps=8", resume=first.run_dir,
                           device="cpu", quiet=True)  # fmt: skip
    assert resumed.steps == 8
    with pytest.raises(ConfigError, match=r"data.name cannot change when resuming: the run has 'blobs', the "
                       r"override gives 'other'") as caught:  # fmt: skip
        engine.train("tiny", "data.name=other", resume=first.run_dir, device="cpu")
    assert "train.epochs" in caught.value.hint
    with pytest.raises(ValueError, match="config cannot be combined with resume"):
        engine.train("tiny", config="x.yaml", resume=first.run_dir)


def test_eval_and_predict_take_data_and_predict_overrides_only(tiny, vk_cli, tmp_path):
    run = engine.train("tiny", *QUIET, "train.max_steps=2", name="o", device="cpu", quiet=True).run_dir
    ok = vk_cli("eval", str(run), "data.eval_batch_size=5", "data.options={size: 64, seed: 3}", "--device", "cpu")
    assert ok.exit_code == 0, ok.output
    refused = vk_cli("eval", str(run), "hidden=32")
    assert refused.exit_code == 2
    assert "error: hidden cannot change for evaluation or prediction: the run has 16, the override gives 32" in (
        refused.stderr
    )
    assert "data.*, predict.*" in refused.stderr
    missing = vk_cli("predict", str(tmp_path / "nope"), "--output", str(tmp_path / "out"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


@pytest.mark.parametrize("name", ["../../../escaped_run", "a/b", "..", ".hidden", ""])
def test_a_run_name_is_one_path_component(tiny, vk_cli, tmp_path, name):
    result = vk_cli("train", "tiny", "--name", name, "--device", "cpu")
    assert result.exit_code == 2 and "--name must be a single folder name" in result.stderr
    assert not (tmp_path.parent / "escaped_run").exists() and not (tmp_path / "runs" / "tiny").exists()


def test_a_failed_start_leaves_no_directory_and_the_name_stays_free(tiny, tmp_path):
    with pytest.raises(ValueError, match="data.name 'nope' is not a registered dataset"):
        engine.train("tiny", "data.name=nope", name="x", device="cpu", quiet=True)
    assert not (tmp_path / "runs" / "tiny" / "x").exists()
    (tmp_path / "runs" / "tiny" / "x").mkdir(parents=True)  # an empty one (as an older version left)
    assert engine.train("tiny", *QUIET, "train.max_steps=1", name="x", device="cpu", quiet=True).steps == 1


def test_a_locked_run_is_refused_naming_the_holder(tiny):
    run = engine.train("tiny", *QUIET, "train.max_steps=1", name="l", device="cpu", quiet=True).run_dir
    with rundir.RunLock(run):
        with pytest.raises(rundir.RunLockedError, match=rf"is in use by process {os.getpid()} \(since"):
            engine.train("tiny", "train.max_steps=2", resume=run, device="cpu", quiet=True)
    assert engine.train("tiny", "train.max_steps=2", resume=run, device="cpu", quiet=True).steps == 2


def test_stale_temporaries_of_a_killed_run_are_removed_on_the_next_start(tiny):
    run = engine.train("tiny", *QUIET, "train.max_steps=1", name="s", device="cpu", quiet=True).run_dir
    stale = [run / "checkpoints" / ".index.json.tmp-99999", run / ".run.json.tmp-99999"]
    for path in stale:
        path.write_text("{")
    (run / "checkpoints" / ".tmp-step-00000002-99999").mkdir()
    engine.train("tiny", "train.max_steps=2", resume=run, device="cpu", quiet=True)
    assert not any(p.exists() for p in stale) and not (run / "checkpoints" / ".tmp-step-00000002-99999").exists()


def test_max_minutes_and_max_steps_first_reached_wins(tiny):
    by_steps = engine.train("tiny", *QUIET, "train.epochs=100", "train.max_steps=3", "train.max_minutes=60",
                            device="cpu", quiet=True)  # fmt: skip
    assert by_steps.steps == 3
    by_time = engine.train("tiny", *QUIET, "train.epochs=100", "train.max_steps=1000", "train.max_minutes=1e-9",
                           device="cpu", quiet=True)  # fmt: skip
    assert by_time.steps == 1 and by_time.final_metrics


def test_device_cuda_without_a_gpu_is_one_line(tiny, vk_cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = vk_cli("train", "tiny", "--device", "cuda")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        "error: --device cuda, but torch sees no CUDA GPU here (use --device cpu or auto)"
    )


def test_vk_step_runs_one_training_step_without_the_engine(tiny, vk_step):
    import torch

    from vision_kernels.testing import step_context

    x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))
    metrics, ctx = vk_step(tiny.TINY, (x, y), "lr=0.1")
    assert metrics["loss"] > 0 and ctx.step == 0 and ctx.config.lr == 0.1
    fresh = step_context(tiny.TINY, "lr=0.1")  # seeded: the same initial weights
    before = fresh.networks["model"][1].weight.detach().clone()
    assert not torch.equal(ctx.networks["model"][1].weight, before), "the optimizer stepped"

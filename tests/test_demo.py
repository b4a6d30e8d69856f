"""`vk demo cgan`, what `make demo` runs: the same code path (the kernels table, then train,
evaluate, predict and report through the engine API) for 300 steps, on the fallback data set that a
machine without Debian's opencv-doc gets (where the paper's SGD alone once diverged at step 220),
with the run directory from VK_RUNS_DIR."""

from __future__ import annotations

import json
import math

from vision_kernels import plugins as builtin


def test_demo_on_the_fallback_digits_under_vk_runs_dir(vk_register, vk_cli, tmp_path, monkeypatch):
    vk_register(builtin, name="builtin")
    monkeypatch.setenv("VK_OPENCV_DIGITS", str(tmp_path / "no-opencv-doc" / "digits.png"))
    monkeypatch.setenv("VK_RUNS_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)  # ./runs would be the wrong place: nothing may land there
    result = vk_cli("demo", "cgan", "--device", "cpu", "--steps", "300", "train.log_every=1", "eval_samples=200")
    assert result.exit_code == 0, result.output

    assert "using scikit-learn's digits" in result.stdout
    assert "iou-" in result.stdout and "speed-up" in result.stdout  # the box ops' table comes first
    assert result.stdout.index("speed-up") < result.stdout.index("training cgan on digits")
    assert not (tmp_path / "runs").exists()
    (run_dir,) = (tmp_path / "elsewhere" / "cgan").iterdir()
    assert (run_dir / "report.html").is_file() and (run_dir / "eval.json").is_file()
    assert (run_dir / "predictions" / "class-7-7.png").is_file()
    assert "steps trained:        300 in" in result.stdout
    assert f"report:               {run_dir / 'report.html'}" in result.stdout

    # Every logged training loss is finite past step 220 (the whole 3500-step fallback run is in
    # benchmarks/results/demo-cpu.json), and so are the figures shown.
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [row[key] for row in logged for key in ("loss_d", "loss_g") if key in row]
    assert len(losses) >= 2 * 300 and all(math.isfinite(v) for v in losses)
    metrics = json.loads((run_dir / "eval.json").read_text())["metrics"]
    assert 0 <= metrics["class_accuracy"] <= 1 and math.isfinite(metrics["fid"])

"""vision_kernels.viz: image grids, PNG input/output, metric curves and the HTML run report."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vision_kernels.viz.curves import plot_curves
from vision_kernels.viz.grid import load_image, make_grid, save_image
from vision_kernels.viz.report import write_report

# --- a synthetic run directory (reusable: the engine's tests can build one the same way) ---------

CONFIG_YAML = """\
family: dcgan
model:
  latent_dim: 64
  base_channels: 32
optimizer:
  name: adam
  lr: 0.0002
  betas: [0.5, 0.999]
data:
  dataset: mnist
  batch_size: 128
"""

# Eval FID at steps 100, 200, 300: the best (lowest) is 42.25 at step 200.
EVAL_FID = {100: 80.5, 200: 42.25, 300: 50.0}


def make_run_dir(
    root: Path,
    *,
    name: str = "dcgan-mnist-test",
    steps: int = 300,
    log_every: int = 10,
    eval_every: int = 100,
    sample_names: tuple[str, ...] = ("fake", "recon"),
    corrupt_lines: int = 1,
    status: str = "finished",
) -> Path:
    """Build a run directory as the engine writes it: run.json, config.yaml, environment.json,
    metrics.jsonl (train lines every `log_every` steps, eval lines every `eval_every`, plus
    `corrupt_lines` broken lines), samples/<name>-step-<8 digits>.png at each eval step (the first
    sample name RGB, the others grayscale) and eval.json. Deterministic; returns the directory."""
    run_dir = root / name
    (run_dir / "samples").mkdir(parents=True)
    steps_per_epoch = 100
    run = {
        "family": "dcgan",
        "family_version": "1.0",
        "name": name,
        "status": status,
        "started": "2025-01-02T10:00:00+00:00",
        "ended": "2025-01-02T10:12:34+00:00" if status != "running" else None,
        "device": "cuda:0",
        "world_size": 1,
        "step": steps,
        "epoch": steps // steps_per_epoch,
    }
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    (run_dir / "config.yaml").write_text(CONFIG_YAML)
    environment = {
        "python": "3.12.3",
        "torch": "2.14.1+cu130",
        "vision_kernels": "0.1.0",
        "platform": "Linux-6.8.0-x86_64-with-glibc2.39",
        "cpu": "AMD EPYC 7B13",
        "gpu": "NVIDIA H100 80GB HBM3",
        "backends": {
            "box_iou": {"cpu": ["native", "reference"], "cuda": ["native", "triton", "reference"]},
            "instance_norm": {"cpu": ["native", "reference"], "cuda": ["native", "triton", "reference"]},
        },
        "auto": {"box_iou": "native", "instance_norm": "triton"},
        "threads": 16,
    }
    (run_dir / "environment.json").write_text(json.dumps(environment, indent=2))

    lines = []
    for step in range(log_every, steps + 1, log_every):
        progress = step / steps
        lines.append(
            {
                "split": "train",
                "step": step,
                "epoch": (step - 1) // steps_per_epoch,
                "time": step * 0.5,
                "loss_d": round(1.4 - 0.6 * progress + 0.05 * math.sin(step / 7), 4),
                "loss_g": round(2.5 - 1.2 * progress + 0.1 * math.cos(step / 5), 4),
                "lr": 0.0002,
                "note": "warmup" if step < 50 else "steady",  # non-numeric: ignored everywhere
            }
        )
        if step % eval_every == 0:
            fid = EVAL_FID.get(step, 45.0 + 1000.0 / step)
            lines.append(
                {
                    "split": "eval",
                    "step": step,
                    "epoch": (step - 1) // steps_per_epoch,
                    "time": step * 0.5 + 3,
                    "fid": fid,
                    "loss_g": round(2.6 - 1.1 * progress, 4),
                    "accuracy": round(0.5 + 0.4 * progress, 4),
                }
            )
    text = [json.dumps(line) for line in lines]
    for index in range(corrupt_lines):  # e.g. the half-written last line of a killed process
        text.insert(len(text) // 2 + index, '{"split": "train", "step": 15')
    (run_dir / "metrics.jsonl").write_text("\n".join(text) + "\n")

    generator = torch.Generator().manual_seed(0)
    for step in range(eval_every, steps + 1, eval_every):
        for index, sample in enumerate(sample_names):
            channels = 3 if index == 0 else 1
            images = torch.rand(16, channels, 8, 8, generator=generator) * min(1.0, step / steps)
            save_image(images, run_dir / "samples" / f"{sample}-step-{step:08d}.png")
    evaluation = {
        "checkpoint": "checkpoints/step-00000300.pt",
        "split": "test",
        "metrics": {"fid": 41.5, "kid": 0.0123},
    }
    (run_dir / "eval.json").write_text(json.dumps(evaluation, indent=2))
    return run_dir


class _TagChecker(HTMLParser):
    """Fails on an end tag that does not close the innermost open element."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.image_sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.image_sources.append(dict(attrs).get("src") or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def check_html(text: str) -> _TagChecker:
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    assert checker.errors == []
    assert checker.stack == [], f"unclosed: {checker.stack}"
    return checker


# --- make_grid ----------------------------------------------------------------------------------


def test_make_grid_layout_and_padding():
    images = torch.stack([torch.full((1, 2, 2), value) for value in (0.1, 0.2, 0.3, 0.4)])
    grid = make_grid(images, padding=1, pad_value=0.9)  # nrow = ceil(sqrt(4)) = 2
    p, a, b, c, d = 0.9, 0.1, 0.2, 0.3, 0.4
    expected = torch.tensor(
        [
            [p, p, p, p, p, p, p],
            [p, a, a, p, b, b, p],
            [p, a, a, p, b, b, p],
            [p, p, p, p, p, p, p],
            [p, c, c, p, d, d, p],
            [p, c, c, p, d, d, p],
            [p, p, p, p, p, p, p],
        ]
    )
    assert grid.shape == (1, 7, 7)
    torch.testing.assert_close(grid[0], expected)


def test_make_grid_shapes():
    rgb = torch.rand(5, 3, 4, 6)
    assert make_grid(rgb).shape == (3, 2 * 6 + 2, 3 * 8 + 2)  # 3 per row, 2 rows, padding 2
    assert make_grid(rgb, nrow=5, padding=0).shape == (3, 4, 30)
    assert make_grid(rgb, nrow=10, padding=0).shape == (3, 4, 30)  # never wider than N images
    assert make_grid([rgb[0], rgb[1]], nrow=1, padding=0).shape == (3, 8, 6)
    grid = make_grid(rgb, nrow=2, pad_value=0.5)  # 3 rows, the last one half empty
    assert grid.shape == (3, 3 * 6 + 2, 2 * 8 + 2)
    assert torch.all(grid[:, 14:, 8:] == 0.5)


def test_make_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        make_grid(torch.rand(2, 2, 4, 4))
    with pytest.raises(ValueError, match="same shape"):
        make_grid([torch.rand(3, 4, 4), torch.rand(3, 4, 5)])
    with pytest.raises(ValueError, match="at least one"):
        make_grid([])


# --- save_image / load_image --------------------------------------------------------------------


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_save_load_round_trip(tmp_path, channels, mode):
    image = torch.rand(channels, 5, 7, generator=torch.Generator().manual_seed(channels))
    path = tmp_path / "out" / "image.png"
    save_image(image, path)
    with Image.open(path) as picture:
        assert picture.mode == mode and picture.size == (7, 5)
    loaded = load_image(path)
    assert loaded.shape == (channels, 5, 7) and loaded.dtype == torch.float32
    torch.testing.assert_close(loaded, (image * 255).round() / 255, atol=1e-6, rtol=0)


def test_save_image_clamps_and_grids(tmp_path):
    save_image(torch.tensor([[[-1.0, 0.5, 2.0]]]), tmp_path / "clamped.png")
    assert np.asarray(Image.open(tmp_path / "clamped.png")).tolist() == [[0, 128, 255]]
    save_image(torch.rand(4, 3, 2, 2), tmp_path / "grid.png")
    assert load_image(tmp_path / "grid.png").shape == (3, 10, 10)  # make_grid's layout
    save_image(torch.rand(1, 1, 3, 3), tmp_path / "single.png")
    assert load_image(tmp_path / "single.png").shape == (1, 3, 3)


def test_load_sixteen_bit_and_palette(tmp_path):
    values = np.array([[0, 1000], [32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.shape == (1, 2, 2)
    torch.testing.assert_close(loaded[0], torch.from_numpy(values.astype(np.float32) / 65535))

    rgba = Image.new("RGBA", (3, 2), (255, 0, 0, 128))
    rgba.save(tmp_path / "rgba.png")
    rgba.convert("P").save(tmp_path / "palette.png")
    for name in ("rgba.png", "palette.png"):
        loaded = load_image(tmp_path / name)
        assert loaded.shape == (3, 2, 3)
        torch.testing.assert_close(loaded[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_load_image_errors_name_the_file(tmp_path):
    save_image(torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1)), tmp_path / "good.png")
    data = (tmp_path / "good.png").read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.png"
    text.write_text("these are not pixels\n")
    missing = tmp_path / "missing.png"
    for path in (truncated, text, missing):
        with pytest.raises(ValueError, match="is not a readable image") as info:
            load_image(path)
        assert str(info.value).startswith(f"image {str(path)!r} is not a readable image: ")
    with pytest.raises(ValueError, match="truncated"):
        load_image(truncated)
    with pytest.raises(ValueError, match="no such file"):
        load_image(missing)


# --- plot_curves --------------------------------------------------------------------------------


def test_plot_curves(tmp_path):
    records = [
        {"split": "train", "step": 1, "epoch": 0, "time": 0.1, "loss": 2.0, "lr": 0.1, "phase": "warmup"},
        {"split": "train", "step": 2, "epoch": 0, "time": 0.2, "loss": 1.5, "lr": 0.1, "flag": True},
        {"split": "eval", "step": 2, "epoch": 0, "time": 0.3, "loss": 1.7, "accuracy": 0.6},
    ]
    path = tmp_path / "curves.png"
    assert plot_curves(records, path) == ["loss", "lr", "accuracy"]
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.size[0] > picture.size[1] > 100


def test_plot_curves_without_records(tmp_path):
    assert plot_curves([], tmp_path / "curves.png") == []
    assert plot_curves([{"split": "train", "step": 1, "note": "x"}], tmp_path / "curves.png") == []
    assert not (tmp_path / "curves.png").exists()


# --- write_report -------------------------------------------------------------------------------


def test_report_of_a_full_run(tmp_path):
    run_dir = make_run_dir(tmp_path)
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    html = path.read_text()
    checker = check_html(html)

    assert "dcgan" in html and "dcgan-mnist-test" in html and "finished" in html
    for metric in ("loss_d", "loss_g", "lr", "fid", "accuracy"):
        assert metric in html
    assert "<td>note " not in html  # a non-numeric value gets no row
    assert "42.25 (step 200)" in html  # best eval FID (lower is better)
    assert "0.9 (step 300)" in html  # best eval accuracy (higher is better)
    assert "1 line of metrics.jsonl could not be read" in html
    assert "latent_dim: 64" in html and "betas: [0.5, 0.999]" in html
    assert "checkpoints/step-00000300.pt" in html and "41.5" in html
    assert "NVIDIA H100 80GB HBM3" in html and "threads" in html and "instance_norm" in html

    # The curves and 2 sample names x 3 steps (each name: the latest large, 2 thumbnails).
    assert (run_dir / "curves.png").is_file()
    assert len(checker.image_sources) == 1 + 2 * 3
    assert all(src.startswith("data:image/png;base64,") for src in checker.image_sources)
    assert "step 100" in html and "step 300" in html
    assert "image-rendering: pixelated" in html
    # Self-contained: nothing to fetch, nothing to run.
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_report_escapes_text(tmp_path):
    run_dir = make_run_dir(tmp_path, name="run-<b>&co")
    (run_dir / "config.yaml").write_text("title: <script>alert(1)</script>\n")
    html = write_report(run_dir).read_text()
    check_html(html)
    assert "<script>" not in html and "&lt;script&gt;" in html and "run-&lt;b&gt;&amp;co" in html


def test_report_thumbnails_are_capped(tmp_path):
    run_dir = make_run_dir(tmp_path, steps=1200, log_every=100, sample_names=("fake",), corrupt_lines=3)
    html = write_report(run_dir).read_text()
    checker = check_html(html)
    assert len(checker.image_sources) == 1 + 1 + 8  # curves, the latest sample, 8 of the 11 earlier
    assert "3 lines of metrics.jsonl could not be read and were skipped" in html


def test_report_of_an_empty_run(tmp_path):
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    run = {
        "family": "dcgan",
        "name": "empty",
        "status": "running",
        "started": "2025-01-02T10:00:00Z",
        "ended": None,
        "device": "cpu",
        "world_size": 1,
        "step": 0,
        "epoch": 0,
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    html = write_report(run_dir).read_text()
    check_html(html)
    assert "empty" in html and "running" in html
    for line in (
        "No metrics yet",
        "No curves yet",
        "No samples yet",
        "No evaluation yet",
        "No config.yaml yet",
        "No environment.json yet",
    ):
        assert line in html
    assert not (run_dir / "curves.png").exists()


def test_report_survives_damaged_files(tmp_path):
    run_dir = make_run_dir(tmp_path)
    (run_dir / "run.json").write_text("{not json")
    (run_dir / "eval.json").write_text("[1, 2")
    (run_dir / "environment.json").write_text('"just a string"')
    (run_dir / "metrics.jsonl").write_text("garbage\n[1, 2]\n\n")
    (run_dir / "samples" / "fake-step-00000400.png").write_bytes(b"not a png")
    html = write_report(run_dir).read_text()
    check_html(html)
    assert "run.json could not be read" in html and "eval.json could not be read" in html
    assert "2 lines of metrics.jsonl could not be read" in html and "No metrics yet" in html
    assert "step 400" in html


def test_report_needs_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "nowhere")

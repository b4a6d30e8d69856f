"""The embedded and package datasets, their registration, `vk data`, and the engine's use of
data.skip_bad and data.transforms. Real Debian data is used when installed (`make data`); the
loaders are always tested on files the tests write in the same layouts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch
import vk_tiny

import vision_kernels.plugins as builtin
from vision_kernels.data import embedded
from vision_kernels.data.errors import DataError
from vision_kernels.data.formats.idx import write_idx
from vision_kernels.plugins.datasets import DATASETS
from vision_kernels.viz.grid import save_image


def test_digits_split_is_fixed_and_balanced():
    train, val = embedded.digits("train"), embedded.digits("val")
    assert (len(train), len(val)) == (1442, 355)
    image, label = train[0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    assert isinstance(label, int) and train.classes == [str(d) for d in range(10)]
    counts = torch.bincount(val.tensors[1], minlength=10)
    raw = torch.bincount(torch.cat([train.tensors[1], val.tensors[1]]), minlength=10)
    assert torch.equal(counts, raw // 5)  # every fifth of each class
    assert embedded.digits("val", size=28)[0][0].shape == (1, 28, 28)
    with pytest.raises(ValueError, match="dataset 'digits' has splits train, val; got split 'test'"):
        embedded.digits("test")


def _digit_sheet(path: Path) -> torch.Tensor:
    """An opencv digits.png lookalike: cell (row r, column c) filled with value (r * 100 + c) % 251 / 255."""
    values = (torch.arange(50)[:, None] * 100 + torch.arange(100)[None]) % 251
    sheet = values.repeat_interleave(20, 0).repeat_interleave(20, 1).float() / 255
    save_image(sheet[None], path)
    return values


def test_opencv_digits_layout(tmp_path):
    values = _digit_sheet(tmp_path / "digits.png")
    train = embedded.opencv_digits("train", path=str(tmp_path / "digits.png"))
    val = embedded.opencv_digits("val", path=str(tmp_path / "digits.png"))
    assert (len(train), len(val)) == (4000, 1000)
    images, labels = val.tensors
    assert torch.equal(torch.bincount(labels), torch.full((10,), 100))
    # val item 0 is the 5th digit of class 0: row 0, column 4; labels follow rows (5 rows per class)
    assert images[0].unique().tolist() == [pytest.approx(values[0, 4].item() / 255, abs=1e-6)]
    assert labels[-1] == 9


def test_opencv_digits_missing_says_how_to_install(tmp_path):
    with pytest.raises(
        DataError, match=r"does not exist; install it with `make data` \(or: sudo apt-get install opencv-doc\)"
    ):
        embedded.opencv_digits("train", path=str(tmp_path / "none.png"))


@pytest.mark.skipif(not embedded.OPENCV_DIGITS.exists(), reason="opencv-doc is not installed (make data)")
def test_real_opencv_digits():
    data = embedded.opencv_digits("train")
    assert len(data) == 4000 and data[0][0].shape == (1, 20, 20) and data[0][0].max() > 0.5


def _idx_folder(root: Path, train: int = 120, test: int = 5) -> None:
    """Fashion-MNIST's file names; image i of a file is filled with i % 256 (train) or 255 - i
    (test), so that an item tells which file and index it came from; labels cycle 0..9."""
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, fill in (("train", train, lambda i: i % 256), ("t10k", test, lambda i: 255 - i)):
        pixels = torch.tensor([fill(i) for i in range(n)], dtype=torch.uint8)[:, None, None].expand(n, 28, 28)
        write_idx(root / f"{prefix}-images-idx3-ubyte", pixels.contiguous())
        labels = root / f"{prefix}-labels-idx1-ubyte.gz"
        write_idx(root / "labels.tmp", torch.arange(n, dtype=torch.uint8) % 10)
        labels.write_bytes(gzip.compress((root / "labels.tmp").read_bytes()))


def _sources(data) -> list[int]:
    return [round(float(data[i][0][0, 0, 0]) * 255) for i in range(len(data))]


def test_fashion_mnist_from_idx_files(tmp_path):
    _idx_folder(tmp_path)
    train = embedded.fashion_mnist("train", root=str(tmp_path))
    val = embedded.fashion_mnist("val", root=str(tmp_path))
    test = embedded.fashion_mnist("test", root=str(tmp_path))
    assert (len(train), len(val), len(test)) == (110, 10, 5)
    assert train.classes[9] == "ankle boot" and train[3][1] == 3 and train[3][0].shape == (1, 28, 28)
    # val is held out of the training files: every 12th image of each class, one per class here.
    assert _sources(val) == list(range(110, 120)) and torch.equal(val.tensors[1], torch.arange(10))
    assert sorted(_sources(train) + _sources(val)) == list(range(120))
    # test is the official test file, untouched, and shares nothing with val.
    assert _sources(test) == [255, 254, 253, 252, 251]
    assert embedded.fashion_mnist("val", root=str(tmp_path), size=14)[0][0].shape == (1, 14, 14)
    with pytest.raises(DataError, match="no train-images-idx3-ubyte.*make data"):
        embedded.fashion_mnist("train", root=str(tmp_path / "empty"))


def test_held_out_is_fixed_and_class_balanced():
    labels = torch.arange(60) % 3  # 20 per class
    val, train = embedded.held_out(labels, "val", 4), embedded.held_out(labels, "train", 4)
    assert torch.equal(torch.bincount(labels[val]), torch.tensor([5, 5, 5]))
    assert sorted(val.tolist() + train.tolist()) == list(range(60))
    assert torch.equal(val, embedded.held_out(labels, "val", 4))


@pytest.mark.skipif(not embedded.FASHION_ROOT.exists(), reason="dataset-fashion-mnist is not installed (make data)")
def test_real_fashion_mnist():
    val = embedded.fashion_mnist("val")
    assert (len(embedded.fashion_mnist("train")), len(val), len(embedded.fashion_mnist("test"))) == (55000, 5000, 10000)
    assert torch.equal(torch.bincount(val.tensors[1]), torch.full((10,), 500))


def test_photos_textures_and_horse():
    photos = embedded.photos(names=["chelsea", "coins"], size=32)
    assert [photos[i][0].shape for i in range(2)] == [(3, 32, 32), (1, 32, 32)]
    with pytest.raises(ValueError, match="photos: unknown names"):
        embedded.photos(names=["eagle"])
    assert embedded.textures()[0][0].shape == (1, 512, 512)
    horse = embedded.Horse("train", count=4, size=64)
    image, mask = horse[0]
    assert image.shape == (3, 64, 64) and mask.shape == (64, 64) and set(mask.unique().tolist()) <= {0, 1}
    assert 0.1 < mask.float().mean() < 0.9
    again = embedded.Horse("train", count=4, size=64)[0]
    assert torch.equal(image, again[0]) and torch.equal(mask, again[1])
    assert not torch.equal(image, embedded.Horse("val", count=4, size=64)[0][0])


def test_horse_is_the_same_in_another_process():
    import subprocess
    import sys

    code = "from vision_kernels.data.embedded import Horse; print(float(Horse(count=2, size=32)[1][0].sum()))"
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]  # fmt: skip
    assert runs[0] == runs[1] == f"{float(embedded.Horse(count=2, size=32)[1][0].sum())}\n"


def test_builtin_plugin_registers_every_dataset(vk_register, vk_registry):
    record = vk_register(builtin, name="builtin")
    assert record.status == "ok", record.error
    assert set(vk_registry.datasets) == {d.name for d in DATASETS}
    assert {"digits", "opencv-digits", "fashion-mnist", "shapes", "horse", "imagefolder", "coco", "voc-detection",
            "voc-segmentation", "image-mask-folder", "paired-images", "unpaired-images", "mnist-idx"} <= set(
        vk_registry.datasets
    )  # fmt: skip
    digits = vk_registry.datasets["digits"].load(split="val", size=16)
    assert len(digits) == 355 and digits[0][0].shape == (1, 16, 16)


def test_vk_data_list_and_show(vk_register, vk_cli, tmp_path):
    vk_register(builtin, name="builtin")
    listed = vk_cli("data", "list")
    assert listed.exit_code == 0 and "opencv-digits" in listed.stdout and "shapes" in listed.stdout
    grid = tmp_path / "digits.png"
    shown = vk_cli("data", "show", "digits", "size=16", "--output", str(grid), "--count", "9")
    assert shown.exit_code == 0, shown.output
    assert "train: 1442 items" in shown.stdout and "val: 355 items" in shown.stdout
    assert "classes (10): 0, 1, 2" in shown.stdout and "item: (float32[1, 16, 16], int)" in shown.stdout
    from vision_kernels.viz.grid import load_image

    assert load_image(grid).shape[-2:] == (3 * 16 + 4 * 2, 3 * 16 + 4 * 2)
    unknown = vk_cli("data", "show", "nope")
    assert unknown.exit_code == 2 and "unknown dataset 'nope'" in unknown.stderr


def test_vk_data_show_segmentation_and_detection(vk_register, vk_cli, tmp_path):
    vk_register(builtin, name="builtin")
    for name, options in (("horse", ["count=4", "size=32"]), ("shapes", ["count=4", "size=32", "task=detection"])):
        shown = vk_cli("data", "show", name, *options, "--output", str(tmp_path / f"{name}.png"))
        assert shown.exit_code == 0, shown.output
        assert (tmp_path / f"{name}.png").exists()


# ---- the engine's data options --------------------------------------------------------------------------


def test_skip_bad_in_a_training_run(vk_register, tmp_path):
    """An image folder with two broken files: without skip_bad the run fails naming a file; with it the
    run trains on the rest and run.json counts what was skipped."""
    from vision_kernels.config import resolve
    from vision_kernels.engine.run_config import run_config_model
    from vision_kernels.engine.trainer import Trainer

    vk_register(builtin, name="builtin")
    vk_register(vk_tiny, name="vk_tiny")
    root = tmp_path / "folder"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(6):
            save_image(torch.rand(1, 2, 4), root / label / f"{i}.png")
    (root / "a" / "broken.png").write_bytes(b"not an image")
    (root / "b" / "cut.png").write_bytes((root / "b" / "0.png").read_bytes()[:40])
    overrides = ["data.name=imagefolder", f"data.options={{root: {root}}}", "data.batch_size=4",
                 "data.eval_split=train", "train.tensorboard=false"]  # fmt: skip
    config = resolve(run_config_model(vk_tiny.TINY.config), overrides=overrides)
    (tmp_path / "fail").mkdir()
    with pytest.raises(DataError, match="is not a readable image"):
        Trainer(vk_tiny.TINY, config, tmp_path / "fail", device="cpu", quiet=True).fit()
    config = resolve(run_config_model(vk_tiny.TINY.config), overrides=[*overrides, "data.skip_bad=true"])
    (tmp_path / "skip").mkdir()
    result = Trainer(vk_tiny.TINY, config, tmp_path / "skip", device="cpu", quiet=True).fit()
    assert result.status == "finished" and result.step == 3  # 12 good images, batches of 4
    skipped = json.loads((tmp_path / "skip" / "run.json").read_text())["data_skipped"]["train"]
    assert skipped["count"] == 2 and {Path(f).name for f, _ in skipped["items"]} == {"broken.png", "cut.png"}

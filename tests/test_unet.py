"""The unet family through the CLI: trains a few steps on the embedded shapes (instance masks, so
the border weight map is used) and horse data, resumes exactly, predicts label PNGs, overlays and
probabilities on images of any size, and evaluates mIoU and Dice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from vision_kernels.engine import checkpoint as ckpt
from vision_kernels.viz.grid import save_image

TINY = ["depth=2", "base_width=4", "data.batch_size=4", "data.options={task: instance, size: 32, count: 16}",
        "tile=32", "train.tensorboard=false", "--device", "cpu", "--quiet"]  # fmt: skip


def _weights(run_dir):
    return load_file(ckpt.load(run_dir, which="last").path / "weights.safetensors")


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_trains_resumes_predicts_and_evaluates(builtin_cli, tmp_path, padding):
    options = [*TINY, f"padding={padding}"]
    builtin_cli("train", "unet", *options, "train.max_steps=4", "--name", "straight")
    builtin_cli("train", "unet", *options, "train.max_steps=2", "--name", "halves")
    runs = tmp_path / "runs" / "unet"
    builtin_cli("train", "unet", "--resume", str(runs / "halves"), "train.max_steps=4", "--quiet")
    straight, resumed = _weights(runs / "straight"), _weights(runs / "halves")
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0, msg=key)

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    save_image(torch.rand(3, 45, 70), inputs / "wide.png")  # not a multiple of anything
    save_image(torch.rand(1, 20, 20), inputs / "grey.png")
    out = tmp_path / "out"
    builtin_cli("predict", str(runs / "straight"), "--input", str(inputs), "--output", str(out), "--checkpoint", "last")
    labels = Image.open(out / "labels" / "wide.png")
    assert labels.mode == "P" and labels.size == (70, 45) and np.asarray(labels).max() < 4
    assert Image.open(out / "overlay" / "grey.png").size == (20, 20)

    builtin_cli("eval", str(runs / "straight"), "--checkpoint", "last")
    metrics = json.loads((runs / "straight" / "eval.json").read_text())["metrics"]
    assert 0 <= metrics["miou"] <= 1 and 0 <= metrics["mean_dice"] <= 1 and "iou/3" in metrics


def test_probabilities_and_dice_loss_on_horse(builtin_cli, tmp_path):
    builtin_cli("train", "unet", "depth=2", "base_width=4", "num_classes=2", "loss=dice", "data.name=horse",
        "data.options={count: 8, size: 32}", "data.transforms=[]", "data.batch_size=4", "train.max_steps=2",
        "train.tensorboard=false", "predict.probabilities=true", "--device", "cpu", "--quiet",
        "--name", "horse")  # fmt: skip
    image = tmp_path / "x.png"
    save_image(torch.rand(3, 24, 24), image)
    out = tmp_path / "out"
    run_dir = tmp_path / "runs" / "unet" / "horse"
    builtin_cli("predict", str(run_dir), "-i", str(image), "-o", str(out), "--checkpoint", "last")
    p0 = np.asarray(Image.open(out / "probability-0" / "x.png"), dtype=np.float64)
    p1 = np.asarray(Image.open(out / "probability-1" / "x.png"), dtype=np.float64)
    np.testing.assert_allclose(p0 + p1, 255, atol=2)  # two classes: the probabilities sum to one


def test_predict_needs_inputs(builtin_cli, vk_cli, tmp_path):  # noqa: ARG001 (builtin_cli registers the family)
    builtin_cli("train", "unet", *TINY, "train.max_steps=1", "--name", "one")
    result = vk_cli("predict", str(tmp_path / "runs" / "unet" / "one"), "-o", str(tmp_path / "o"))
    assert result.exit_code != 0 and "unet predicts on images: give them with --input" in result.output


def test_trains_on_an_image_mask_folder(builtin_cli, tmp_path):
    # Plain (image, mask) items: no instances, so the weight map is the class-balance term alone.
    root = tmp_path / "folder"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(4):
        mask = np.zeros((24, 24), np.uint8)
        mask[4 + i : 14 + i, 6:18] = 1
        save_image(torch.from_numpy(mask).float()[None].expand(3, -1, -1), root / "images" / f"{i}.png")
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{i}.png")
    builtin_cli("train", "unet", "depth=2", "base_width=4", "num_classes=2", "data.name=image-mask-folder",
        f"data.options={{root: {root}, num_classes: 2}}", "data.batch_size=2", "train.max_steps=2",
        "train.tensorboard=false", "--device", "cpu", "--quiet", "--name", "folder")  # fmt: skip
    builtin_cli("eval", str(tmp_path / "runs" / "unet" / "folder"), "--checkpoint", "last")


def test_a_mask_value_outside_the_models_classes_names_its_file(vk_register, vk_cli, tmp_path):
    """unet defaults (4 classes) on a folder whose mask holds 9: one line naming the mask file, not an
    error from inside the loss."""
    from vision_kernels import plugins as builtin

    vk_register(builtin, name="builtin")
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "masks").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "data" / "images" / "a.png")
    Image.fromarray(np.full((32, 32), 9, np.uint8)).save(tmp_path / "data" / "masks" / "a.png")
    result = vk_cli("train", "unet", "depth=2", "base_width=4", "data.name=image-mask-folder",
                    f"data.options={{root: {tmp_path / 'data'}}}", "data.batch_size=1", "--device", "cpu",
                    "--runs-dir", str(tmp_path / "runs"), "--name", "bad")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert str(tmp_path / "data" / "masks" / "a.png") in result.stderr and "[9]" in result.stderr

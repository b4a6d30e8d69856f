"""The template's tests: the family and the kernel register (through the fixtures vision-kernels
ships and through the installed entry point), the CLI shows them, training steps lower the loss,
`vk train` + `vk predict` run the family end to end, and the kernel agrees with the op's reference."""

from __future__ import annotations

import torch
import vk_autoencoder

from vision_kernels.family import Dataset
from vision_kernels.hookspecs import hookimpl
from vision_kernels.registry import Registry


def test_registers_through_the_fixture(vk_register, vk_registry):
    record = vk_register(vk_autoencoder, name="autoencoder")
    assert record.status == "ok", record.error
    assert vk_registry.families["autoencoder"].task == "reconstruction"


def test_installed_entry_point_is_found():
    registry = Registry(modules=[]).load()
    record = next(r for r in registry.plugins if r.name == "autoencoder")
    assert record.status == "ok" and record.distribution == "vk-autoencoder", record
    assert "autoencoder" in registry.families
    assert ("box_convert", "torchvision") in registry.kernels


def test_cli_shows_the_family(vk_register, vk_cli):
    vk_register(vk_autoencoder, name="autoencoder")
    result = vk_cli("families", "info", "autoencoder")
    assert result.exit_code == 0, result.output
    assert "optim.lr" in result.output and "latent" in result.output
    shown = vk_cli("config", "show", "autoencoder", "latent=8", "optim.lr=0.01")
    assert "latent: 8" in shown.output and "lr: 0.01" in shown.output


def test_training_steps_lower_the_loss():
    """step_context: the networks, optimizers and config a training step gets, without a run."""
    from vision_kernels.testing import step_context

    torch.manual_seed(0)
    family = vk_autoencoder.FAMILY
    ctx = step_context(family, "width=8", "latent=16", "optim.lr=0.003")
    images = torch.rand(16, 1, 28, 28)
    losses = [family.training_step(ctx, [images])["loss"] for _ in range(30)]
    assert losses[-1] < losses[0]


def test_one_training_step(vk_step):
    metrics, ctx = vk_step(vk_autoencoder.FAMILY, [torch.rand(4, 1, 28, 28)], "width=4")
    assert set(metrics) == {"loss"} and ctx.config.width == 4


class NoiseData:
    """A dataset for the test run: random 28x28 grey images (a real plugin trains on real data)."""

    @hookimpl
    def register_datasets(self, register):
        register(Dataset(name="noise", description="random images", load=noise, splits=("train", "val")))


def noise(split="train", count=16):
    from torch.utils.data import TensorDataset

    generator = torch.Generator().manual_seed(0 if split == "train" else 1)
    return TensorDataset(torch.rand(count, 1, 28, 28, generator=generator))


def test_vk_train_then_vk_predict(vk_register, vk_cli, tmp_path):
    """The real path: `vk predict` passes a list of [C, H, W] images (one per --input, as the files
    are: a colour 40x30 one and a grey 28x28 one) and writes one PNG per input."""
    from PIL import Image

    vk_register(vk_autoencoder, name="autoencoder")
    vk_register(NoiseData(), name="noise-data")
    trained = vk_cli("train", "autoencoder", "data.name=noise", "data.batch_size=8", "train.max_steps=2",
                     "--name", "test", "--runs-dir", str(tmp_path / "runs"), "--device", "cpu", "--quiet")
    assert trained.exit_code == 0, trained.output
    run = tmp_path / "runs" / "autoencoder" / "test"
    Image.new("RGB", (30, 40), (200, 10, 10)).save(tmp_path / "colour.png")
    Image.new("L", (28, 28), 128).save(tmp_path / "grey.png")
    out = tmp_path / "out"
    result = vk_cli("predict", str(run), "-i", str(tmp_path / "colour.png"), "-i", str(tmp_path / "grey.png"),
                    "-o", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["colour.png", "grey.png"]
    assert Image.open(out / "colour.png").size == (28, 28)
    nothing = vk_cli("predict", str(run), "-o", str(out), "--device", "cpu")
    assert nothing.exit_code == 2 and "give them with --input" in nothing.stderr


def test_kernel_runs_as_a_backend_of_the_op(vk_register):
    import vision_kernels.ops as vko
    from vision_kernels import reference

    vk_register(vk_autoencoder, name="autoencoder")
    boxes = torch.rand(10, 4, dtype=torch.float64) * 100
    for in_fmt, out_fmt in (("xywh", "xyxy"), ("xyxy", "cxcywh"), ("cxcywh", "xywh")):
        out = vko.box_convert(boxes, in_fmt, out_fmt, backend="torchvision")
        torch.testing.assert_close(out, reference.box_convert(boxes, in_fmt, out_fmt))


def test_cli_lists_the_kernel(vk_register, vk_cli):
    vk_register(vk_autoencoder, name="autoencoder")
    result = vk_cli("kernels", "--json")
    assert result.exit_code == 0, result.output
    assert "torchvision" in result.stdout

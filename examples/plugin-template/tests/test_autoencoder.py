"""The template's tests: the family and the kernel register (through the fixtures vision-kernels
ships and through the installed entry point), the CLI shows them, training steps lower the loss, and
the kernel agrees with the op's reference."""

from __future__ import annotations

from contextlib import nullcontext

import torch
import vk_autoencoder

from vision_kernels.config import resolve
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


class Step:
    """The little of the engine's StepContext a training step needs, for a test."""

    def __init__(self, config, networks, optimizers):
        self.config, self.networks, self.optimizers = config, networks, optimizers
        self.device, self.step, self.epoch = torch.device("cpu"), 0, 0

    def autocast(self):
        return nullcontext()

    def backward(self, loss, optimizer):
        loss.backward()

    def step_optimizer(self, optimizer):
        self.optimizers[optimizer].step()
        self.optimizers[optimizer].zero_grad()


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    config = resolve(vk_autoencoder.AutoencoderConfig, overrides=["width=8", "latent=16", "optim.lr=0.003"])
    family = vk_autoencoder.FAMILY
    networks = family.build(config)
    ctx = Step(config, networks, family.optimizers(config, networks))
    images = torch.rand(16, 1, 28, 28)
    losses = [family.training_step(ctx, images)["loss"] for _ in range(30)]
    assert losses[-1] < losses[0]
    assert family.predict(networks, images, config).shape == images.shape


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

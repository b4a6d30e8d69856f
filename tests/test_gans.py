"""The adversarial families (gan, dcgan, cgan): each trains a few steps on real digits through the
CLI, resumes exactly, predicts and evaluates; Algorithm 1's k discriminator steps really happen k
times per generator step; the fused and unfused DCGAN generators agree; the latent-space maths."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from vision_kernels.engine import checkpoint as ckpt
from vision_kernels.plugins.gans import latent, step
from vision_kernels.plugins.gans.dcgan import DcganConfig
from vision_kernels.plugins.gans.dcgan import build as build_dcgan
from vision_kernels.plugins.gans.gan import GanConfig

# Tiny versions of each family on scikit-learn's 8x8 digits: seconds, not minutes.
TINY = {
    "gan": ["image_size=8", "latent=8", "hidden=[32]", "maxout=[[16, 2], [16, 2]]"],
    "dcgan": ["image_size=8", "latent=8", "generator_width=8", "discriminator_width=8"],
    "cgan": ["image_size=8", "latent=8", "z_hidden=16", "label_hidden=16", "hidden=[32]", "image_maxout=[16, 2]",
             "label_maxout=[8, 2]", "joint_maxout=[[16, 2]]"],
}  # fmt: skip
COMMON = ["data.name=digits", "data.batch_size=32", "train.tensorboard=false", "eval_samples=64",
          "predict.seeds=9", "predict.per_class=3", "predict.steps=4", "predict.arithmetic_k=2"]  # fmt: skip


def _weights(run_dir, which="last"):
    return load_file(ckpt.load(run_dir, which=which).path / "weights.safetensors")


@pytest.mark.parametrize("family", ["gan", "dcgan", "cgan"])
def test_family_trains_resumes_predicts_and_evaluates(family, builtin_cli, tmp_path):
    options = [*TINY[family], *COMMON, "--device", "cpu", "--quiet"]
    builtin_cli("train", family, *options, "train.max_steps=4", "--name", "straight")
    builtin_cli("train", family, *options, "train.max_steps=2", "--name", "halves")
    runs = tmp_path / "runs" / family
    builtin_cli("train", family, "--resume", str(runs / "halves"), "train.max_steps=4", "--quiet")
    straight, resumed = _weights(runs / "straight"), _weights(runs / "halves")
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0, msg=key)

    out = tmp_path / "predicted"
    builtin_cli("predict", str(runs / "straight"), "--output", str(out), "--checkpoint", "last")
    names = {p.name for p in out.iterdir()}
    assert {"samples.png", "interpolation-linear.png", "interpolation-spherical.png", "predictions.json"} <= names
    predictions = json.loads((out / "predictions.json").read_text())
    assert predictions["seeds"] == list(range(9))
    if family == "cgan":
        assert {f"class-{d}-{d}.png" for d in range(10)} <= names
    else:  # digits: class-named concepts from the held-out classifier
        assert "arithmetic.png" in names
        assert [len(c["seeds"]) for c in predictions["arithmetic_concepts"]] == [2, 2, 2]

    builtin_cli("eval", str(runs / "straight"), "--checkpoint", "last")
    metrics = json.loads((runs / "straight" / "eval.json").read_text())["metrics"]
    assert metrics["real_samples"] == metrics["fake_samples"] == 64
    assert math.isfinite(metrics["fid"]) and metrics["fid"] > 0
    assert ("class_accuracy" in metrics) == (family == "cgan")


def test_k_discriminator_steps_per_generator_step(builtin_cli, tmp_path):
    builtin_cli("train", "dcgan", *TINY["dcgan"], *COMMON, "k=3", "train.max_steps=2", "--device", "cpu", "--quiet",
        "--name", "k3")  # fmt: skip
    state = torch.load(ckpt.load(tmp_path / "runs" / "dcgan" / "k3").path / "state.pt", weights_only=False)
    adam_steps = {
        name: {float(s["step"]) for s in optimizer["state"].values()} for name, optimizer in state["optimizers"].items()
    }
    assert adam_steps == {"generator": {2.0}, "discriminator": {6.0}}


def test_k_splits_the_batch_into_fresh_minibatches():
    seen = []

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, labels=None):
            if x.dim() == 4:
                seen.append(x.detach().clone())
                return x.flatten(1).sum(1) * self.w
            return torch.zeros(len(x), 1, 4, 4) + self.w

    class Ctx:
        config = GanConfig(k=2, image_size=4, latent=3)
        networks = {"generator": Net(), "discriminator": Net()}
        device = torch.device("cpu")

        def autocast(self):
            return torch.autocast("cpu", enabled=False)

        def backward(self, loss, optimizer):
            loss.backward()

        def step_optimizer(self, optimizer):
            self.steps.append(optimizer)

    ctx = Ctx()
    ctx.steps = []
    real = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 4, 4) / 4
    step.adversarial_step(ctx, (real, torch.zeros(4, dtype=torch.long)))
    assert ctx.steps == ["discriminator", "discriminator", "generator"]
    # D sees: real half 1, fake, real half 2, fake, then the generator step's fake.
    assert len(seen) == 5
    assert seen[0][:, 0, 0, 0].tolist() == [0.0, 0.25] and seen[2][:, 0, 0, 0].tolist() == [0.5, 0.75]


def test_generator_losses():
    logits = torch.tensor([-3.0, 0.0, 2.5])
    d = torch.sigmoid(logits)
    torch.testing.assert_close(step._generator_loss(logits, "minimax"), torch.log1p(-d).mean())
    torch.testing.assert_close(step._generator_loss(logits, "non_saturating"), -torch.log(d).mean())
    torch.testing.assert_close(
        step._discriminator_loss(logits, logits.flip(0)), -(torch.log(d).mean() + torch.log1p(-d.flip(0)).mean())
    )


@pytest.mark.parametrize("train_mode", [True, False])
def test_fused_and_unfused_generators_agree(train_mode):
    torch.manual_seed(0)
    fused = build_dcgan(DcganConfig(fused=True, image_size=32))["generator"]
    plain = build_dcgan(DcganConfig(fused=False, image_size=32))["generator"]
    assert fused.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(fused.state_dict())
    fused.train(train_mode), plain.train(train_mode)
    z = torch.randn(8, 100)
    out_fused, out_plain = fused(z), plain(z)
    assert out_fused.shape == (8, 1, 32, 32)
    torch.testing.assert_close(out_fused, out_plain, rtol=1e-4, atol=1e-5)
    if train_mode:  # the batch statistics updated the running buffers identically
        for (name, a), b in zip(fused.named_buffers(), plain.buffers(), strict=True):
            torch.testing.assert_close(a.float(), b.float(), rtol=1e-4, atol=1e-5, msg=name)


def test_dcgan_image_size_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="image_size must be a power of two and at least 8"):
        DcganConfig(image_size=48)
    assert build_dcgan(DcganConfig(image_size=64))["generator"](torch.randn(2, 100)).shape == (2, 1, 64, 64)


def test_slerp_and_lerp():
    torch.manual_seed(0)
    a, b = torch.randn(100), torch.randn(100)
    b = b / b.norm() * a.norm()
    for path in (latent.lerp(a, b, 7), latent.slerp(a, b, 7)):
        torch.testing.assert_close(path[0], a), torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(latent.slerp(a, b, 7).norm(dim=1), a.norm().expand(7), rtol=1e-5, atol=1e-5)
    assert latent.lerp(a, b, 7)[3].norm() < a.norm() * 0.9  # the midpoint the generator never saw
    torch.testing.assert_close(latent.slerp(a, 2 * a, 3), latent.lerp(a, 2 * a, 3))  # parallel: lerp


def test_seeds_give_the_same_z_whatever_else_is_drawn():
    config = GanConfig()
    assert torch.equal(latent.z_from_seeds([5], config, "cpu"), latent.z_from_seeds([1, 5], config, "cpu")[1:])
    z = latent.z_from_seeds(range(1000), config, "cpu")
    assert z.min() >= -1 and z.max() <= 1 and abs(float(z.mean())) < 0.01


def test_vector_arithmetic():
    concepts = [torch.full((3, 4), v) for v in (5.0, 2.0, 1.0)]
    out = latent.arithmetic(concepts, noise=0.25, variants=8)
    assert out.shape == (9, 4)
    torch.testing.assert_close(out[0], torch.full((4,), 4.0))
    assert (out[1:] - out[0]).abs().max() <= 0.25
    with pytest.raises(ValueError, match="three concepts"):
        latent.arithmetic(concepts[:2])


def test_paper_sgd_schedule():
    config = GanConfig()
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr, momentum=config.momentum)
    step.paper_sgd(optimizer, 0, config)
    assert optimizer.param_groups[0]["lr"] == 0.1 and optimizer.param_groups[0]["momentum"] == 0.5
    step.paper_sgd(optimizer, config.momentum_steps // 2, config)
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.6)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 1.000004 ** (config.momentum_steps // 2))
    step.paper_sgd(optimizer, 10**9, config)
    assert optimizer.param_groups[0]["lr"] == config.min_lr and optimizer.param_groups[0]["momentum"] == 0.7


def test_conditional_family_needs_labels():
    from vision_kernels.plugins.gans.cgan import CganConfig

    with pytest.raises(ValueError, match="labelled data"):
        step.conditioning(CganConfig(), None, 4, "cpu")

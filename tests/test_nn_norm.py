"""vision_kernels.nn instance-norm modules as drop-ins for torch's, and fuse()."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vision_kernels import nn as vnn

TORCH_CLASSES = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
VK_CLASSES = {1: vnn.InstanceNorm1d, 2: vnn.InstanceNorm2d, 3: vnn.InstanceNorm3d}


def make_input(dims: int, seed: int, batch: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 4, *([5] * dims), generator=g) * (seed + 1) + seed


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("track", [False, True])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_drop_in_train_and_eval(dims, affine, track, momentum):
    theirs = TORCH_CLASSES[dims](4, affine=affine, track_running_stats=track, momentum=momentum)
    if affine:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 2.0)
            theirs.bias.uniform_(-1.0, 1.0)
    ours = VK_CLASSES[dims](4, affine=affine, track_running_stats=track, momentum=momentum)
    ours.load_state_dict(theirs.state_dict())
    assert isinstance(ours, TORCH_CLASSES[dims])
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for step in range(3):
        x = make_input(dims, step)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = ours(xa), theirs(xb)
        torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
        ya.pow(2).sum().backward()
        yb.pow(2).sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-4)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    if affine:
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours.bias.grad, theirs.bias.grad, rtol=1e-4, atol=1e-4)
    ours.eval()
    theirs.eval()
    x = make_input(dims, 7)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_inputs_without_batch_dimension():
    ours, theirs = vnn.InstanceNorm2d(4), nn.InstanceNorm2d(4)
    x = make_input(2, 1)[0]
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("activation,torch_act", [("relu", nn.ReLU()), ("leaky_relu", nn.LeakyReLU(0.2))])
def test_instance_norm_act_equals_sequential(activation, torch_act):
    seq = nn.Sequential(nn.InstanceNorm2d(4, affine=True), torch_act)
    with torch.no_grad():
        seq[0].weight.uniform_(0.5, 2.0)
    fused = vnn.InstanceNormAct2d(4, affine=True, activation=activation, negative_slope=0.2)
    fused.load_state_dict(seq[0].state_dict())
    x = make_input(2, 2).requires_grad_()
    torch.testing.assert_close(fused(x), seq(x))
    with pytest.raises(ValueError, match="activation must be one of"):
        vnn.InstanceNormAct2d(4, activation="tanh")


# ---- fuse ------------------------------------------------------------------------------------------


class ResnetBlock(nn.Module):
    """CycleGAN's residual block: padding, conv, instance norm, ReLU, ..., a skip connection."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


def small_generator() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.ReflectionPad2d(3),
        nn.Conv2d(3, 8, 7),
        nn.InstanceNorm2d(8, affine=True),
        nn.ReLU(True),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.InstanceNorm2d(16, affine=True),
        nn.LeakyReLU(0.2),
        ResnetBlock(16),
        ResnetBlock(16),
        nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),
        nn.InstanceNorm2d(8),
        nn.ReLU(True),
        nn.Conv2d(8, 3, 7, padding=3),
        nn.Tanh(),
    )


def outputs_and_grads(model: nn.Module, x: torch.Tensor):
    x = x.clone().requires_grad_()
    y = model(x)
    y.square().sum().backward()
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fuse_keeps_outputs_gradients_and_keys(mode):
    model = small_generator()
    getattr(model, mode)()
    fused = vnn.fuse(model)
    assert type(fused) is nn.Sequential  # no tracing was needed
    kinds = [type(m).__name__ for m in fused.modules()]
    assert kinds.count("InstanceNormAct2d") == 4 and kinds.count("InstanceNorm2d") == 2 and "Identity" in kinds
    assert kinds.count("FusedConvTranspose2d") == 1 and kinds.count("AppliedInstanceNorm2d") == 1
    assert list(fused.state_dict()) == list(model.state_dict())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y, gx, gp = outputs_and_grads(model, x)
    fy, fgx, fgp = outputs_and_grads(fused, x)
    torch.testing.assert_close(fy, y, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fgx, gx, rtol=1e-3, atol=1e-4)
    for name in gp:
        torch.testing.assert_close(fgp[name], gp[name], rtol=1e-3, atol=1e-3, msg=name)


def test_fuse_leaves_the_original_untouched_unless_inplace():
    model = small_generator()
    before = copy.deepcopy(model)
    fused = vnn.fuse(model)
    assert [type(m) for m in model.modules()] == [type(m) for m in before.modules()]
    assert fused is not model and fused[2].weight is not model[2].weight
    same = vnn.fuse(model, inplace=True)
    assert same is model and type(model[2]).__name__ == "InstanceNormAct2d"


def test_checkpoints_load_both_ways():
    model = small_generator()
    fused = vnn.fuse(model)
    with torch.no_grad():
        for p in fused.parameters():
            p.add_(0.5)
    model.load_state_dict(fused.state_dict())  # fused -> stock
    for (name, a), b in zip(model.state_dict().items(), fused.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    fresh = vnn.fuse(small_generator())
    fresh.load_state_dict(model.state_dict())  # stock -> fused
    x = torch.randn(1, 3, 16, 16)
    torch.testing.assert_close(fresh(x), model(x), rtol=1e-4, atol=1e-5)


class FunctionalActivations(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.norm1 = nn.InstanceNorm2d(6, affine=True)
        self.norm2 = nn.InstanceNorm2d(6)
        self.shared = nn.InstanceNorm2d(6)

    def forward(self, x):
        x = F.relu(self.norm1(self.conv(x)))
        x = F.leaky_relu(self.norm2(x), 0.3)
        return self.shared(x).relu() + self.shared(x)  # used twice: must not get the activation


def test_fuse_traces_functional_activations():
    model = FunctionalActivations()
    fused = vnn.fuse(model)
    assert isinstance(fused, torch.fx.GraphModule)
    assert fused.norm1.activation == "relu" and fused.norm2.activation == "leaky_relu"
    assert fused.norm2.negative_slope == 0.3 and fused.shared.activation == "none"
    assert list(fused.state_dict()) == list(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)
    kept = vnn.fuse(model, trace=False)
    assert type(kept) is FunctionalActivations and kept.norm1.activation == "none"
    torch.testing.assert_close(kept(x), model(x), rtol=1e-5, atol=1e-5)


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(3)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return F.relu(self.norm(x))
        return self.norm(x)


def test_fuse_of_an_untraceable_model_still_swaps_norms():
    fused = vnn.fuse(Untraceable())
    assert type(fused) is Untraceable and type(fused.norm) is vnn.InstanceNorm2d
    x = torch.randn(1, 3, 4, 4).abs()
    torch.testing.assert_close(fused(x), F.relu(F.instance_norm(x)))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fused_model_with_running_statistics(backend):
    torch._dynamo.reset()
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4, affine=True, track_running_stats=True), nn.ReLU())
    fused = vnn.fuse(model)
    compiled = torch.compile(fused, fullgraph=True, backend=backend)
    x = torch.randn(2, 3, 10, 10)
    out = compiled(x)
    out.sum().backward()
    stock = model(x)  # the same step on the stock model
    torch.testing.assert_close(out, stock, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fused[1].running_mean, model[1].running_mean)
    fused.eval()
    model.eval()
    torch.testing.assert_close(torch.compile(fused, backend=backend)(x), model(x), rtol=1e-4, atol=1e-5)

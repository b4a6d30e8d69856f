"""conv_transpose_norm_act and ConvTransposeNormAct2d against the unfused torch modules, and
fuse() on the upsampling blocks of DCGAN, pix2pix, CycleGAN and U-Net."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import backend_params
from torch import nn

from vision_kernels import nn as vnn
from vision_kernels import ops

# (name, in, out, kernel, stride, padding, output_padding, input size) of the families' layers.
LAYERS = [
    ("dcgan-k4s2p1", 8, 4, 4, 2, 1, 0, 5),
    ("dcgan-first-k4s1p0", 10, 8, 4, 1, 0, 0, 1),
    ("cyclegan-k3s2p1op1", 8, 4, 3, 2, 1, 1, 6),
    ("unet-k2s2", 8, 4, 2, 2, 0, 0, 5),
]
ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "none": nn.Identity,
}
TOL = {torch.float64: 1e-9, torch.float32: 1e-4, torch.bfloat16: 6e-2, torch.float16: 1e-2}


def stock(layer, norm: str, activation: str, dtype=torch.float32, **norm_kwargs) -> nn.Sequential:
    _, cin, cout, k, s, p, op, _ = layer
    torch.manual_seed(0)
    conv = nn.ConvTranspose2d(cin, cout, k, s, p, op)
    if norm == "batch":
        normm = nn.BatchNorm2d(cout, **norm_kwargs)
    elif norm == "instance":
        normm = nn.InstanceNorm2d(cout, **{"affine": True, **norm_kwargs})
    else:
        normm = nn.Identity()
    seq = nn.Sequential(conv, normm, ACTIVATIONS[activation]()).to(dtype)
    with torch.no_grad():
        for m in seq.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return seq


def fused_like(seq: nn.Sequential, norm: str, activation: str) -> vnn.ConvTransposeNormAct2d:
    conv, normm = seq[0], seq[1]
    kwargs = {}
    if norm != "none":
        kwargs = dict(
            eps=normm.eps, momentum=normm.momentum, affine=normm.affine, track_running_stats=normm.track_running_stats
        )
    fused = vnn.ConvTransposeNormAct2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.output_padding,
        norm=norm,
        activation=activation,
        negative_slope=0.2,
        dtype=conv.weight.dtype,
        **kwargs,
    )
    fused.load_state_dict(seq.state_dict())
    return fused


def step(model: nn.Module, x: torch.Tensor, seed: int):
    xs = x.clone().requires_grad_()
    y = model(xs)
    grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(y.dtype)
    y.backward(grad)
    return y.detach(), xs.grad, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def compare(fused, seq, x, dtype, steps=3):
    tol = TOL[dtype]
    for i in range(steps):
        for m in (fused, seq):
            m.zero_grad()
        a, b = step(fused, x, i), step(seq, x, i)
        torch.testing.assert_close(a[0], b[0], rtol=tol, atol=tol)
        torch.testing.assert_close(a[1], b[1], rtol=tol * 10, atol=tol * 10)
        assert a[2].keys() == b[2].keys()
        for name in a[2]:
            torch.testing.assert_close(a[2][name], b[2][name], rtol=tol * 10, atol=tol * 10 * x.shape[0], msg=name)
    for (name, ta), tb in zip(fused.state_dict().items(), seq.state_dict().values(), strict=True):
        torch.testing.assert_close(ta, tb, rtol=tol, atol=tol, msg=name)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer[0])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_module_equals_unfused_sequential(layer, norm, activation, mode):
    seq = stock(layer, norm, activation, **({"track_running_stats": True} if norm == "instance" else {}))
    fused = fused_like(seq, norm, activation)
    getattr(seq, mode)()
    getattr(fused, mode)()
    x = torch.randn(4, layer[1], layer[-1], layer[-1], generator=torch.Generator().manual_seed(1))
    compare(fused, seq, x, torch.float32)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_dtypes(dtype, norm):
    seq = stock(LAYERS[0], norm, "relu", dtype=dtype)
    fused = fused_like(seq, norm, "relu")
    x = torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(2)).to(dtype)
    compare(fused, seq, x, dtype, steps=2)


def test_momentum_none_is_the_cumulative_average():
    seq = stock(LAYERS[0], "batch", "relu", momentum=None)
    fused = fused_like(seq, "batch", "relu")
    g = torch.Generator().manual_seed(3)
    for i in range(4):
        x = torch.randn(4, 8, 5, 5, generator=g) * (i + 1)
        fused(x)
        seq(x)
    assert fused[1].num_batches_tracked.item() == seq[1].num_batches_tracked.item() == 4
    torch.testing.assert_close(fused[1].running_mean, seq[1].running_mean)
    torch.testing.assert_close(fused[1].running_var, seq[1].running_var)


def test_batch_norm_without_running_statistics_and_eval():
    seq = stock(LAYERS[0], "batch", "relu", track_running_stats=False)
    fused = fused_like(seq, "batch", "relu")
    x = torch.randn(4, 8, 5, 5)
    seq.eval()
    fused.eval()
    torch.testing.assert_close(fused(x), seq(x), rtol=1e-4, atol=1e-4)  # batch statistics even in eval


def test_saves_no_more_for_backward_than_the_unfused_sequence():
    seq = stock(LAYERS[0], "batch", "relu")
    fused = fused_like(seq, "batch", "relu")
    x = torch.randn(16, 8, 5, 5)

    def saved_bytes(model):
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(x.clone().requires_grad_())
        return total

    fused_bytes, stock_bytes = saved_bytes(fused), saved_bytes(seq)
    out_bytes = 16 * 4 * 10 * 10 * 4
    assert fused_bytes <= stock_bytes - out_bytes  # the activation's output is not saved


def test_eval_folding_is_cached_and_follows_the_parameters():
    seq = stock(LAYERS[0], "batch", "relu")
    fused = fused_like(seq, "batch", "relu")
    x = torch.randn(2, 8, 5, 5)
    for m in (seq, fused):
        m(x)
        m.eval()
    with torch.no_grad():
        first = fused(x)
        cached = fused[0].__dict__["_vk_fold_cache"]
        assert fused(x).equal(first) and fused[0].__dict__["_vk_fold_cache"] is cached
        for m in (seq, fused):
            m[1].weight.mul_(1.5)
            m[0].weight.add_(0.01)
        torch.testing.assert_close(fused(x), seq(x), rtol=1e-4, atol=1e-5)
        assert fused[0].__dict__["_vk_fold_cache"] is not cached


@pytest.mark.parametrize("backend,device", backend_params("conv_transpose_norm_act"))
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_functional_on_every_backend(backend, device, norm):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 6, 4, 4, generator=g)
    w = torch.randn(6, 5, 4, 4, generator=g) * 0.2
    b, gamma, beta = torch.randn(5, generator=g), torch.rand(5, generator=g) + 0.5, torch.randn(5, generator=g)
    stats = (torch.zeros(5), torch.ones(5))
    ref_stats = tuple(s.clone() for s in stats)
    args = dict(
        stride=2, padding=1, norm=norm, norm_weight=gamma, norm_bias=beta, activation="leaky_relu", negative_slope=0.1
    )
    out = ops.conv_transpose_norm_act(
        *(t.to(device) for t in (x, w, b)),
        running_mean=stats[0].to(device),
        running_var=stats[1].to(device),
        backend=backend,
        **{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in args.items()},
    )
    expected = ops.conv_transpose_norm_act(
        x, w, b, running_mean=ref_stats[0], running_var=ref_stats[1], backend="reference", **args
    )
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (dict(norm="group"), ValueError, r"norm must be one of 'batch', 'instance', 'none', got 'group'"),
        (dict(activation="gelu"), ValueError, r"activation must be one of 'relu', 'leaky_relu', 'tanh', 'none'"),
        (
            dict(norm="none", running_mean=torch.zeros(4), running_var=torch.ones(4)),
            ValueError,
            r"norm='none' takes no norm_weight, norm_bias or running statistics",
        ),
        (dict(training=False), ValueError, r"training=False normalizes with running_mean and running_var"),
        (dict(running_mean=torch.zeros(4)), ValueError, r"running_mean and running_var go together"),
        (
            dict(norm_weight=torch.ones(5)),
            ValueError,
            r"norm_weight must have shape \[C_out\] with C_out = 4, got \[5\]",
        ),
        (dict(weight=torch.zeros(3, 4, 4, 4)), ValueError, r"weight.shape\[0\] must equal input's C_in = 8"),
        (dict(input=torch.zeros(2, 8, 5)), ValueError, r"input must be \[N, C_in, H, W\], got \[2, 8, 5\]"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    args = dict(input=torch.zeros(2, 8, 5, 5), weight=torch.zeros(8, 4, 4, 4))
    args.update(kwargs)
    with pytest.raises(error, match=message):
        ops.conv_transpose_norm_act(args.pop("input"), args.pop("weight"), **args)


def test_opcheck_batch_norm_act():
    pytest.importorskip("vision_kernels._C")
    op, bwd = torch.ops.vision_kernels.batch_norm_act.default, torch.ops.vision_kernels.batch_norm_act_backward.default
    x = torch.randn(4, 3, 6, 5)
    for args in [
        (x, torch.randn(3), torch.randn(3), 1e-5, "tanh", 0.0),
        (x.contiguous(memory_format=torch.channels_last), None, None, 1e-5, "leaky_relu", 0.2),
        (x.double(), torch.randn(3).double(), None, 1e-3, "relu", 0.0),
    ]:
        torch.library.opcheck(op, args)
        out, mean, rstd = op(*args)
        torch.library.opcheck(bwd, (torch.randn_like(out), args[0], args[1], args[2], mean, rstd, args[4], args[5]))


# ---- fuse on whole generators -----------------------------------------------------------------------


def dcgan_generator(nz: int = 16, ngf: int = 4) -> nn.Sequential:
    torch.manual_seed(5)
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fuse_dcgan_generator(mode):
    model = dcgan_generator()
    fused = vnn.fuse(model)
    assert type(fused) is nn.Sequential
    kinds = [type(m).__name__ for m in fused]
    assert kinds.count("FusedConvTranspose2d") == 4 and kinds.count("AppliedBatchNorm2d") == 3
    assert list(fused.state_dict()) == list(model.state_dict())
    z = torch.randn(8, 16, 1, 1)
    if mode == "eval":
        for m in (model, fused):
            m(z)  # some running statistics first
            m.eval()
    compare(fused, model, z, torch.float32, steps=2)
    model.load_state_dict(fused.state_dict())  # checkpoints load both ways
    fused.load_state_dict(model.state_dict())


class FunctionalDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.ConvTranspose2d(6, 6, 3, 1, 1), nn.BatchNorm2d(6), nn.ReLU())  # step 1
        self.up = nn.ConvTranspose2d(6, 4, 4, 2, 1)
        self.bn = nn.BatchNorm2d(4)
        self.out = nn.ConvTranspose2d(4, 3, 2, 2)

    def forward(self, x):
        return torch.tanh(self.out(F.relu(self.bn(self.up(self.block(x))))))


def test_fuse_traces_functional_activations_after_convolutions():
    model = FunctionalDecoder()
    fused = vnn.fuse(model)
    assert isinstance(fused, torch.fx.GraphModule)
    assert type(fused.up).__name__ == "FusedConvTranspose2d" and fused.up.fused_activation[0] == "relu"
    assert type(fused.out).__name__ == "FusedConvTranspose2d" and fused.out.fused_activation[0] == "tanh"
    assert type(getattr(fused.block, "0")).__name__ == "FusedConvTranspose2d"
    assert list(fused.state_dict()) == list(model.state_dict())
    compare(fused, model, torch.randn(2, 6, 5, 5), torch.float32, steps=2)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_compile_fused_generator(backend, mode):
    torch._dynamo.reset()
    model = dcgan_generator()
    fused = vnn.fuse(model)
    getattr(model, mode)()
    getattr(fused, mode)()
    z = torch.randn(4, 16, 1, 1)
    compiled = torch.compile(fused, fullgraph=True, backend=backend)
    out = compiled(z)
    out.square().sum().backward()
    torch.testing.assert_close(out, model(z), rtol=1e-4, atol=1e-4)


@pytest.mark.triton
@pytest.mark.parametrize("layer", LAYERS + [("stride3-k5", 3, 2, 5, 3, 2, 1, 4)], ids=lambda layer: layer[0])
def test_triton_transposed_convolution(layer):
    from vision_kernels import backends

    reason = backends.unavailable_reason("triton", "conv_transpose_norm_act", "cpu")
    if reason:
        pytest.skip(reason)
    _, cin, cout, k, s, p, op, size = layer
    g = torch.Generator().manual_seed(8)
    x = torch.randn(2, cin, size, size, generator=g, requires_grad=True)
    w = (torch.randn(cin, cout, k, k, generator=g) * 0.3).requires_grad_()
    b = torch.randn(cout, generator=g, requires_grad=True)
    for act in ("none", "relu", "leaky_relu", "tanh"):
        y = ops.conv_transpose_norm_act(
            x, w, b, s, p, op, norm="none", activation=act, negative_slope=0.2, backend="triton"
        )
        expected = ops.conv_transpose_norm_act(
            x, w, b, s, p, op, norm="none", activation=act, negative_slope=0.2, backend="reference"
        )
        torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)
        grads = torch.autograd.grad(y.sum(), (x, w, b))
        expected_grads = torch.autograd.grad(expected.sum(), (x, w, b))
        for ours, theirs in zip(grads, expected_grads, strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("train", [True, False])
def test_autocast_stacked_blocks_equal_the_unfused_layers(train):
    # Under autocast the second block gets a bf16 input with fp32 weights (found on a GPU, where
    # the engine's precision=auto is bf16): the op casts as autocast casts F.conv_transpose2d.
    torch.manual_seed(0)
    block = vnn.ConvTransposeNormAct2d
    fused = nn.Sequential(block(8, 4, 4, 1, 0, bias=False), block(4, 2, 4, 2, 1))
    plain = nn.Sequential(
        nn.Sequential(nn.ConvTranspose2d(8, 4, 4, 1, 0, bias=False), nn.BatchNorm2d(4), nn.ReLU()),
        nn.Sequential(nn.ConvTranspose2d(4, 2, 4, 2, 1), nn.BatchNorm2d(2), nn.ReLU()),
    )
    plain.load_state_dict(fused.state_dict())
    fused.train(train), plain.train(train)
    x = torch.randn(3, 8, 1, 1, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_fused, out_plain = fused(x), plain(x)
    assert out_fused.dtype == out_plain.dtype == torch.bfloat16
    torch.testing.assert_close(out_fused.float(), out_plain.float(), rtol=2e-2, atol=2e-2)
    out_fused.float().sum().backward()
    assert fused[0][0].weight.grad is not None and fused[0][0].weight.grad.dtype == torch.float32

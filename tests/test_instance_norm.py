"""instance_norm on every backend against F.instance_norm (+ activation) and the reference."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import backend_params

from vision_kernels import ops, reference

ACTIVATIONS = [("none", 0.01), ("relu", 0.01), ("leaky_relu", 0.2)]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# (rtol, atol) for outputs of O(1) and gradients, per dtype.
TOL = {
    torch.float64: (1e-9, 1e-9),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (5e-2, 5e-2),
}


def torch_instance_norm(x, weight, bias, eps, activation, slope):
    """What a user writes today: F.instance_norm then the activation, in float32 for half inputs
    (torch's CPU kernel runs half too, but less accurately than our float32 statistics)."""
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    y = F.instance_norm(
        xf,
        weight=weight.to(xf.dtype) if weight is not None else None,
        bias=bias.to(xf.dtype) if bias is not None else None,
        eps=eps,
    )
    y = reference.norm.activate(y, activation, slope)
    return y.to(x.dtype)


def inputs(shape, dtype, seed=0, scale=1.0, offset=0.0, affine=True):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * scale + offset).to(dtype)
    c = shape[1]
    w = torch.randn(c, generator=g, dtype=torch.float64).to(dtype) if affine else None
    b = torch.randn(c, generator=g, dtype=torch.float64).to(dtype) if affine else None
    return x, w, b


def close(actual, expected, dtype, scale=1.0):
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=atol * scale)


def run_both(backend, device, x, w, b, activation, slope, grad=None):
    """Output and (x, w, b) gradients of ours and of torch's for the same inputs."""
    results = []
    for fn in (
        lambda *a: ops.instance_norm(*a, eps=1e-5, activation=activation, negative_slope=slope, backend=backend),
        lambda *a: torch_instance_norm(*a, 1e-5, activation, slope),
    ):
        xs = x.to(device).requires_grad_()
        ws = w.to(device).requires_grad_() if w is not None else None
        bs = b.to(device).requires_grad_() if b is not None else None
        y = fn(xs, ws, bs)
        g = grad.to(device) if grad is not None else torch.ones_like(y)
        y.backward(g)
        results.append((y, xs.grad, ws.grad if ws is not None else None, bs.grad if bs is not None else None))
    return results


SHAPES = [(2, 3, 17), (2, 3, 9, 11), (1, 2, 3, 5, 7)]


@pytest.mark.parametrize("backend,device", backend_params("instance_norm"))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
def test_matches_torch_forward_and_backward(backend, device, dtype, activation, slope):
    for i, shape in enumerate(SHAPES):
        x, w, b = inputs(shape, dtype, seed=i)
        grad = torch.randn(shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64).to(dtype)
        (y, gx, gw, gb), (ty, tgx, tgw, tgb) = run_both(backend, device, x, w, b, activation, slope, grad)
        assert y.shape == x.shape and y.dtype == dtype and y.device.type == device
        close(y.cpu(), ty.cpu(), dtype)
        close(gx.cpu(), tgx.cpu(), dtype, scale=4)
        close(gw.cpu(), tgw.cpu(), dtype, scale=x[0, 0].numel())
        close(gb.cpu(), tgb.cpu(), dtype, scale=x[0, 0].numel())


@pytest.mark.parametrize("backend,device", backend_params("instance_norm"))
def test_without_affine_and_with_weight_only(backend, device):
    x, w, _ = inputs((2, 4, 6, 6), torch.float32, seed=3)
    for weight, bias in [(None, None), (w, None), (None, w)]:
        out = ops.instance_norm(
            x.to(device),
            weight.to(device) if weight is not None else None,
            bias.to(device) if bias is not None else None,
            backend=backend,
        )
        close(out.cpu(), F.instance_norm(x, weight=weight, bias=bias), torch.float32)


@pytest.mark.parametrize("backend,device", backend_params("instance_norm"))
def test_constant_planes_and_single_pixels(backend, device):
    # Variance 0: the output is the bias (through the activation); gradients stay finite.
    x = torch.full((2, 3, 5, 5), 7.25)
    x[1] = -3.0
    w, b = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.1, -0.3, 2.0])
    for shape_x in (x, torch.randn(2, 3, 1, 1)):  # 1x1 planes: torch refuses them in training
        xs = shape_x.to(device).requires_grad_()
        y = ops.instance_norm(xs, w.to(device), b.to(device), activation="relu", backend=backend)
        torch.testing.assert_close(y.cpu(), F.relu(b).view(1, 3, 1, 1).expand_as(shape_x))
        y.sum().backward()
        assert torch.isfinite(xs.grad).all()
        ref = reference.instance_norm(shape_x, w, b, 1e-5, "relu", 0.01)[0]
        torch.testing.assert_close(y.cpu(), ref)


@pytest.mark.parametrize("backend,device", backend_params("instance_norm"))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_channels_last_and_non_contiguous(backend, device, dtype):
    x, w, b = inputs((2, 5, 7, 9), dtype, seed=4)
    expected = torch_instance_norm(x, w, b, 1e-5, "leaky_relu", 0.1)
    layouts = {
        "channels_last": x.contiguous(memory_format=torch.channels_last),
        "channels_last_1d": x.flatten(2).movedim(1, -1).contiguous().movedim(-1, 1),
        "strided": torch.stack([x, x], dim=-1)[..., 0],  # last-dim stride 2
        "transposed_hw": x.transpose(2, 3).contiguous().transpose(2, 3),
    }
    for name, xin in layouts.items():
        y = ops.instance_norm(
            xin.to(device), w.to(device), b.to(device), activation="leaky_relu", negative_slope=0.1, backend=backend
        )
        close(y.cpu().reshape(x.shape), expected, dtype)
        if name.startswith("channels_last"):
            assert y.stride() == xin.stride(), name  # the layout is kept
    x3 = inputs((2, 3, 4, 5, 6), torch.float32, seed=5)[0]
    y = ops.instance_norm(x3.contiguous(memory_format=torch.channels_last_3d).to(device), backend=backend)
    assert y.is_contiguous(memory_format=torch.channels_last_3d)
    close(y.cpu(), F.instance_norm(x3), torch.float32)


@pytest.mark.parametrize("backend,device", backend_params("instance_norm"))
def test_channels_last_backward(backend, device):
    x, w, b = inputs((2, 6, 5, 7), torch.float64, seed=6)
    grad = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    xcl = x.contiguous(memory_format=torch.channels_last)
    (y, gx, gw, gb), (ty, tgx, tgw, tgb) = run_both(backend, device, xcl, w, b, "relu", 0.01, grad)
    for ours, theirs in ((y, ty), (gx, tgx), (gw, tgw), (gb, tgb)):
        close(ours.cpu(), theirs.cpu(), torch.float64)


@pytest.mark.parametrize("backend,device", backend_params("instance_norm"))
def test_empty_batch_and_channels(backend, device):
    for shape in [(0, 3, 4, 4), (2, 0, 4, 4), (0, 3, 5)]:
        x = torch.zeros(shape, device=device, requires_grad=True)
        y = ops.instance_norm(x, backend=backend)
        assert y.shape == shape
        y.sum().backward()
        assert x.grad.shape == shape


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_one_large_plane_with_a_large_mean(backend):
    """4096 x 4096 values around 1e4 with spread 1: float32 statistics must not lose the spread."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 4096, 4096, generator=g) + 1e4
    y = ops.instance_norm(x, backend=backend)
    x64 = x.double()
    exact = (x64 - x64.mean()) / (x64.var(unbiased=False) + 1e-5).sqrt()
    error = (y.double() - exact).abs().max().item()
    torch_error = (F.instance_norm(x).double() - exact).abs().max().item()
    assert error < 2e-3 and (backend == "reference" or error <= torch_error), (error, torch_error)


def test_native_error_is_float32_level_on_large_means():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 64, 64, generator=g) * 0.1 + 3e3
    exact = F.instance_norm(x.double())
    for xin in (x, x.contiguous(memory_format=torch.channels_last)):
        assert (ops.instance_norm(xin).double() - exact).abs().max() < 1e-5  # torch's float32: ~2e-3


# ---- gradients ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend,device", backend_params("instance_norm"))
@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
def test_gradcheck_float64(backend, device, activation, slope):
    # Triton on CPU runs in its interpreter: a smaller input and gradcheck's fast mode keep it quick.
    interpreted = backend == "triton" and device == "cpu"
    x, w, b = inputs((1, 2, 3, 4) if interpreted else (2, 3, 4, 5), torch.float64, seed=7)
    args = tuple(t.to(device).requires_grad_() for t in (x, w, b))

    def fn(x, w, b):
        return ops.instance_norm(x, w, b, activation=activation, negative_slope=slope, backend=backend)

    assert torch.autograd.gradcheck(fn, args, fast_mode=interpreted)
    assert torch.autograd.gradcheck(lambda x: ops.instance_norm(x, backend=backend), (args[0],), fast_mode=interpreted)


@pytest.mark.parametrize("backend,device", backend_params("instance_norm"))
def test_double_backward(backend, device):
    interpreted = backend == "triton" and device == "cpu"
    x, w, b = inputs((1, 2, 4) if interpreted else (2, 3, 5), torch.float64, seed=8)
    args = tuple(t.to(device).requires_grad_() for t in (x, w, b))
    assert torch.autograd.gradgradcheck(
        lambda x, w, b: ops.instance_norm(x, w, b, activation="leaky_relu", negative_slope=0.3, backend=backend),
        args,
        fast_mode=interpreted,
    )


def test_gradients_are_deterministic_and_thread_count_independent():
    code = """
import hashlib, torch, sys
from vision_kernels import ops
torch.set_num_threads(int(sys.argv[1]))
g = torch.Generator().manual_seed(0)
for shape in [(4, 32, 64, 64), (1, 2, 700, 700)]:
    x = torch.randn(shape, generator=g).requires_grad_()
    w = torch.randn(shape[1], generator=g).requires_grad_(); b = torch.randn(shape[1], generator=g).requires_grad_()
    y = ops.instance_norm(x, w, b, activation='relu')
    y.backward(torch.randn(shape, generator=g))
    for t in (y, x.grad, w.grad, b.grad):  # the bytes: a torch.sum here would itself depend on threads
        sys.stdout.write(hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest() + "\\n")
"""
    outputs = [
        subprocess.run([sys.executable, "-c", code, str(n)], capture_output=True, text=True, timeout=300)
        for n in (1, 2, 1)
    ]
    assert all(o.returncode == 0 for o in outputs), outputs[0].stderr
    assert outputs[0].stdout == outputs[1].stdout == outputs[2].stdout


# ---- running statistics, errors, torch.library ---------------------------------------------------


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 0.0])
def test_running_statistics_equal_torch_after_steps(backend, momentum):
    rm, rv = torch.zeros(4), torch.ones(4)
    trm, trv = rm.clone(), rv.clone()
    for step in range(5):
        x, w, b = inputs((3, 4, 6, 5), torch.float32, seed=10 + step, scale=step + 1.0, offset=step)
        ops.instance_norm(x, w, b, running_mean=rm, running_var=rv, momentum=momentum, backend=backend)
        F.instance_norm(x, trm, trv, w, b, use_input_stats=True, momentum=momentum)
        torch.testing.assert_close(rm, trm, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rv, trv, rtol=1e-5, atol=1e-6)
    x, w, b = inputs((2, 4, 6, 5), torch.float32, seed=20)
    out = ops.instance_norm(x, w, b, running_mean=rm, running_var=rv, use_input_stats=False, activation="relu")
    torch.testing.assert_close(out, F.relu(F.instance_norm(x, trm, trv, w, b, use_input_stats=False)))


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize(
    "args,kwargs,error,message",
    [
        (
            (torch.zeros(2, 3),),
            {},
            ValueError,
            r"input must be \[N, C, L\], \[N, C, H, W\] or \[N, C, D, H, W\], got \[2, 3\]",
        ),
        ((torch.zeros(2, 3, 4, 5, 6, 7),), {}, ValueError, r"got \[2, 3, 4, 5, 6, 7\]"),
        ((torch.zeros(2, 3, 4, 4, dtype=torch.int64),), {}, TypeError, r"input must be a floating-point tensor.*int64"),
        (
            (torch.zeros(2, 3, 4, 4), torch.ones(4)),
            {},
            ValueError,
            r"weight must have shape \[C\] with C = input.shape\[1\] = 3, got \[4\]",
        ),
        (
            (torch.zeros(2, 3, 4, 4), None, torch.ones(3, 1)),
            {},
            ValueError,
            r"bias must have shape \[C\].*got \[3, 1\]",
        ),
        (
            (torch.zeros(2, 3, 4, 4), torch.ones(3, dtype=torch.int32)),
            {},
            TypeError,
            r"weight must be a floating-point",
        ),
        (
            (torch.zeros(2, 3, 4, 4), torch.ones(3, device="meta")),
            {},
            ValueError,
            r"weight and input must be on the same device, got meta and cpu",
        ),
        (
            (torch.zeros(2, 3, 4, 4),),
            {"activation": "gelu"},
            ValueError,
            r"activation must be one of 'none', 'relu', 'leaky_relu', got 'gelu'",
        ),
        (
            (torch.zeros(2, 3, 4, 4),),
            {"use_input_stats": False},
            ValueError,
            r"running_mean and running_var: pass both",
        ),
        (
            (torch.zeros(2, 3, 4, 4),),
            {"running_mean": torch.zeros(2)},
            ValueError,
            r"running_mean must have shape \[C\]",
        ),
    ],
)
def test_bad_input(backend, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        ops.instance_norm(*args, backend=backend, **kwargs)


def test_running_var_of_single_pixels_is_refused_like_torch():
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        ops.instance_norm(torch.randn(2, 3, 1, 1), running_var=torch.ones(3))


def test_native_op_checks_directly():
    pytest.importorskip("vision_kernels._C")
    with pytest.raises(ValueError, match=r"weight must have shape \[C\]"):
        torch.ops.vision_kernels.instance_norm(torch.zeros(2, 3, 4), torch.ones(2), None, 1e-5, "none", 0.0)
    with pytest.raises(ValueError, match="activation must be one of"):
        torch.ops.vision_kernels.instance_norm(torch.zeros(2, 3, 4), None, None, 1e-5, "gelu", 0.0)
    with pytest.raises(ValueError, match=r"grad_out must have the shape of input"):
        torch.ops.vision_kernels.instance_norm_backward(
            torch.zeros(2, 3, 5), torch.zeros(2, 3, 4), None, None, torch.zeros(2, 3), torch.ones(2, 3), "none", 0.0
        )


def test_opcheck_native():
    pytest.importorskip("vision_kernels._C")
    op, bwd = torch.ops.vision_kernels.instance_norm.default, torch.ops.vision_kernels.instance_norm_backward.default
    x, w, b = inputs((2, 3, 6, 5), torch.float32, seed=30)
    cases = [
        (x, w, b, 1e-5, "relu", 0.01),
        (x.contiguous(memory_format=torch.channels_last), w, None, 1e-5, "leaky_relu", 0.2),
        (x.double()[..., ::2], None, b.double(), 1e-3, "none", 0.01),
        (x.flatten(2).movedim(1, -1).contiguous().movedim(-1, 1), w, b, 1e-5, "none", 0.01),
        (x.half(), w, b, 1e-5, "relu", 0.01),
        (torch.zeros(0, 3, 4), None, None, 1e-5, "none", 0.01),
    ]
    for args in cases:
        torch.library.opcheck(op, args)
        out, mean, rstd = op(*args)
        torch.library.opcheck(bwd, (torch.randn_like(out), args[0], args[1], args[2], mean, rstd, args[4], args[5]))

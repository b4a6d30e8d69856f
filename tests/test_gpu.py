"""What only a GPU can check: opcheck and torch.compile over the Triton ops (Triton's interpreter
cannot run on fake tensors), and the native CUDA kernels against the CPU ones on large inputs."""

from __future__ import annotations

import pytest
import torch
from boxes_data import random_boxes

from vision_kernels import backends, ops

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def _needs_gpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")


def _triton_ops():
    for op in backends.TRITON_MODULES:
        if backends.unavailable_reason("triton", op, "cuda") is not None:
            pytest.skip(backends.unavailable_reason("triton", op, "cuda"))
    return torch.ops.vision_kernels


@pytest.mark.triton
@pytest.mark.parametrize("mode", ["iou", "giou", "diou", "ciou", "iof"])
def test_opcheck_triton_box_ops(mode):
    t = _triton_ops()
    b1, b2 = random_boxes(37, seed=1).cuda(), random_boxes(29, seed=2).cuda()
    torch.library.opcheck(t.box_iou_triton.default, (b1, b2, mode, 1e-7))
    torch.library.opcheck(t.box_iou_triton.default, (b1.reshape(1, 37, 4), b2.reshape(1, 29, 4), mode, 1e-7))
    a1, a2 = b1[:29].double(), b2.double()
    torch.library.opcheck(t.box_iou_aligned_triton.default, (a1, a2, mode, 1e-7))
    torch.library.opcheck(
        t.box_iou_aligned_backward_triton.default,
        (torch.randn(29, device="cuda", dtype=torch.float64), a1, a2, mode, 1e-7),
    )
    torch.library.opcheck(t.box_convert_triton.default, (b1, "xywh", "cxcywh"))


@pytest.mark.triton
def test_opcheck_triton_nms():
    t = _triton_ops()
    boxes, scores = random_boxes(200, seed=3).cuda(), torch.rand(200, device="cuda")
    torch.library.opcheck(t.nms_triton.default, (boxes, scores, 0.5))
    idxs = torch.randint(0, 4, (200,), device="cuda")
    torch.library.opcheck(t.batched_nms_triton.default, (boxes, scores, idxs, 0.5))


@pytest.mark.parametrize("backend", ["native", pytest.param("triton", marks=pytest.mark.triton)])
def test_compile_fullgraph_on_gpu(backend):
    if backend == "triton":
        _triton_ops()
    torch._dynamo.reset()

    def step(pred, target, scores):
        loss = (1 - ops.box_iou(pred, target, "giou", aligned=True)).mean()
        keep = ops.nms(pred.detach(), scores, 0.5)
        return loss, keep

    pred = (random_boxes(256, seed=4) + 1).cuda().requires_grad_()
    target, scores = random_boxes(256, seed=5).cuda(), torch.rand(256, device="cuda")
    with backends.use_backend(backend):
        loss, keep = torch.compile(step, fullgraph=True)(pred, target, scores)
        loss.backward()
        eager_loss, eager_keep = step(pred, target, scores)
    torch.testing.assert_close(loss, eager_loss)
    assert torch.equal(keep, eager_keep)


@pytest.mark.parametrize("backend", ["native", pytest.param("triton", marks=pytest.mark.triton)])
def test_large_inputs_match_cpu(backend):
    if backend == "triton":
        _triton_ops()
    a, b = random_boxes(3000, seed=6), random_boxes(2000, seed=7)
    for mode in ("iou", "giou", "ciou"):
        expected = ops.box_iou(a, b, mode, backend="native")
        got = ops.box_iou(a.cuda(), b.cuda(), mode, backend=backend).cpu()
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    scores = torch.rand(3000)
    assert torch.equal(
        ops.nms(a.cuda(), scores.cuda(), 0.5, backend=backend).cpu(), ops.nms(a, scores, 0.5, backend="native")
    )


@pytest.mark.triton
def test_opcheck_triton_instance_norm():
    if backends.unavailable_reason("triton", "instance_norm", "cuda"):
        pytest.skip(backends.unavailable_reason("triton", "instance_norm", "cuda"))
    t = torch.ops.vision_kernels
    x = torch.randn(2, 3, 40, 30, device="cuda")
    w, b = torch.randn(3, device="cuda"), torch.randn(3, device="cuda")
    for args in [
        (x, w, b, 1e-5, "relu", 0.01),
        (x.contiguous(memory_format=torch.channels_last), None, b, 1e-5, "none", 0.0),
    ]:
        torch.library.opcheck(t.instance_norm_triton.default, args)
        out, mean, rstd = t.instance_norm_triton(*args)
        torch.library.opcheck(
            t.instance_norm_backward_triton.default,
            (torch.randn_like(out), args[0], args[1], args[2], mean, rstd, args[4], args[5]),
        )


@pytest.mark.parametrize("backend", ["native", pytest.param("triton", marks=pytest.mark.triton)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_instance_norm_gpu_matches_cpu(backend, dtype):
    if backends.unavailable_reason(backend, "instance_norm", "cuda"):
        pytest.skip(backends.unavailable_reason(backend, "instance_norm", "cuda"))
    g = torch.Generator().manual_seed(0)
    # A single large plane (split across many blocks), CycleGAN shapes, channels last.
    for shape, cl in [((1, 1, 1024, 1024), False), ((1, 64, 256, 256), False), ((4, 32, 64, 64), True)]:
        x = (torch.randn(shape, generator=g) * 3 + 5).to(dtype)
        w, b = torch.randn(shape[1], generator=g), torch.randn(shape[1], generator=g)
        xg = x.cuda().contiguous(memory_format=torch.channels_last) if cl else x.cuda()
        xg.requires_grad_()
        y = ops.instance_norm(xg, w.cuda(), b.cuda(), activation="relu", backend=backend)
        y.float().square().sum().backward()
        xc = x.float().requires_grad_()
        yc = ops.instance_norm(xc, w, b, activation="relu", backend="native")
        yc.square().sum().backward()
        tol = 1e-4 if dtype == torch.float32 else 3e-2
        torch.testing.assert_close(y.float().cpu(), yc, rtol=tol, atol=tol)
        torch.testing.assert_close(xg.grad.float().cpu(), xc.grad, rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("backend", ["native", pytest.param("triton", marks=pytest.mark.triton)])
def test_instance_norm_gpu_is_deterministic(backend):
    if backends.unavailable_reason(backend, "instance_norm", "cuda"):
        pytest.skip(backends.unavailable_reason(backend, "instance_norm", "cuda"))
    x = torch.randn(2, 16, 128, 128, device="cuda")
    w = torch.randn(16, device="cuda", requires_grad=True)
    grads = []
    for _ in range(2):
        w.grad = None
        ops.instance_norm(x, w, None, activation="leaky_relu", backend=backend).sum().backward()
        grads.append(w.grad.clone())
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("backend", ["native", pytest.param("triton", marks=pytest.mark.triton)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_conv_transpose_norm_act_gpu(backend, dtype):
    from torch import nn

    from vision_kernels import nn as vnn

    if backends.unavailable_reason(backend, "conv_transpose_norm_act", "cuda"):
        pytest.skip(backends.unavailable_reason(backend, "conv_transpose_norm_act", "cuda"))
    torch.manual_seed(0)
    for cin, cout, k, s, p, op, size, norm in [
        (64, 32, 4, 2, 1, 0, 8, "batch"),
        (32, 16, 3, 2, 1, 1, 16, "instance"),
        (16, 8, 4, 1, 0, 0, 1, "batch"),
    ]:
        norm_module = nn.BatchNorm2d(cout) if norm == "batch" else nn.InstanceNorm2d(cout, affine=True)
        stock = nn.Sequential(nn.ConvTranspose2d(cin, cout, k, s, p, op), norm_module, nn.ReLU()).cuda().to(dtype)
        fused = vnn.fuse(stock)
        x = torch.randn(8, cin, size, size, device="cuda", dtype=dtype)
        tol = 1e-2 if dtype == torch.float32 else 6e-2  # TF32 convolutions
        for mode in ("train", "eval"):
            stock.train(mode == "train")
            fused.train(mode == "train")
            with backends.use_backend(backend):
                out = fused(x)
            torch.testing.assert_close(out.float(), stock(x).float(), rtol=tol, atol=tol)


@pytest.mark.triton
def test_opcheck_triton_conv_transpose():
    if backends.unavailable_reason("triton", "conv_transpose_norm_act", "cuda"):
        pytest.skip(backends.unavailable_reason("triton", "conv_transpose_norm_act", "cuda"))
    x = torch.randn(2, 16, 8, 8, device="cuda")
    w = torch.randn(16, 8, 4, 4, device="cuda")
    b = torch.randn(8, device="cuda")
    torch.library.opcheck(
        torch.ops.vision_kernels.conv_transpose_bias_act_triton.default, (x, w, b, [2, 2], [1, 1], [0, 0], "relu", 0.0)
    )


@pytest.mark.parametrize("fused", [True, False])
def test_unet_channels_last_bf16_training_step_on_gpu(fused, monkeypatch):
    """The unet family's GPU path: channels-last weights and activations, the fused up-convolution's
    CUDA kernel (or the plain layers), bf16 autocast; fp32 results equal the CPU model's."""
    from vision_kernels.plugins.unet.model import UNet

    # cuDNN convolves fp32 in TF32 by default (10-bit mantissa): 0.025 apart from the CPU on the
    # H200 through 14 convolutions with both fused and plain layers. Compare in true fp32.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    torch.manual_seed(0)
    cpu = UNet(3, 4, depth=3, base_width=8, padding="same", batch_norm=True, dropout=0.0, fused=fused)
    gpu = UNet(3, 4, depth=3, base_width=8, padding="same", batch_norm=True, dropout=0.0, fused=fused,
               channels_last=True).cuda()  # fmt: skip
    gpu.load_state_dict(cpu.state_dict())
    x = torch.rand(4, 3, 64, 64)
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-3, atol=1e-3)
    target = torch.randint(0, 4, (4, 64, 64), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = gpu(x.cuda())
    loss = torch.nn.functional.cross_entropy(logits.float(), target)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in gpu.parameters())

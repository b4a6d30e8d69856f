"""The unet family's training step (forward, cross-entropy, backward, Adam) at its default size:
batch 8, 3x128x128, depth 4, width 16, same padding, batch norm with the fused up-convolutions. The
baseline is fp32 in NCHW; then channels-last, bf16 autocast, and both (the family's default where
bf16 is native: `channels_last=true`, `train.precision=auto-bf16`). The ratio of the last row is
what fits the 10-minute quality run's 1800 steps on a 2-core CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vision_kernels.engine.trainer import native_bf16
from vision_kernels.plugins.unet.model import UNet

VARIANTS = {  # name: (channels_last, autocast dtype)
    "fp32 NCHW": (False, None),
    "fp32 channels-last": (True, None),
    "bf16 NCHW": (False, torch.bfloat16),
    "bf16 channels-last": (True, torch.bfloat16),
}
BATCH, SIZE, CLASSES = 8, 128, 4


@pytest.mark.parametrize("impl", list(VARIANTS))
def test_unet_training_step(benchmark, impl, device):
    channels_last, amp = VARIANTS[impl]
    if amp is not None and not native_bf16(torch.device(device)):
        pytest.skip(f"bf16 is not native on this {device}: emulated, its speed means nothing")
    torch.manual_seed(0)
    model = UNet(3, CLASSES, depth=4, base_width=16, padding="same", batch_norm=True, channels_last=channels_last)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.rand(BATCH, 3, SIZE, SIZE, device=device)
    target = torch.randint(0, CLASSES, (BATCH, SIZE, SIZE), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step():
        with torch.autocast(device, dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(images)
        loss = F.cross_entropy(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()

    step()  # warm-up: oneDNN / cuDNN pick their algorithms on the first call
    case = f"unet_step_b{BATCH}_{SIZE}"
    benchmark.group = f"{case} [{device}]"
    benchmark.extra_info.update(
        op="unet_step",
        case=case,
        shape=f"[{BATCH}, 3, {SIZE}, {SIZE}]",
        dtype="float32" if amp is None else "bfloat16 (autocast)",
        device=device,
        impl=impl,
        baseline="fp32 NCHW",
        kind="baseline" if impl == "fp32 NCHW" else "variant",
    )
    benchmark(step)

"""ConvTranspose2d + norm + activation, fused, next to the eager nn.Sequential and torch.compile of
it: the DCGAN generator's layers at batch 64, the pix2pix unet_256 decoder's largest layers at
batch 1, CycleGAN's two upsampling layers at 256x256; eval and training forward+backward; time,
and the bytes saved for backward (training)."""

from __future__ import annotations

import pytest
from conftest import bench_case, implementations

from vision_kernels.benchmarking import cases_for
from vision_kernels.benchmarking.cases import saved_for_backward_bytes

CASES = cases_for(family="conv_transpose_norm_act")


def saved_bytes(impl, inputs):
    if not inputs[1].training:
        return {}
    x, stock, fused, compiled = inputs
    model = stock if impl.startswith("nn.Sequential") else compiled if impl.startswith("torch.compile") else fused
    return {"saved_bytes": saved_for_backward_bytes(model, x)}


@pytest.mark.parametrize("case,impl", list(implementations(CASES)))
def test_conv_transpose_norm_act(benchmark, request, case, impl, device):
    if impl == "reference":
        pytest.skip("the reference is the unfused sequence: the eager baseline")
    bench_case(benchmark, request, case, impl, device, extra=saved_bytes)

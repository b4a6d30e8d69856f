"""Which device a run uses, and which autocast dtype its precision setting means there."""

from __future__ import annotations

import torch

from vision_kernels.engine.distributed import World

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str | torch.device, world: World) -> torch.device:
    """cpu, cuda (this process's GPU under torchrun) or auto (a GPU when torch sees one)."""
    if isinstance(requested, torch.device):
        return requested
    if requested not in DEVICES:
        raise ValueError(f"--device must be cpu, cuda or auto; got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA GPU here (use --device cpu or auto)")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", world.local_rank if world.distributed else torch.cuda.current_device())
    return torch.device("cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 arithmetic runs in hardware on the device: a GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (elsewhere CPU bf16 is emulated and slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None: full precision. auto: bf16 on a GPU that has it, fp32 on CPU. auto-bf16: bf16 wherever
    native_bf16(device), else fp32."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" and native_bf16(device) else None
    if precision == "auto-bf16":
        return torch.bfloat16 if native_bf16(device) else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

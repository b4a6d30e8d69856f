"""Drop-in modules on vision_kernels' kernels, and fuse(model) that swaps them in."""

from vision_kernels.nn.conv import ConvTransposeNormAct2d, FusedConvTranspose2d
from vision_kernels.nn.fuse import fuse
from vision_kernels.nn.instance_norm import (
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    InstanceNormAct1d,
    InstanceNormAct2d,
    InstanceNormAct3d,
)

__all__ = [
    "ConvTransposeNormAct2d",
    "FusedConvTranspose2d",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "InstanceNormAct1d",
    "InstanceNormAct2d",
    "InstanceNormAct3d",
    "fuse",
]

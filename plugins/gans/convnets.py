"""DCGAN's networks (see dcgan.py for the guidelines they follow)."""

from __future__ import annotations

import math

from torch import Tensor, nn

from vision_kernels.nn import ConvTransposeNormAct2d


def dcgan_init(module: nn.Module) -> None:
    """The paper: all weights from N(0, 0.02); batch norm scales from N(1, 0.02), shifts 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def up_block(in_channels: int, out_channels: int, kernel: int, stride: int, padding: int, fused: bool) -> nn.Module:
    """Transposed convolution + batch norm + ReLU: the fused module or the same layers unfused
    (same parameters, same state_dict keys)."""
    if fused:
        return ConvTransposeNormAct2d(in_channels, out_channels, kernel, stride, padding, bias=False)
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class DcganGenerator(nn.Module):
    """z -> 4x4 (projection) -> one doubling per block -> image_size, Tanh output."""

    def __init__(self, latent: int, image_size: int, channels: int, width: int, fused: bool) -> None:
        super().__init__()
        blocks = int(math.log2(image_size)) - 2
        channels_now = width * 2 ** (blocks - 1)
        layers = [up_block(latent, channels_now, 4, 1, 0, fused)]  # 1x1 -> 4x4: project and reshape
        for _ in range(blocks - 1):
            layers.append(up_block(channels_now, channels_now // 2, 4, 2, 1, fused))
            channels_now //= 2
        layers += [nn.ConvTranspose2d(channels_now, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.body(z[:, :, None, None])


class DcganDiscriminator(nn.Module):
    """image_size -> halving per strided convolution -> 4x4 -> one logit."""

    def __init__(self, image_size: int, channels: int, width: int) -> None:
        super().__init__()
        blocks = int(math.log2(image_size)) - 2
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
        for _ in range(blocks - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2)]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.body(x).flatten()

"""The network: two strided convolutions down, a linear code, two transposed convolutions up."""

from __future__ import annotations

import torch
from torch import nn


class Autoencoder(nn.Module):
    def __init__(self, channels: int, width: int, latent: int, image_size: int) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {image_size}")
        side = image_size // 4
        self.shape = (2 * width, side, side)
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * width * side * side, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 2 * width * side * side), nn.Unflatten(1, self.shape),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

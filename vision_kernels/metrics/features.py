"""The offline feature space for FID and KID: a small classifier of 28x28 grey images that the
toolkit trains itself (tools/train_feature_net.py) on handwritten digits (scikit-learn's and
OpenCV's) and Fashion-MNIST, and ships as vision_kernels/metrics/weights/gray28.safetensors.

FID and KID need a fixed network whose features summarise images. The usual one (Inception-v3,
ImageNet) is a download, and its numbers are meaningless for 28x28 digits anyway. This one runs
offline and knows these domains; its FID is NOT comparable with Inception-FID values in papers, only
with other values computed here (same weights file, whose hash every result records).

The network also serves as the held-out classifier for conditional generators: its digit logits
(classes 0-9) and clothing logits (10-19, Fashion-MNIST's classes) are trained on real data only.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WEIGHTS = Path(__file__).parent / "weights" / "gray28.safetensors"
SIZE = 28
FEATURES = 128
CLASSES = 20  # 0-9 digits, 10-19 Fashion-MNIST classes


class FeatureNet(nn.Module):
    """Three 3x3 convolutions with pooling, global average pooling, a 128-d feature layer, a
    20-way classifier. No batch norm: features do not depend on the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(128, FEATURES), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(FEATURES, CLASSES)

    def features(self, x: Tensor) -> Tensor:
        return self.body(prepare(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def prepare(images: Tensor) -> Tensor:
    """Any [N, C, H, W] images in [0, 1] -> [N, 1, 28, 28] grey, centred on 0.5."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 1 or 3, H, W] in [0, 1]; got shape {tuple(images.shape)}")
    x = images.float()
    if x.shape[1] == 3:
        x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if x.shape[-2:] != (SIZE, SIZE):
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
    return (x - 0.5) / 0.5


@functools.cache
def weights_info() -> dict[str, Any]:
    """What the shipped weights were trained on, their validation accuracy, and their sha256."""
    from safetensors import safe_open

    if not WEIGHTS.exists():
        raise FileNotFoundError(
            f"the feature network's weights {str(WEIGHTS)!r} are missing (reinstall vision-kernels)"
        )
    with safe_open(WEIGHTS, "pt") as f:
        meta = json.loads(f.metadata().get("vision_kernels", "{}"))
    meta["sha256"] = hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    return meta


def load_feature_net(device: str | torch.device = "cpu") -> FeatureNet:
    """The shipped feature network, in eval mode, on `device`."""
    from safetensors.torch import load_file

    weights_info()  # a clear error when missing
    net = FeatureNet()
    net.load_state_dict(load_file(WEIGHTS))
    return net.eval().requires_grad_(False).to(device)


@torch.no_grad()
def extract_features(images: Tensor, net: FeatureNet | None = None, batch_size: int = 512) -> Tensor:
    """[N, 128] float64 features of images in [0, 1] (any size, 1 or 3 channels)."""
    net = net or load_feature_net(images.device)
    out = [net.features(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return torch.cat(out).double() if out else images.new_zeros(0, FEATURES, dtype=torch.float64)

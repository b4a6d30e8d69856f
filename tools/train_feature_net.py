"""Trains the feature network of FID/KID (vision_kernels.metrics.features) and writes its weights.

    .venv/bin/python tools/train_feature_net.py [--epochs 4] [--out vision_kernels/metrics/weights/gray28.safetensors]

Data (all offline): Fashion-MNIST train (Debian dataset-fashion-mnist), OpenCV's digits and
scikit-learn's digits (train splits), digits resized to 28x28; classes 0-9 digits, 10-19 clothing.
The digit sets are repeated so each domain weighs about the same; light random shifts augment.
The weights file's metadata records the data, epochs, seed, validation accuracy per domain and
the commit, so every FID says what it was measured with.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset

from vision_kernels.data import embedded
from vision_kernels.metrics.features import SIZE, WEIGHTS, FeatureNet


def domain(split: str) -> dict[str, TensorDataset]:
    sets = {
        "fashion-mnist": embedded.fashion_mnist(split),
        "opencv-digits": embedded.opencv_digits(split, size=SIZE),
        "digits": embedded.digits(split, size=SIZE),
    }
    out = {}
    for name, data in sets.items():
        images, labels = data.tensors
        out[name] = TensorDataset(images, labels + (10 if name == "fashion-mnist" else 0))
    return out


def shift(images: torch.Tensor, pixels: int = 2) -> torch.Tensor:
    """Random translations of up to `pixels`, per image (zero fill)."""
    padded = F.pad(images, (pixels,) * 4)
    n = len(images)
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, n))
    rows = (dy[:, None] + torch.arange(SIZE)[None]).view(n, 1, SIZE, 1).expand(n, 1, SIZE, SIZE + 2 * pixels)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(SIZE)[None]).view(n, 1, 1, SIZE).expand(n, 1, SIZE, SIZE)
    return out.gather(3, cols)


@torch.no_grad()
def accuracy(net: FeatureNet, data: TensorDataset) -> float:
    images, labels = data.tensors
    return float((net(images).argmax(1) == labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    train, val = domain("train"), domain("val")
    fashion = len(train["fashion-mnist"])
    parts = [train["fashion-mnist"]]
    for name in ("opencv-digits", "digits"):  # repeat the small digit sets: each domain about equal
        parts += [train[name]] * max(1, fashion // 2 // len(train[name]))
    loader = DataLoader(ConcatDataset(parts), batch_size=128, shuffle=True, drop_last=True)
    net = FeatureNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=args.epochs * len(loader))
    started = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        for images, labels in loader:
            loss = F.cross_entropy(net(shift(images)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        net.eval()
        scores = {name: round(accuracy(net, data), 4) for name, data in val.items()}
        print(
            f"epoch {epoch + 1}: loss {loss.item():.3f} val accuracy {scores} ({time.perf_counter() - started:.0f} s)"
        )
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {
        "network": "FeatureNet (vision_kernels.metrics.features)",
        "data": "fashion-mnist train + opencv-digits train + digits train (28x28 grey); classes 0-9 digits, "
        "10-19 fashion-mnist",
        "epochs": args.epochs,
        "seed": args.seed,
        "val_accuracy": scores,
        "torch": torch.__version__,
        "commit": commit,
        "script": "tools/train_feature_net.py",
    }
    from safetensors.torch import save_file

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()},
        args.out,
        metadata={"vision_kernels": json.dumps(meta)},
    )
    print(f"wrote {args.out}: {json.dumps(meta)}")


if __name__ == "__main__":
    main()

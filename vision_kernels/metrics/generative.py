"""FID and KID in the offline feature space (vision_kernels.metrics.features).

FID (Heusel et al.): the Fréchet distance between Gaussians fitted to real and generated features,
|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)). KID (Bińkowski et al.): the unbiased MMD^2 with
the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets; unlike FID it is
unbiased in the sample count, so small evaluations can be compared. Both are reported with the
sample counts, and with the feature network's hash: values are comparable only with values computed
with the same weights (not with Inception-FID from papers).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from vision_kernels.metrics.base import reduces_across_ranks


def _sqrtm_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """The Fréchet distance of two Gaussians, in float64. Tr((S1 S2)^(1/2)) is computed as
    Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), a symmetric PSD matrix: no complex parts to discard."""
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    root1 = _sqrtm_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt)


def _check(real: Tensor, fake: Tensor, minimum: int, what: str) -> None:
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with the same D; got {tuple(real.shape)} and {tuple(fake.shape)}")
    if len(real) < minimum or len(fake) < minimum:
        raise ValueError(f"{what} needs at least {minimum} real and generated samples; got {len(real)} and {len(fake)}")


def fid_from_features(real: Tensor, fake: Tensor) -> float:
    _check(real, fake, 2, "FID")
    real, fake = real.double(), fake.double()
    return frechet_distance(real.mean(0), torch.cov(real.T), fake.mean(0), torch.cov(fake.T))


def kid_from_features(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """(mean, standard deviation) of the unbiased polynomial-kernel MMD^2 over `subsets` random
    subsets of min(subset_size, N) samples each (seeded: the same inputs give the same value)."""
    _check(real, fake, 2, "KID")
    real, fake = real.double(), fake.double()
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=g)[:m]]
        y = fake[torch.randperm(len(fake), generator=g)[:m]]
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        off_diagonal = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        values.append(float(off_diagonal - 2 * kxy.mean()))
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1))
    return mean, std


class GenerativeMetrics:
    """Accumulates features of real and generated images (per process; gathered across ranks in
    a distributed run) and computes FID and KID with the sample counts."""

    def __init__(self, device: str | torch.device = "cpu", kid_subsets: int = 100, kid_subset_size: int = 1000) -> None:
        from vision_kernels.metrics.features import load_feature_net

        self.net = load_feature_net(device)
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.real: list[Tensor] = []
        self.fake: list[Tensor] = []

    def update(self, images: Tensor, real: bool) -> None:
        from vision_kernels.metrics.features import extract_features

        (self.real if real else self.fake).append(extract_features(images, self.net).cpu())

    def _gathered(self) -> tuple[Tensor, Tensor]:
        import torch.distributed as dist

        real = torch.cat(self.real) if self.real else torch.zeros(0, 128, dtype=torch.float64)
        fake = torch.cat(self.fake) if self.fake else torch.zeros(0, 128, dtype=torch.float64)
        if reduces_across_ranks():
            parts: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(parts, (real, fake))
            real, fake = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        return real, fake

    def compute(self) -> dict[str, float]:
        """fid, kid, kid_std and the sample counts (floats: they go to metrics.jsonl)."""
        real, fake = self._gathered()
        kid, kid_std = kid_from_features(real, fake, self.kid_subsets, self.kid_subset_size)
        return {
            "fid": fid_from_features(real, fake),
            "kid": kid,
            "kid_std": kid_std,
            "real_samples": float(len(real)),
            "fake_samples": float(len(fake)),
        }

    @staticmethod
    def provenance() -> dict[str, Any]:
        """Which feature network (sha256 of its weights, what it was trained on) made the numbers."""
        from vision_kernels.metrics.features import weights_info

        return weights_info()

    def reset(self) -> None:
        self.real, self.fake = [], []

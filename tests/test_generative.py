"""FID and KID: the formulas against scipy / hand computation, and the shipped feature network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vision_kernels.metrics.features import FEATURES, FeatureNet, extract_features, load_feature_net, weights_info
from vision_kernels.metrics.generative import (
    GenerativeMetrics,
    fid_from_features,
    frechet_distance,
    kid_from_features,
)


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid's formula, with scipy's sqrtm."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_matches_scipy():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 16, generator=g, dtype=torch.float64)
    b = (
        torch.randn(300, 16, generator=g, dtype=torch.float64)
        @ torch.randn(16, 16, generator=g, dtype=torch.float64)
        * 0.5
        + 1
    )
    assert fid_from_features(a, b) == pytest.approx(scipy_fid(a.numpy(), b.numpy()), rel=1e-7)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_known_gaussians():
    # N(0, I) and N(m, 4I) in d dims: |m|^2 + d (1 + 4 - 2 * 2) = |m|^2 + d
    d = 5
    m = torch.full((d,), 3.0)
    assert frechet_distance(torch.zeros(d), torch.eye(d), m, 4 * torch.eye(d)) == pytest.approx(9 * d + d)


def test_kid_is_unbiased_and_seeded():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(500, 8, generator=g), torch.randn(500, 8, generator=g)
    same, spread = kid_from_features(a, b, subsets=50, subset_size=200)
    assert abs(same) < 2 * spread  # unbiased: about 0 for one distribution, either sign
    shifted, _ = kid_from_features(a, b + 1, subsets=50, subset_size=200)
    assert shifted > 100 * abs(same)
    assert kid_from_features(a, b + 1, subsets=5) == kid_from_features(a, b + 1, subsets=5)


def test_kid_against_a_direct_computation():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(30, 4, generator=g, dtype=torch.float64), torch.randn(30, 4, generator=g, dtype=torch.float64)
    k = lambda p, q: (p @ q.T / 4 + 1) ** 3  # noqa: E731
    m = 30
    direct = sum(k(x[i : i + 1], x[j : j + 1]).item() for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    direct += sum(k(y[i : i + 1], y[j : j + 1]).item() for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    direct -= 2 * k(x, y).mean().item()
    mean, std = kid_from_features(x, y, subsets=1, subset_size=30)
    assert mean == pytest.approx(direct, rel=1e-9) and std == 0.0


def test_bad_features():
    with pytest.raises(ValueError, match="features must be \\[N, D\\] with the same D"):
        fid_from_features(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="FID needs at least 2 real and generated samples; got 1 and 5"):
        fid_from_features(torch.zeros(1, 3), torch.zeros(5, 3))


def test_feature_net_is_shipped_and_documented():
    info = weights_info()
    assert len(info["sha256"]) == 64 and info["script"] == "tools/train_feature_net.py"
    accuracy = info["val_accuracy"]  # on real held-out images: the classifier the cgan evaluation relies on
    assert accuracy["digits"] > 0.95 and accuracy["opencv-digits"] > 0.95 and accuracy["fashion-mnist"] > 0.8, accuracy
    net = load_feature_net()
    assert isinstance(net, FeatureNet) and not net.training


def test_features_take_any_size_and_channels():
    net = load_feature_net()
    grey, rgb = torch.rand(3, 1, 20, 20), torch.rand(2, 3, 64, 48)
    assert extract_features(grey, net).shape == (3, FEATURES)
    assert extract_features(rgb, net).dtype == torch.float64
    with pytest.raises(ValueError, match=r"images must be \[N, 1 or 3, H, W\]"):
        extract_features(torch.rand(2, 4, 8, 8), net)


def test_real_digits_are_close_and_noise_is_far():
    from vision_kernels.data.embedded import digits

    train, val = digits("train", size=28).tensors[0], digits("val", size=28).tensors[0]
    metrics = GenerativeMetrics(kid_subsets=10, kid_subset_size=300)
    metrics.update(train, real=True)
    metrics.update(val, real=False)
    close = metrics.compute()
    metrics.reset()
    metrics.update(train, real=True)
    metrics.update(torch.rand(355, 1, 28, 28), real=False)
    far = metrics.compute()
    assert close["fid"] < far["fid"] / 10 and close["kid"] < far["kid"] / 10
    assert (close["real_samples"], close["fake_samples"]) == (1442.0, 355.0)
    assert GenerativeMetrics.provenance()["sha256"] == weights_info()["sha256"]

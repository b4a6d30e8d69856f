"""The latent space: the prior, seeds, interpolation and vector arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def sample_z(n: int, config: Any, device: Any, generator: torch.Generator | None = None) -> Tensor:
    """n draws of the prior (the global torch stream unless a generator is given)."""
    shape = (n, config.latent)
    if config.prior == "normal":
        return torch.randn(shape, generator=generator).to(device)
    return (torch.rand(shape, generator=generator) * 2 - 1).to(device)


def z_from_seeds(seeds: Sequence[int], config: Any, device: Any) -> Tensor:
    """One z per seed, each from its own generator: seed s always gives the same z, whatever else
    is drawn, so a grid's cell and an interpolation's end point from the same seed agree."""
    if not seeds:
        return torch.zeros(0, config.latent, device=device)
    return torch.cat([sample_z(1, config, device, torch.Generator().manual_seed(int(s))) for s in seeds])


def lerp(a: Tensor, b: Tensor, steps: int) -> Tensor:
    """steps points on the segment from a to b (both ends included)."""
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device)[:, None]
    return (1 - t) * a + t * b


def slerp(a: Tensor, b: Tensor, steps: int) -> Tensor:
    """steps points on the great circle from a to b (White 2016): under a Gaussian (or uniform)
    prior in high dimension, samples concentrate near a sphere, and the segment's midpoints have a
    norm the generator never saw in training; the arc keeps the norm. Falls back to lerp for
    (anti)parallel vectors, where the arc is undefined."""
    t = torch.linspace(0, 1, steps, dtype=torch.float64, device=a.device)[:, None]
    a64, b64 = a.double(), b.double()
    cos = (a64 @ b64) / (a64.norm() * b64.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if float(omega.sin().abs()) < 1e-6:
        return lerp(a, b, steps)
    out = (torch.sin((1 - t) * omega) * a64 + torch.sin(t * omega) * b64) / torch.sin(omega)
    return out.to(a.dtype)


def arithmetic(concepts: Sequence[Tensor], noise: float = 0.25, variants: int = 8) -> Tensor:
    """DCGAN's vector arithmetic: with m_i the mean z of concept i's samples, r = m_0 - m_1 + m_2;
    returns [r, r + u_1, ..., r + u_variants], u ~ U(-noise, noise) (the paper's Figure 7 adds
    noise of scale 0.25 to the result to show its neighbourhood)."""
    if len(concepts) != 3:
        raise ValueError(f"vector arithmetic takes three concepts (a - b + c), got {len(concepts)}")
    a, b, c = (concept.mean(0) for concept in concepts)
    result = a - b + c
    offsets = (torch.rand(variants, result.numel(), device=result.device) * 2 - 1) * noise
    return torch.cat([result[None], result[None] + offsets])

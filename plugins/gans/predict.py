"""Pictures of a trained generator: sample grids from fixed seeds, linear and spherical latent
interpolation, DCGAN's vector arithmetic, and for a conditional generator a grid per class.
Every z comes from a seed (latent.z_from_seeds), so the outputs are reproducible and the seeds
are reported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .evaluation import class_names, classifier_domain, domain_logits
from .latent import arithmetic, lerp, slerp, z_from_seeds
from .step import to_unit

ARITHMETIC_POOL = 512  # seeds searched for each class-named concept


def _grid(images: Tensor, nrow: int) -> Tensor:
    from vision_kernels.viz.grid import make_grid

    return make_grid(images.float().cpu(), nrow=nrow)[None]


def _render(generator: Any, z: Tensor, config: Any, labels: Tensor | None = None) -> Tensor:
    return to_unit(generator(z, labels), config)


def samples(ctx: Any) -> dict[str, Tensor]:
    """The progress pictures written during training: the same seeds every time."""
    config, generator = ctx.config, ctx.networks["generator"]
    num_classes = getattr(config, "num_classes", None)
    if num_classes:  # one row per class, the same z in every row
        per_class = config.predict.per_class
        z = z_from_seeds(range(per_class), config, ctx.device).repeat(num_classes, 1)
        labels = torch.arange(num_classes, device=ctx.device).repeat_interleave(per_class)
        return {"samples": _grid(_render(generator, z, config, labels), per_class)}
    return {"samples": _render(generator, z_from_seeds(range(64), config, ctx.device), config)}


def _interpolations(generator: Any, config: Any, device: Any) -> dict[str, Tensor]:
    a, b = z_from_seeds(config.predict.interpolate, config, device)
    steps = config.predict.steps
    num_classes = getattr(config, "num_classes", None)
    out = {}
    for name, path in (("linear", lerp(a, b, steps)), ("spherical", slerp(a, b, steps))):
        if num_classes:  # the same path through z, one row per class
            labels = torch.arange(num_classes, device=device).repeat_interleave(steps)
            out[f"interpolation-{name}"] = _grid(_render(generator, path.repeat(num_classes, 1), config, labels), steps)
        else:
            out[f"interpolation-{name}"] = _grid(_render(generator, path, config), steps)
    return out


def _concept_seeds(generator: Any, config: Any, device: Any) -> list[tuple[str, list[int]]]:
    """(name, seeds) of the three concepts of a - b + c."""
    concepts = config.predict.arithmetic
    k = config.predict.arithmetic_k
    named = [c for c in (concepts or []) if isinstance(c, str)]
    domain = classifier_domain(config)
    if concepts is None or named:
        if domain is None:
            raise ValueError(
                "vector arithmetic by class name needs the held-out classifier (data of digits or fashion-mnist, or "
                "config classifier=digits|fashion); give predict.arithmetic as three lists of seeds instead"
            )
        names = class_names(config)
        concepts = concepts or names[:3]
        unknown = [c for c in concepts if isinstance(c, str) and c not in names]
        if unknown:
            raise ValueError(f"predict.arithmetic: unknown class {unknown[0]!r}; the classes are {names}")
        from vision_kernels.metrics.features import load_feature_net

        net = load_feature_net(device)
        pool = torch.arange(ARITHMETIC_POOL)
        images = _render(generator, z_from_seeds(pool.tolist(), config, device), config)
        confidence = domain_logits(net, images, domain).softmax(1)
    out = []
    for concept in concepts:
        if isinstance(concept, str):
            best = confidence[:, names.index(concept)].topk(k).indices.cpu()
            out.append((concept, pool[best].tolist()))
        else:
            out.append(("seeds " + ",".join(map(str, concept)), [int(s) for s in concept]))
    if len(out) != 3:
        raise ValueError(f"predict.arithmetic takes three concepts (a - b + c), got {len(out)}")
    return out


def _arithmetic(generator: Any, config: Any, device: Any) -> tuple[Tensor, list[dict[str, Any]]]:
    """The paper's Figure 7 layout: a row per concept (its samples, then the image of their mean z),
    then the result of a - b + c and eight neighbours of it (uniform noise of scale 0.25)."""
    concepts = _concept_seeds(generator, config, device)
    zs = [z_from_seeds(seeds, config, device) for _, seeds in concepts]
    results = arithmetic(zs)
    width = max(max(len(z) for z in zs) + 1, len(results))
    blank = torch.ones(config.channels, config.image_size, config.image_size, device=device)
    rows = []
    for z in [*zs]:
        row = list(_render(generator, torch.cat([z, z.mean(0, keepdim=True)]), config))
        rows += row + [blank] * (width - len(row))
    row = list(_render(generator, results, config))
    rows += row + [blank] * (width - len(row))
    report = [{"concept": name, "seeds": seeds} for name, seeds in concepts]
    return _grid(torch.stack(rows), width), report


def predict(networks: Mapping[str, Any], inputs: Any, config: Any) -> dict[str, Any]:
    """Grids (one PNG each) and the seeds behind them (predictions.json). `inputs` is ignored:
    a generator needs none."""
    generator = networks["generator"]
    device = next(generator.parameters()).device
    p = config.predict
    num_classes = getattr(config, "num_classes", None)
    out: dict[str, Any] = {"seeds": list(range(p.seeds)), "interpolate": list(p.interpolate)}
    z = z_from_seeds(range(p.seeds), config, device)
    if num_classes:
        names = class_names(config)
        per_class_z = z_from_seeds(range(p.per_class), config, device)
        for c in range(num_classes):
            labels = torch.full((p.per_class,), c, device=device)
            name = names[c].replace("/", "-").replace(" ", "-")
            out[f"class-{c}-{name}"] = _grid(_render(generator, per_class_z, config, labels), p.per_class)
        labels = torch.arange(len(z), device=device) % num_classes
        out["samples"] = _grid(_render(generator, z, config, labels), num_classes)
    else:
        out["samples"] = _grid(_render(generator, z, config), int(len(z) ** 0.5 + 0.5))
        if p.arithmetic is not None or classifier_domain(config) is not None:
            out["arithmetic"], out["arithmetic_concepts"] = _arithmetic(generator, config, device)
    out.update(_interpolations(generator, config, device))
    return out

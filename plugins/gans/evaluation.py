"""What the adversarial families report: FID and KID in the toolkit's offline feature space, and
for a conditional generator the accuracy with which a held-out classifier (trained on real data
only, never on the GAN's output: vision_kernels.metrics.features) recognises the conditioned class."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .latent import sample_z
from .step import split_batch, to_model_range, to_unit

# The feature network's 20 classes: 0-9 digits, 10-19 Fashion-MNIST.
DOMAINS = {"digits": 0, "fashion": 10}
AUTO_DOMAIN = {"digits": "digits", "opencv-digits": "digits", "mnist-idx": "digits", "fashion-mnist": "fashion"}
GENERATE_BATCH = 500


def classifier_domain(config: Any) -> str | None:
    """The classifier domain of the run's data ("digits", "fashion") or None when it has none."""
    if config.classifier == "none":
        return None
    if config.classifier == "auto":
        return AUTO_DOMAIN.get(config.data.name or "")
    return config.classifier


def class_names(config: Any) -> list[str]:
    from vision_kernels.data.embedded import DIGIT_CLASSES, FASHION_CLASSES

    domain = classifier_domain(config)
    if domain == "digits":
        return list(DIGIT_CLASSES)
    if domain == "fashion":
        return list(FASHION_CLASSES)
    return [str(i) for i in range(getattr(config, "num_classes", None) or 0)]


def domain_logits(net: Any, images: Tensor, domain: str) -> Tensor:
    """The held-out classifier's logits over the domain's 10 classes."""
    offset = DOMAINS[domain]
    return net(images)[:, offset : offset + 10]


@torch.no_grad()
def generate(generator: Any, n: int, config: Any, device: Any, labels: Tensor | None = None) -> Tensor:
    """n samples in [0, 1] from the prior (the current torch stream), in batches."""
    out = []
    for start in range(0, n, GENERATE_BATCH):
        count = min(GENERATE_BATCH, n - start)
        z = sample_z(count, config, device)
        condition = None if labels is None else labels[start : start + count].to(device)
        out.append(to_unit(generator(z, condition), config).float())
    return torch.cat(out) if out else torch.zeros(0, config.channels, config.image_size, config.image_size)


def evaluate(ctx: Any) -> dict[str, float]:
    """fid, kid, kid_std, the sample counts, and class_accuracy for a conditional generator."""
    from vision_kernels.metrics.generative import GenerativeMetrics

    config = ctx.config
    real, collected = [], 0
    for batch in ctx.batches():
        images, _ = split_batch(batch)
        real.append(to_unit(to_model_range(images, config), config))
        collected += len(images)
        if collected >= config.eval_samples:
            break
    real_images = torch.cat(real)[: config.eval_samples]
    n = len(real_images)
    labels = None
    num_classes = getattr(config, "num_classes", None)
    if num_classes:  # balanced: every class equally often
        labels = torch.arange(n, device=ctx.device) % num_classes
    fake = generate(ctx.networks["generator"], n, config, ctx.device, labels)
    # KID's subsets must be smaller than the sample for its spread to mean anything.
    metrics = GenerativeMetrics(ctx.device, kid_subset_size=min(1000, max(2, n // 2)))
    metrics.update(real_images, real=True)
    metrics.update(fake, real=False)
    result = metrics.compute()
    domain = classifier_domain(config)
    if num_classes and domain is not None:
        predicted = domain_logits(metrics.net, fake, domain).argmax(1)
        result["class_accuracy"] = float((predicted == labels).float().mean())
    return result

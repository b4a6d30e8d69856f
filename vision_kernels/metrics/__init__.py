"""Evaluation metrics for the lecture's tasks, safe under data-parallel evaluation.

Each metric accumulates sufficient statistics per process with `update(...)` and reduces them
across ranks on `compute()` (sums all-reduced, per-image lists gathered; see
vision_kernels.metrics.base), so a distributed evaluation gives the single-process numbers.
`compute()` returns a dict of floats; `reset()` starts over.

- classification.Accuracy: top-1 / top-k accuracy (the class head of localization).
- boxes.BoxIoU: mean IoU of aligned box pairs and the fraction with IoU >= 0.5 (the box head),
  through the project's box_iou kernel.
- detection.MeanAveragePrecision: COCO mAP@[.5:.95], mAP@.5, mAP@.75 and AR@1/10/100, equal to
  pycocotools' COCOeval (bbox), computed from tensors without COCO json files.
- segmentation.ConfusionMatrix / SegmentationMetrics: pixel accuracy, per-class accuracy, IoU and
  Dice, mIoU and mean Dice (macro over present classes, or micro), with an ignore index.
- generative.GenerativeMetrics: FID and KID of generated images, in the feature space of an
  offline network shipped with the package (vision_kernels.metrics.features); comparable only
  with values computed with the same network, not with Inception-FID from papers.

Importing this package is cheap: the classes (and torch) load on first attribute access, so the
`vk` command line can import it without paying for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vision_kernels.metrics.base import Metric
    from vision_kernels.metrics.boxes import BoxIoU
    from vision_kernels.metrics.classification import Accuracy
    from vision_kernels.metrics.detection import MeanAveragePrecision
    from vision_kernels.metrics.generative import GenerativeMetrics
    from vision_kernels.metrics.segmentation import ConfusionMatrix, SegmentationMetrics

_EXPORTS = {
    "Metric": "base",
    "Accuracy": "classification",
    "BoxIoU": "boxes",
    "MeanAveragePrecision": "detection",
    "ConfusionMatrix": "segmentation",
    "SegmentationMetrics": "segmentation",
    "GenerativeMetrics": "generative",
    "lower_is_better": "direction",
    "local_only": "base",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "Accuracy",
    "BoxIoU",
    "ConfusionMatrix",
    "GenerativeMetrics",
    "MeanAveragePrecision",
    "Metric",
    "SegmentationMetrics",
    "local_only",
    "lower_is_better",
]

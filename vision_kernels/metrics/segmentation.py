"""Semantic-segmentation metrics from one accumulated confusion matrix.

Everything (pixel accuracy, per-class accuracy, IoU, Dice) is a function of the C x C confusion
matrix, which is a sum over pixels: accumulating it per rank and summing across ranks gives exactly
the single-process answer. Per class c, with TP, FP, FN counted over all pixels seen:

    accuracy_c = TP / (TP + FN)          (recall; NaN when c never occurs in the target)
    IoU_c      = TP / (TP + FP + FN)     (in [0, 1] by construction)
    Dice_c     = 2 TP / (2 TP + FP + FN) (= 2 IoU / (1 + IoU) >= IoU)

IoU and Dice are NaN for a class that occurs in neither target nor prediction: such a class says
nothing about the model, and scoring it 0 or 1 would move the mean with the class list.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vision_kernels.metrics.base import DtypeError, Metric, State, check_integer, check_tensor, is_integer

REDUCTIONS = ("macro", "micro")


class ConfusionMatrix(Metric):
    """A [C, C] confusion matrix (rows: target class, columns: predicted class), accumulated with
    torch.bincount over every pixel (or sample) seen.

    update(preds, target): target holds class indices (any shape); preds holds either class
    indices of target's shape, or scores [N, C, ...] (target [N, ...]) that are arg-maxed over
    dim 1. Elements whose target equals `ignore_index` are left out. A target value outside
    [0, num_classes) other than `ignore_index`, or a predicted index outside it, is a ValueError.

    compute() -> {"confusion_matrix": int64 tensor [C, C]}.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
            raise ValueError(f"ignore_index must be an int or None, got {ignore_index!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state("confmat", torch.zeros(num_classes, num_classes, dtype=torch.int64))

    def _labels(self, preds: Tensor, target: Tensor) -> Tensor:
        """preds as class indices of target's shape."""
        if preds.shape == target.shape:
            if not is_integer(preds):
                raise DtypeError(
                    f"preds of the target's shape {list(target.shape)} must be integer class indices, "
                    f"got {preds.dtype}; pass scores as [N, C, ...] with C = {self.num_classes}"
                )
            return preds
        expected = [*target.shape[:1], self.num_classes, *target.shape[1:]]
        if list(preds.shape) != expected:
            raise ValueError(
                f"preds must be class indices of the target's shape {list(target.shape)} or scores of shape "
                f"{expected} ([N, C, ...] with C = num_classes = {self.num_classes}), got {list(preds.shape)}"
            )
        if not preds.dtype.is_floating_point:
            raise DtypeError(f"preds of shape [N, C, ...] must be floating-point scores, got {preds.dtype}")
        return preds.argmax(dim=1)

    def update(self, preds: Tensor, target: Tensor) -> None:
        check_tensor(preds, "preds")
        check_tensor(target, "target")
        check_integer(target, "target")
        if target.dim() == 0:
            raise ValueError("target must have at least one dimension ([N, H, W] for segmentation), got a scalar")
        if preds.device != target.device:
            raise ValueError(f"preds and target must be on the same device, got {preds.device} and {target.device}")
        with torch.no_grad():
            labels = self._labels(preds.detach(), target).reshape(-1).long()
            target = target.reshape(-1).long()
            c = self.num_classes
            if self.ignore_index is not None:
                keep = target != self.ignore_index
                labels, target = labels[keep], target[keep]
            bad = (target < 0) | (target >= c)
            if bad.any():
                values = target[bad].unique()[:5].tolist()
                allowed = f"class indices in [0, {c})"
                if self.ignore_index is not None:
                    allowed += f" or ignore_index = {self.ignore_index}"
                raise ValueError(f"target values must be {allowed}; got {values}")
            bad = (labels < 0) | (labels >= c)
            if bad.any():
                values = labels[bad].unique()[:5].tolist()
                raise ValueError(f"predicted class indices must be in [0, {c}), got {values}")
            counts = torch.bincount(target * c + labels, minlength=c * c).reshape(c, c)
            self._add("confmat", counts)

    def _compute(self, state: State) -> dict[str, Tensor]:
        return {"confusion_matrix": state["confmat"].clone()}


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """num / den in float64, NaN where den == 0."""
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), torch.nan)


class SegmentationMetrics(ConfusionMatrix):
    """Pixel accuracy, per-class accuracy (recall), IoU and Dice, and their means.

    Args:
        num_classes: C; predictions are [N, H, W] class indices or [N, C, H, W] scores.
        ignore_index: target pixels with this value are left out (255: the usual "void" label).
            If it is a class index (e.g. 0 for the background), that class is not scored either:
            its per-class values are NaN and it is left out of the means.
        class_names: names for the per-class keys ("iou/road"); default "iou/0", "iou/1", ...
        reduction: how the means are taken.
            "macro": the mean over classes of the per-class values, over the classes present in
            the target or in the prediction (the others are NaN and excluded; mean accuracy is
            over the classes present in the target, the only ones where recall is defined);
            "micro": from TP, FP, FN summed over classes first (for single-label pixels the micro
            accuracy equals the pixel accuracy, and micro IoU = acc / (2 - acc)).

    compute() -> {"pixel_accuracy", "mean_accuracy", "miou", "mean_dice", "accuracy/<c>",
    "iou/<c>", "dice/<c>"} as floats (NaN where undefined, e.g. before any update);
    per_class() gives the per-class values as float64 tensors [C].
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = 255,
        class_names: Sequence[str] | None = None,
        reduction: str = "macro",
    ) -> None:
        super().__init__(num_classes, ignore_index)
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"class_names must have num_classes = {num_classes} names, got {len(class_names)}: {list(class_names)}"
            )
        self.reduction = reduction
        self.class_names = (
            [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(num_classes)]
        )

    def _counts(self, confmat: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """TP, FP, FN per class (float64) and the mask of the classes that are scored."""
        confmat = confmat.double()
        tp = confmat.diagonal()
        fp = confmat.sum(0) - tp
        fn = confmat.sum(1) - tp
        scored = tp + fp + fn > 0
        if self.ignore_index is not None and 0 <= self.ignore_index < self.num_classes:
            scored[self.ignore_index] = False
        return tp, fp, fn, scored

    def _per_class(self, confmat: Tensor) -> dict[str, Tensor]:
        tp, fp, fn, scored = self._counts(confmat)
        nan = torch.full_like(tp, torch.nan)
        return {
            "accuracy": torch.where(scored, _ratio(tp, tp + fn), nan),
            "iou": torch.where(scored, _ratio(tp, tp + fp + fn), nan),
            "dice": torch.where(scored, _ratio(2 * tp, 2 * tp + fp + fn), nan),
        }

    def per_class(self, group: object = None) -> dict[str, Tensor]:
        """{"accuracy", "iou", "dice"}: float64 tensors [C] over all ranks (a collective, like compute)."""
        return self._per_class(self.sync(group)["confmat"])

    def _compute(self, state: State) -> dict[str, float]:
        confmat = state["confmat"]
        correct, total = int(confmat.diagonal().sum()), int(confmat.sum())
        out = {"pixel_accuracy": correct / total if total else float("nan")}
        per_class = self._per_class(confmat)
        if self.reduction == "macro":
            out["mean_accuracy"] = float(per_class["accuracy"].nanmean())
            out["miou"] = float(per_class["iou"].nanmean())
            out["mean_dice"] = float(per_class["dice"].nanmean())
        else:
            tp, fp, fn, scored = self._counts(confmat)
            tp, fp, fn = tp[scored].sum(), fp[scored].sum(), fn[scored].sum()
            out["mean_accuracy"] = float(_ratio(tp, tp + fn))
            out["miou"] = float(_ratio(tp, tp + fp + fn))
            out["mean_dice"] = float(_ratio(2 * tp, 2 * tp + fp + fn))
        for key, values in per_class.items():
            for name, value in zip(self.class_names, values.tolist(), strict=True):
                out[f"{key}/{name}"] = value
        return out

"""IoU of predicted boxes with their targets, one box per sample (the localization family)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vision_kernels.metrics.base import Metric, State, check_floating, check_tensor


def _threshold_key(threshold: float) -> str:
    return f"iou@{threshold:g}"


class BoxIoU(Metric):
    """Mean IoU of aligned (prediction i with target i) xyxy boxes, and the fraction of
    predictions whose IoU reaches each threshold ("iou@0.5": the localization accuracy of the
    lecture, a box counting as correct at IoU >= 0.5).

    IoU comes from the project's kernel, vision_kernels.ops.box_iou(aligned=True), computed in
    float64 here so that sums over large evaluation sets do not drift. Degenerate boxes give IoU 0
    (the kernel's convention), never NaN.

    Keys: "mean_iou", "iou@{t}" per threshold, "count" (boxes seen). NaN values with no boxes.
    """

    def __init__(self, thresholds: float | Sequence[float] = (0.5,)) -> None:
        super().__init__()
        ts = (thresholds,) if isinstance(thresholds, (int, float)) else tuple(thresholds)
        if any(isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1 for t in ts):
            raise ValueError(f"thresholds must be numbers in [0, 1], got {thresholds!r}")
        self.thresholds: tuple[float, ...] = tuple(sorted({float(t) for t in ts}))
        self.add_state("iou_sum", torch.zeros((), dtype=torch.float64))
        self.add_state("hits", torch.zeros(len(self.thresholds), dtype=torch.int64))
        self.add_state("count", torch.zeros((), dtype=torch.int64))

    def update(self, pred_boxes: Tensor, true_boxes: Tensor) -> None:
        """pred_boxes, true_boxes: [N, 4] (x1, y1, x2, y2) floating-point, same device."""
        from vision_kernels.ops import box_iou

        for t, name in ((pred_boxes, "pred_boxes"), (true_boxes, "true_boxes")):
            check_tensor(t, name)
            check_floating(t, name, "(x1, y1, x2, y2) boxes")
            if t.dim() != 2 or t.shape[1] != 4:
                raise ValueError(f"{name} must have shape [N, 4] (x1, y1, x2, y2), got {list(t.shape)}")
        if pred_boxes.shape != true_boxes.shape:
            raise ValueError(
                f"pred_boxes and true_boxes must have the same shape [N, 4], "
                f"got {list(pred_boxes.shape)} and {list(true_boxes.shape)}"
            )
        if pred_boxes.device != true_boxes.device:
            raise ValueError(
                f"pred_boxes and true_boxes must be on the same device, got {pred_boxes.device} and {true_boxes.device}"
            )
        with torch.no_grad():
            iou = box_iou(pred_boxes.detach().double(), true_boxes.detach().double(), aligned=True)
            thresholds = torch.tensor(self.thresholds, dtype=torch.float64, device=iou.device)
            self._add("iou_sum", iou.sum())
            self._add("hits", (iou[None, :] >= thresholds[:, None]).sum(1))
            self._add("count", torch.tensor(iou.shape[0], device=iou.device))

    def _compute(self, state: State) -> dict[str, float]:
        count = int(state["count"])
        nan = float("nan")
        out = {"mean_iou": float(state["iou_sum"]) / count if count else nan}
        for t, hits in zip(self.thresholds, state["hits"].tolist(), strict=True):
            out[_threshold_key(t)] = hits / count if count else nan
        out["count"] = float(count)
        return out

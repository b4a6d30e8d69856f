"""Top-k classification accuracy (the class head of the localization family)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vision_kernels.metrics.base import Metric, State, check_floating, check_integer, check_tensor


class Accuracy(Metric):
    """Top-k accuracy over every sample seen: {"accuracy": top-1, "top5": ..., "count": N}.

    A sample counts as correct at k when fewer than k classes score strictly higher than its
    label. That is torch.topk's answer whenever scores are distinct, and with ties it does not
    depend on how topk happens to order equal scores (ties go in the sample's favour).
    A k of C or more (C classes) is always correct: it is kept under its own name ("top5" with 3
    classes is 1.0) rather than rejected, so one config serves datasets of any class count.
    A sample whose label scores NaN is counted as wrong.

    Keys: "accuracy" for k = 1, "top{k}" for the others, and "count" (samples seen). With no
    samples the accuracies are NaN.
    """

    def __init__(self, topk: int | Sequence[int] = (1, 5)) -> None:
        super().__init__()
        ks = (topk,) if isinstance(topk, int) else tuple(topk)
        if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
            raise ValueError(f"topk must be a positive int or a non-empty sequence of them, got {topk!r}")
        self.topk: tuple[int, ...] = tuple(sorted(set(ks)))
        self.add_state("correct", torch.zeros(len(self.topk), dtype=torch.int64))
        self.add_state("count", torch.zeros((), dtype=torch.int64))

    def update(self, logits: Tensor, labels: Tensor) -> None:
        """logits: [N, C] scores (logits or probabilities); labels: [N] class indices in [0, C)."""
        check_tensor(logits, "logits")
        check_tensor(labels, "labels")
        check_floating(logits, "logits", "class scores")
        check_integer(labels, "labels")
        if logits.dim() != 2:
            raise ValueError(f"logits must have shape [N, C], got {list(logits.shape)}")
        if labels.shape != logits.shape[:1]:
            raise ValueError(
                f"labels must have shape [N] with N = logits.shape[0] = {logits.shape[0]}, got {list(labels.shape)}"
            )
        if labels.device != logits.device:
            raise ValueError(f"labels and logits must be on the same device, got {labels.device} and {logits.device}")
        num_classes = logits.shape[1]
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            bad = labels[(labels < 0) | (labels >= num_classes)].unique()[:5].tolist()
            raise ValueError(f"labels must be in [0, {num_classes}) (logits has {num_classes} classes), got {bad}")
        with torch.no_grad():
            label_score = logits.gather(1, labels[:, None].long())
            rank = (logits > label_score).sum(1)  # classes scoring strictly higher than the label
            rank = torch.where(label_score[:, 0].isnan(), num_classes, rank)
            ks = torch.tensor(self.topk, device=logits.device)
            self._add("correct", (rank[None, :] < ks[:, None]).sum(1))
            self._add("count", torch.tensor(labels.shape[0], device=logits.device))

    def _compute(self, state: State) -> dict[str, float]:
        count = int(state["count"])
        out: dict[str, float] = {}
        for k, correct in zip(self.topk, state["correct"].tolist(), strict=True):
            out["accuracy" if k == 1 else f"top{k}"] = correct / count if count else float("nan")
        out["count"] = float(count)
        return out

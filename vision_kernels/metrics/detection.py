"""COCO-style mean average precision for boxes, equal to pycocotools' COCOeval (iouType "bbox").

Why reimplement COCOeval: the detection family evaluates inside training (per rank, on tensors,
without building COCO json files), and the numbers must still be the ones papers report. So this
module follows COCOeval step by step, including the details that move the numbers:

- per image and category, detections sorted by score with a stable sort (numpy mergesort) and cut
  to the 100 best; ground truths sorted with the ignored ones (crowd) last;
- greedy matching per IoU threshold in score order: a detection takes the unmatched ground truth
  with the highest IoU >= threshold (the last one among equal IoUs, as COCOeval's `>=` update
  does), preferring regular ground truths to ignored ones; a crowd region can absorb any number
  of detections, its overlap is intersection / area(detection), and a detection matched to it is
  ignored (neither true nor false positive);
- unmatched detections whose area is outside the area range are ignored (for the range "all",
  [0, 1e10], only inverted or enormous boxes);
- per category, detections of all images merged by score (stable, images in update order), the
  precision envelope made monotone, and read at the 101 recall points 0:0.01:1 (np.searchsorted,
  0 past the highest recall reached);
- a category without any non-ignored ground truth scores -1 ("absent") and is left out of the
  means, whether or not it has detections; the means are np.mean over the entries > -1, and -1
  when there are none (COCOeval's value).

The thresholds are COCOeval's own floats (np.linspace(.5, .95, 10)), since a match is decided by
`iou >= threshold`. IoU comes from the project's box_iou kernel in float64; pycocotools computes
it from (x, y, w, h), so both agree to the last bit whenever x1 + (x2 - x1) == x2 (e.g. integer or
dyadic coordinates) and to rounding otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vision_kernels.metrics.base import DtypeError, Metric, State, check_floating, check_integer, check_tensor

# COCOeval.Params.setDetParams, with the same float values.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETECTIONS = (1, 10, 100)
AREA_RANGE = (0.0**2, 1e5**2)  # "all"
_ABSENT = -1.0


@dataclass
class _ImageEval:
    """COCOeval.evaluateImg's result for one image and category."""

    scores: np.ndarray  # [D] detection scores, highest first
    matched: np.ndarray  # [T, D] bool: matched to a ground truth at threshold t
    ignored: np.ndarray  # [T, D] bool: neither a true nor a false positive
    num_gt: int  # ground truths that are not ignored


def _last_best(iou: np.ndarray, candidate: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Per threshold row, the index in [start, stop) of the candidate with the highest IoU (the
    last of equal ones), or -1 when there is none."""
    if start == stop:
        return np.full(candidate.shape[0], -1)
    cand = candidate[:, start:stop]
    values = np.where(cand, iou[start:stop], -np.inf)
    last = stop - 1 - np.argmax(values[:, ::-1], axis=1)
    return np.where(cand.any(axis=1), last, -1)


def _match(ious: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of score-sorted detections (rows of `ious`) to ground truths sorted with the
    ignored ones last, at every IoU threshold at once. Returns (matched, ignored), both [T, D]."""
    num_det, num_gt = ious.shape
    num_thr = len(IOU_THRESHOLDS)
    matched = np.zeros((num_thr, num_det), dtype=bool)
    ignored = np.zeros((num_thr, num_det), dtype=bool)
    if num_det == 0 or num_gt == 0:
        return matched, ignored
    taken = np.zeros((num_thr, num_gt), dtype=bool)
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[:, None]
    num_regular = num_gt - int(gt_ignore.sum())
    rows = np.arange(num_thr)
    for d in range(num_det):
        iou = ious[d]
        candidate = (~taken | gt_crowd) & (iou >= thresholds)
        best = _last_best(iou, candidate, 0, num_regular)
        best = np.where(best >= 0, best, _last_best(iou, candidate, num_regular, num_gt))
        hit = best >= 0
        matched[hit, d] = True
        ignored[hit, d] = gt_ignore[best[hit]]
        taken[rows[hit], best[hit]] = True
    return matched, ignored


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _outside_area_range(area: np.ndarray) -> np.ndarray:
    return (area < AREA_RANGE[0]) | (area > AREA_RANGE[1])


def _evaluate_image(pred: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> dict[int, _ImageEval]:
    """COCOeval.computeIoU + evaluateImg for every category present in one image."""
    from vision_kernels.ops import box_iou

    det_boxes, gt_boxes = pred["boxes"], target["boxes"]
    det_scores = pred["scores"].numpy()
    det_labels, gt_labels = pred["labels"].numpy(), target["labels"].numpy()
    gt_crowd = target["iscrowd"].numpy()
    det_out = _outside_area_range(_area(det_boxes.numpy()))
    gt_ignore = gt_crowd | _outside_area_range(_area(gt_boxes.numpy()))
    if len(det_boxes) and len(gt_boxes):
        ious = box_iou(det_boxes, gt_boxes).numpy()
        if gt_crowd.any():  # a crowd region's overlap: intersection over the detection's area
            ious[:, gt_crowd] = box_iou(det_boxes, gt_boxes[torch.from_numpy(gt_crowd)], mode="iof").numpy()
    else:
        ious = np.zeros((len(det_boxes), len(gt_boxes)))

    out = {}
    for category in np.unique(np.concatenate([det_labels, gt_labels])).tolist():
        det = np.flatnonzero(det_labels == category)
        det = det[np.argsort(-det_scores[det], kind="mergesort")][: MAX_DETECTIONS[-1]]
        gt = np.flatnonzero(gt_labels == category)
        gt = gt[np.argsort(gt_ignore[gt], kind="mergesort")]
        matched, ignored = _match(ious[np.ix_(det, gt)], gt_ignore[gt], gt_crowd[gt])
        ignored |= ~matched & det_out[det][None, :]
        out[category] = _ImageEval(det_scores[det], matched, ignored, int((~gt_ignore[gt]).sum()))
    return out


def _accumulate(evals: Sequence[_ImageEval], max_det: int) -> tuple[np.ndarray, np.ndarray] | None:
    """COCOeval.accumulate for one category: (precision [T, R], recall [T]), or None when the
    category has no ground truth that is not ignored."""
    num_gt = sum(e.num_gt for e in evals)
    if num_gt == 0:
        return None
    scores = np.concatenate([e.scores[:max_det] for e in evals])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([e.matched[:, :max_det] for e in evals], axis=1)[:, order]
    ignored = np.concatenate([e.ignored[:, :max_det] for e in evals], axis=1)[:, order]
    tp = np.cumsum(matched & ~ignored, axis=1).astype(float)
    fp = np.cumsum(~matched & ~ignored, axis=1).astype(float)
    num_thr, num_det = tp.shape
    precision = np.zeros((num_thr, len(RECALL_THRESHOLDS)))
    if num_det == 0:
        return precision, np.zeros(num_thr)
    recall = tp / num_gt
    envelope = np.maximum.accumulate((tp / (fp + tp + np.spacing(1)))[:, ::-1], axis=1)[:, ::-1]
    for t in range(num_thr):
        index = np.searchsorted(recall[t], RECALL_THRESHOLDS, side="left")
        reached = index < num_det
        precision[t, reached] = envelope[t, index[reached]]
    return precision, recall[:, -1].copy()


def _mean_present(values: np.ndarray) -> float:
    present = values[values > -1]
    return float(np.mean(present)) if len(present) else _ABSENT


def _check_image(item: object, where: str, fields: tuple[str, ...]) -> dict[str, Tensor]:
    if not isinstance(item, Mapping):
        raise TypeError(f"{where} must be a dict of tensors with keys {sorted(fields)}, got {type(item).__name__}")
    missing = [k for k in fields if k not in item and k != "iscrowd"]
    if missing:
        raise ValueError(f"{where} lacks {missing}; expected keys {sorted(fields)}, got {sorted(item)}")
    boxes = check_tensor(item["boxes"], f"{where}['boxes']")
    check_floating(boxes, f"{where}['boxes']", "(x1, y1, x2, y2) boxes")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where}['boxes'] must have shape [N, 4] (x1, y1, x2, y2), got {list(boxes.shape)}")
    n = boxes.shape[0]
    out = {"boxes": boxes.detach().to("cpu", torch.float64)}
    for key in fields:
        if key == "boxes" or key not in item:
            continue
        value = check_tensor(item[key], f"{where}[{key!r}]")
        if value.shape != (n,):
            raise ValueError(f"{where}[{key!r}] must have shape [N] with N = {n} boxes, got {list(value.shape)}")
        if key == "scores":
            check_floating(value, f"{where}['scores']", "detection scores")
            out[key] = value.detach().to("cpu", torch.float64)
        elif key == "labels":
            check_integer(value, f"{where}['labels']", "category ids")
            out[key] = value.detach().to("cpu", torch.int64)
        else:  # iscrowd: bool or 0/1
            if value.dtype.is_floating_point or value.dtype.is_complex:
                raise DtypeError(f"{where}['iscrowd'] must be a bool or integer 0/1 tensor, got {value.dtype}")
            out[key] = value.detach().to("cpu") != 0
    out.setdefault("iscrowd", torch.zeros(n, dtype=torch.bool))
    return out


_PRED_FIELDS = ("boxes", "scores", "labels")
_TARGET_FIELDS = ("boxes", "labels", "iscrowd")  # iscrowd optional


class MeanAveragePrecision(Metric):
    """COCO box mAP: {"map" (AP@[.5:.95]), "map_50", "map_75", "mar_1", "mar_10", "mar_100"},
    equal to COCOeval's stats[0, 1, 2, 6, 7, 8] on the same boxes (area range "all"; a ground
    truth's area is its box area).

    update(preds, targets) takes one dict per image:
        preds[i]:   "boxes" [N, 4] float (x1, y1, x2, y2), "scores" [N] float, "labels" [N] int
        targets[i]: "boxes" [M, 4] float, "labels" [M] int, optionally "iscrowd" [M] bool/0-1
    Images with no detections or no ground truth are fine (N or M = 0) and count.

    With `class_metrics=True`, also "ap/<label>" (AP@[.5:.95]) per category seen. Values are -1
    where COCOeval's are: a category, or a whole evaluation, without ground truth.

    The state is the list of images (on CPU), gathered across ranks in rank order on compute: the
    result equals a single process given rank 0's images, then rank 1's, and so on.
    """

    def __init__(self, class_metrics: bool = False) -> None:
        super().__init__()
        self.class_metrics = class_metrics
        self.add_state("images", [])

    def update(self, preds: Sequence[Mapping[str, Tensor]], targets: Sequence[Mapping[str, Tensor]]) -> None:
        for arg, name in ((preds, "preds"), (targets, "targets")):
            if isinstance(arg, Mapping) or not isinstance(arg, Sequence):
                raise TypeError(f"{name} must be a list with one dict per image, got {type(arg).__name__}")
        if len(preds) != len(targets):
            raise ValueError(
                f"preds and targets must have one dict per image each, got {len(preds)} and {len(targets)}"
            )
        images = [
            (_check_image(p, f"preds[{i}]", _PRED_FIELDS), _check_image(t, f"targets[{i}]", _TARGET_FIELDS))
            for i, (p, t) in enumerate(zip(preds, targets, strict=True))
        ]
        for image in images:
            self._append("images", image)

    def _compute(self, state: State) -> dict[str, float]:
        per_category: dict[int, list[_ImageEval]] = defaultdict(list)
        for pred, target in state["images"]:  # image order matters for ties between scores
            for category, evaluation in _evaluate_image(pred, target).items():
                per_category[category].append(evaluation)
        categories = sorted(per_category)
        num_thr, num_rec = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
        precision = np.full((num_thr, num_rec, len(categories)), _ABSENT)
        recall = {m: np.full((num_thr, len(categories)), _ABSENT) for m in MAX_DETECTIONS}
        for k, category in enumerate(categories):
            for max_det in MAX_DETECTIONS:
                result = _accumulate(per_category[category], max_det)
                if result is None:
                    continue
                recall[max_det][:, k] = result[1]
                if max_det == MAX_DETECTIONS[-1]:
                    precision[:, :, k] = result[0]
        out = {
            "map": _mean_present(precision),
            "map_50": _mean_present(precision[np.flatnonzero(IOU_THRESHOLDS == 0.5)]),
            "map_75": _mean_present(precision[np.flatnonzero(IOU_THRESHOLDS == 0.75)]),
        }
        for max_det in MAX_DETECTIONS:
            out[f"mar_{max_det}"] = _mean_present(recall[max_det])
        if self.class_metrics:
            for k, category in enumerate(categories):
                out[f"ap/{category}"] = _mean_present(precision[:, :, k])
        return out

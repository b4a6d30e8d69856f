"""vision_kernels.metrics against reference libraries: torchmetrics (accuracy, IoU/Jaccard, F1 =
Dice, recall, confusion matrix), torchvision (box IoU) and pycocotools' COCOeval (mAP, which must
be equal, not close). Plus hand-computed cases, properties (hypothesis) and a 2-process gloo run
whose result must equal the single-process one."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vision_kernels.metrics import (
    Accuracy,
    BoxIoU,
    ConfusionMatrix,
    MeanAveragePrecision,
    SegmentationMetrics,
)

COCO_KEYS = {"map": 0, "map_50": 1, "map_75": 2, "mar_1": 6, "mar_10": 7, "mar_100": 8}


def assert_same(a: dict, b: dict, rel: float = 0.0) -> None:
    """Equal dicts of floats, NaN equal to NaN; `rel` allows float summation-order differences."""
    assert a.keys() == b.keys()
    for key in a:
        x, y = float(a[key]), float(b[key])
        if math.isnan(x) or math.isnan(y):
            assert math.isnan(x) and math.isnan(y), (key, x, y)
        else:
            assert x == pytest.approx(y, rel=rel, abs=0), (key, x, y)


# -- classification -----------------------------------------------------------------------------------


def test_accuracy_matches_torchmetrics_top_k():
    from torchmetrics.classification import MulticlassAccuracy

    g = torch.Generator().manual_seed(0)
    num_classes = 10
    metric = Accuracy(topk=(1, 3, 5))
    logits, labels = [], []
    for n in (7, 64, 0, 33):
        logits.append(torch.randn(n, num_classes, generator=g))
        labels.append(torch.randint(0, num_classes, (n,), generator=g))
        metric.update(logits[-1], labels[-1])
    result = metric.compute()
    all_logits, all_labels = torch.cat(logits), torch.cat(labels)
    for k, key in ((1, "accuracy"), (3, "top3"), (5, "top5")):
        expected = MulticlassAccuracy(num_classes, top_k=k, average="micro")(all_logits, all_labels)
        assert result[key] == pytest.approx(float(expected), abs=1e-6)
    assert result["count"] == 104


def test_accuracy_k_larger_than_classes_is_always_right():
    metric = Accuracy(topk=(1, 5))
    metric.update(torch.tensor([[0.1, 0.7, 0.2], [2.0, 1.0, 0.0]]), torch.tensor([0, 0]))
    assert metric.compute() == {"accuracy": 0.5, "top5": 1.0, "count": 2.0}


def test_accuracy_ties_do_not_depend_on_topk_order_and_reset_works():
    metric = Accuracy(topk=1)
    metric.update(torch.zeros(4, 3), torch.tensor([0, 1, 2, 1]))  # all tied: every label is "top-1"
    assert metric.compute()["accuracy"] == 1.0
    metric.reset()
    assert math.isnan(metric.compute()["accuracy"])
    assert metric.compute()["count"] == 0


@pytest.mark.parametrize(
    "logits, labels, match",
    [
        (torch.zeros(4), torch.zeros(4, dtype=torch.long), r"logits must have shape \[N, C\], got \[4\]"),
        (torch.zeros(4, 3), torch.zeros(5, dtype=torch.long), r"labels must have shape \[N\] with N = .* 4, got \[5\]"),
        (torch.zeros(4, 3), torch.zeros(4), "labels must be an integer tensor .* got torch.float32"),
        (torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long), "logits must be a floating-point"),
        (torch.zeros(2, 3), torch.tensor([0, 3]), r"labels must be in \[0, 3\) .* got \[3\]"),
    ],
)
def test_accuracy_rejects_bad_input_naming_the_argument(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        Accuracy().update(logits, labels)


def test_accuracy_rejects_bad_topk():
    with pytest.raises(ValueError, match="topk must be a positive int"):
        Accuracy(topk=(0, 1))


# -- box IoU --------------------------------------------------------------------------------------------


def _random_boxes(n: int, g: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * 100
    return torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * 50], dim=1)


def test_box_iou_matches_torchvision():
    from torchvision.ops import box_iou as tv_box_iou

    g = torch.Generator().manual_seed(1)
    pred, true = _random_boxes(300, g), _random_boxes(300, g)
    true[:150] = pred[:150] + torch.randn(150, 4, generator=g)  # some good overlaps
    metric = BoxIoU(thresholds=(0.5, 0.75))
    metric.update(pred[:100], true[:100])
    metric.update(pred[100:], true[100:])
    iou = tv_box_iou(pred.double(), true.double()).diagonal()
    result = metric.compute()
    assert result["mean_iou"] == pytest.approx(float(iou.mean()), rel=1e-12)
    assert result["iou@0.5"] == float((iou >= 0.5).double().mean())
    assert result["iou@0.75"] == float((iou >= 0.75).double().mean())
    assert result["count"] == 300.0


def test_box_iou_degenerate_boxes_count_as_zero():
    metric = BoxIoU()
    metric.update(torch.tensor([[0.0, 0, 0, 0], [0, 0, 2, 2]]), torch.tensor([[0.0, 0, 0, 0], [0, 0, 2, 2]]))
    assert metric.compute() == {"mean_iou": 0.5, "iou@0.5": 0.5, "count": 2.0}


def test_box_iou_rejects_bad_input():
    with pytest.raises(ValueError, match=r"pred_boxes must have shape \[N, 4\]"):
        BoxIoU().update(torch.zeros(3, 5), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="same shape"):
        BoxIoU().update(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="true_boxes must be a floating-point"):
        BoxIoU().update(torch.zeros(3, 4), torch.zeros(3, 4, dtype=torch.long))


# -- segmentation -----------------------------------------------------------------------------------------


def test_dice_and_iou_by_hand_on_2x2_masks():
    # class 0: TP 1, FP 1, FN 0 -> IoU 1/2, Dice 2/3; class 1: TP 2, FP 0, FN 1 -> IoU 2/3, Dice 4/5.
    target = torch.tensor([[[0, 1], [1, 1]]])
    pred = torch.tensor([[[0, 1], [0, 1]]])
    metric = SegmentationMetrics(2, ignore_index=None)
    metric.update(pred, target)
    r = metric.compute()
    assert r["pixel_accuracy"] == 3 / 4
    assert (r["iou/0"], r["iou/1"], r["miou"]) == (1 / 2, 2 / 3, (1 / 2 + 2 / 3) / 2)
    assert (r["dice/0"], r["dice/1"], r["mean_dice"]) == (2 / 3, 4 / 5, (2 / 3 + 4 / 5) / 2)
    assert (r["accuracy/0"], r["accuracy/1"]) == (1.0, 2 / 3)

    micro = SegmentationMetrics(2, ignore_index=None, reduction="micro")
    micro.update(pred, target)
    m = micro.compute()  # TP 3, FP 1, FN 1 summed over classes
    assert (m["miou"], m["mean_dice"], m["mean_accuracy"]) == (3 / 5, 6 / 8, 3 / 4)


def test_absent_class_is_nan_and_excluded_from_the_means():
    target = torch.tensor([[[0, 0], [1, 1]]])
    metric = SegmentationMetrics(3, class_names=["sky", "road", "car"])
    metric.update(target.clone(), target)
    r = metric.compute()
    assert r["miou"] == 1.0 and r["mean_dice"] == 1.0 and r["mean_accuracy"] == 1.0
    assert math.isnan(r["iou/car"]) and math.isnan(r["dice/car"]) and math.isnan(r["accuracy/car"])
    # predicted but never in the target: IoU and Dice 0 (counted), accuracy (recall) undefined
    metric.update(torch.tensor([[[2, 2], [1, 1]]]), target)
    r = metric.compute()
    assert r["iou/car"] == 0.0 and math.isnan(r["accuracy/car"])
    assert r["miou"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)


def _segmentation_batches(seed: int, num_classes: int, ignore: int | None, logits: bool = False):
    g = torch.Generator().manual_seed(seed)
    batches = []
    for n in (2, 3):
        target = torch.randint(0, num_classes - 1, (n, 9, 7), generator=g)  # the last class never occurs
        if ignore is not None:
            target[torch.rand(target.shape, generator=g) < 0.1] = ignore
        noise = torch.randint(0, num_classes - 1, target.shape, generator=g)
        pred = torch.where(torch.rand(target.shape, generator=g) < 0.6, target.clamp(0, num_classes - 1), noise)
        if logits:
            pred = torch.nn.functional.one_hot(pred, num_classes).permute(0, 3, 1, 2).float()
            pred = pred + 0.1 * torch.rand(pred.shape, generator=g)
        batches.append((pred, target))
    return batches


@pytest.mark.parametrize("ignore_index", [255, None, 0])
@pytest.mark.parametrize("logits", [False, True])
def test_segmentation_matches_torchmetrics(ignore_index, logits):
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassConfusionMatrix,
        MulticlassF1Score,
        MulticlassJaccardIndex,
        MulticlassRecall,
    )

    num_classes = 5
    batches = _segmentation_batches(2, num_classes, ignore_index, logits)
    macro = SegmentationMetrics(num_classes, ignore_index=ignore_index)
    micro = SegmentationMetrics(num_classes, ignore_index=ignore_index, reduction="micro")
    confusion = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    for pred, target in batches:
        for metric in (macro, micro, confusion):
            metric.update(pred, target)
    labels = torch.cat([p.argmax(1) if logits else p for p, _ in batches])
    target = torch.cat([t for _, t in batches])

    def tm(cls, **kwargs):
        return cls(num_classes, ignore_index=ignore_index, **kwargs)(labels, target).double()

    expected_confmat = tm(MulticlassConfusionMatrix).long()
    if ignore_index == 0:  # torchmetrics zeroes the ignored class's row; ours has no such pixels either
        assert confusion.compute()["confusion_matrix"][0].sum() == 0
    assert torch.equal(confusion.compute()["confusion_matrix"][1:], expected_confmat[1:])

    per_class = macro.per_class()
    scored = ~per_class["iou"].isnan()
    assert not scored[num_classes - 1]  # in neither target nor prediction
    assert torch.allclose(per_class["iou"][scored], tm(MulticlassJaccardIndex, average=None)[scored])
    r, m = macro.compute(), micro.compute()
    assert r["miou"] == pytest.approx(float(tm(MulticlassJaccardIndex, average="macro")), abs=1e-6)
    assert m["miou"] == pytest.approx(float(tm(MulticlassJaccardIndex, average="micro")), abs=1e-6)
    assert r["pixel_accuracy"] == pytest.approx(float(tm(MulticlassAccuracy, average="micro")), abs=1e-6)
    recall = tm(MulticlassRecall, average=None)
    in_target = ~per_class["accuracy"].isnan()
    assert torch.allclose(per_class["accuracy"][in_target], recall[in_target])
    assert r["mean_accuracy"] == pytest.approx(float(recall[in_target].mean()), abs=1e-6)
    if ignore_index != 0:
        # torchmetrics' F1 keeps an ignored class that is predicted (as a class of F1 0) while its
        # Jaccard drops it: compare Dice only where the two libraries agree on the classes scored.
        f1 = tm(MulticlassF1Score, average=None, multidim_average="global")
        assert torch.allclose(per_class["dice"][scored], f1[scored])
        assert r["mean_dice"] == pytest.approx(float(tm(MulticlassF1Score, average="macro")), abs=1e-6)
        assert m["mean_dice"] == pytest.approx(float(tm(MulticlassF1Score, average="micro")), abs=1e-6)
    else:
        assert math.isnan(r["iou/0"]) and math.isnan(r["dice/0"])


def test_segmentation_rejects_bad_labels_and_shapes():
    metric = SegmentationMetrics(4)
    with pytest.raises(
        ValueError, match=r"target values must be class indices in \[0, 4\) or ignore_index = 255; got \[7\]"
    ):
        metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([[[0, 7], [255, 1]]]))
    with pytest.raises(ValueError, match=r"predicted class indices must be in \[0, 4\), got \[4\]"):
        metric.update(torch.tensor([[[0, 4], [0, 1]]]), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"preds must be class indices .* \[1, 4, 2, 2\] .* got \[1, 3, 2, 2\]"):
        metric.update(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="target must be an integer tensor"):
        metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="preds of the target's shape .* must be integer class indices"):
        metric.update(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction must be one of 'macro', 'micro', got 'mean'"):
        SegmentationMetrics(4, reduction="mean")
    with pytest.raises(ValueError, match="class_names must have num_classes = 2 names, got 1"):
        SegmentationMetrics(2, class_names=["a"])
    assert math.isnan(metric.compute()["pixel_accuracy"])  # the bad updates added nothing


@settings(max_examples=60, deadline=None)
@given(
    num_classes=st.integers(1, 5),
    shape=st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 5)),
    seed=st.integers(0, 2**31 - 1),
    noise=st.floats(0, 1),
)
def test_iou_and_dice_properties(num_classes, shape, seed, noise):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, num_classes, shape, generator=g)
    pred = torch.where(
        torch.rand(shape, generator=g) < noise, torch.randint(0, num_classes, shape, generator=g), target
    )
    metric = SegmentationMetrics(num_classes, ignore_index=None)
    metric.update(pred, target)
    pc = metric.per_class()
    iou, dice = pc["iou"], pc["dice"]
    present = ~iou.isnan()
    assert present.any() and torch.equal(present, ~dice.isnan())
    iou, dice = iou[present], dice[present]
    assert ((iou >= 0) & (iou <= 1)).all()
    assert (dice >= iou).all()
    assert torch.allclose(dice, 2 * iou / (1 + iou), rtol=0, atol=1e-12)
    r = metric.compute()
    assert 0 <= r["pixel_accuracy"] <= 1 and r["miou"] <= r["mean_dice"] <= 1


# -- detection: COCOeval is the oracle ---------------------------------------------------------------------


def coco_reference(preds: list[dict], targets: list[dict]):
    """COCOeval (bbox) on the same boxes, built in memory: images 1..n in update order, ground-truth
    ids from 1, areas = box areas, categories = every label seen."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i + 1} for i in range(len(targets))]
    categories = [{"id": c} for c in sorted({int(v) for d in [*preds, *targets] for v in d["labels"].tolist()})]
    annotations, results = [], []
    for i, t in enumerate(targets):
        crowd = t.get("iscrowd", torch.zeros(len(t["labels"]), dtype=torch.bool)).tolist()
        for (x1, y1, x2, y2), label, c in zip(t["boxes"].tolist(), t["labels"].tolist(), crowd, strict=True):
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {"id": len(annotations) + 1, "image_id": i + 1, "category_id": label, "bbox": [x1, y1, w, h],
                 "area": w * h, "iscrowd": int(c)}
            )  # fmt: skip
    for i, p in enumerate(preds):
        for (x1, y1, x2, y2), score, label in zip(
            p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist(), strict=True
        ):
            results.append(
                {"image_id": i + 1, "category_id": label, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": categories}
        gt.createIndex()
        if results:
            dt = gt.loadRes(results)
        else:  # loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = {"images": images, "annotations": [], "categories": categories}
            dt.createIndex()
        evaluation = COCOeval(gt, dt, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def coco_stats(preds, targets) -> dict[str, float]:
    stats = coco_reference(preds, targets).stats
    return {key: float(stats[i]) for key, i in COCO_KEYS.items()}


def _detection_data(
    seed: int,
    num_images: int = 12,
    num_categories: int = 5,
    crowd: float = 0.0,
    quantum: float | None = 0.25,
    max_gt: int = 10,
    max_extra: int = 6,
    score_levels: int = 0,
):
    """Ground truths, detections jittered from them (some relabelled, some missing) plus random ones.
    Coordinates are multiples of `quantum` (exact in x, y, w, h: pycocotools gets the same IoUs
    to the last bit), or arbitrary floats with quantum=None. score_levels > 0 makes ties."""
    rng = np.random.default_rng(seed)

    def coords(shape, high):
        values = rng.random(shape) * high
        return np.round(values / quantum) * quantum if quantum else values

    preds, targets = [], []
    for _ in range(num_images):
        m = int(rng.integers(0, max_gt + 1))
        xy = coords((m, 2), 200)
        gt_boxes = np.concatenate([xy, xy + (quantum or 0.01) + coords((m, 2), 60)], 1)
        gt_labels = rng.integers(0, num_categories, m)
        kept = rng.random(m) < 0.8
        det_boxes = gt_boxes[kept] + coords((int(kept.sum()), 4), 16) - 8
        det_labels = gt_labels[kept].copy()
        relabel = rng.random(len(det_labels)) < 0.1
        det_labels[relabel] = rng.integers(0, num_categories, int(relabel.sum()))
        k = int(rng.integers(0, max_extra + 1))
        xy = coords((k, 2), 200)
        det_boxes = np.concatenate([det_boxes, np.concatenate([xy, xy + 1 + coords((k, 2), 60)], 1)])
        det_labels = np.concatenate([det_labels, rng.integers(0, num_categories, k)])
        n = len(det_boxes)
        scores = rng.integers(0, score_levels, n) / score_levels if score_levels else rng.random(n)
        preds.append(
            {"boxes": torch.tensor(det_boxes, dtype=torch.float32).reshape(-1, 4),
             "scores": torch.tensor(scores, dtype=torch.float32), "labels": torch.tensor(det_labels)}
        )  # fmt: skip
        targets.append(
            {"boxes": torch.tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.tensor(gt_labels),
             "iscrowd": torch.from_numpy(rng.random(m) < crowd)}
        )  # fmt: skip
    return preds, targets


def _map(preds, targets, batch: int = 5, **kwargs) -> dict[str, float]:
    metric = MeanAveragePrecision(**kwargs)
    for i in range(0, len(preds), batch):
        metric.update(preds[i : i + batch], targets[i : i + batch])
    return metric.compute()


@pytest.mark.parametrize(
    "case",
    [
        dict(seed=0),
        dict(seed=1, crowd=0.3),
        dict(seed=2, crowd=0.7, num_categories=2),
        dict(seed=3, score_levels=4),  # score ties: COCOeval's stable (mergesort) order decides
        dict(seed=4, num_categories=60, num_images=30, max_gt=25),  # many categories
        dict(seed=5, num_categories=1, max_gt=40, max_extra=150),  # > 100 detections per image
        dict(seed=6, quantum=1.0, score_levels=3, crowd=0.2),  # IoU ties and threshold hits
    ],
    ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()),
)
def test_map_equals_cocoeval(case):
    preds, targets = _detection_data(**case)
    assert_same(_map(preds, targets), coco_stats(preds, targets))


def test_map_with_arbitrary_float_coordinates_matches_cocoeval_to_rounding():
    preds, targets = _detection_data(7, quantum=None, crowd=0.2)
    assert_same(_map(preds, targets), coco_stats(preds, targets), rel=1e-12)


def test_map_images_without_detections_or_ground_truth():
    preds, targets = _detection_data(8)
    preds[0] = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}
    targets[1] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}  # no iscrowd key either
    targets[2] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}
    preds[2] = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}
    assert_same(_map(preds, targets), coco_stats(preds, targets))


def test_map_category_with_detections_but_no_ground_truth_is_absent_like_cocoeval():
    box = torch.tensor([[0.0, 0, 10, 10]])
    preds = [{"boxes": torch.cat([box, box]), "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 2])}]
    targets = [{"boxes": box, "labels": torch.tensor([1])}]
    result = _map(preds, targets, class_metrics=True)
    assert_same({k: result[k] for k in COCO_KEYS}, coco_stats(preds, targets))
    # 1 - 2e-16: COCOeval's precision is tp / (tp + fp + eps)
    assert result["map"] == pytest.approx(1.0) and result["ap/1"] == pytest.approx(1.0) and result["ap/2"] == -1.0


def test_map_without_any_ground_truth_is_minus_one_like_cocoeval():
    preds = [{"boxes": torch.tensor([[0.0, 0, 1, 1]]), "scores": torch.tensor([0.5]), "labels": torch.tensor([0])}]
    targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    result = _map(preds, targets)
    assert result == {key: -1.0 for key in COCO_KEYS}
    assert_same(result, coco_stats(preds, targets))
    assert MeanAveragePrecision().compute() == {key: -1.0 for key in COCO_KEYS}


def test_detection_on_a_crowd_region_is_ignored_not_a_false_positive():
    # One person, one crowd region; the top-scoring detection lies inside the crowd (IoU with the
    # crowd box small, intersection over its own area 1): ignored, so AP stays 1.
    targets = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 0, 100, 80]]), "labels": torch.tensor([0, 0]),
                "iscrowd": torch.tensor([False, True])}]  # fmt: skip
    preds = [{"boxes": torch.tensor([[30.0, 10, 40, 20], [0, 0, 10, 10]]), "scores": torch.tensor([0.9, 0.8]),
              "labels": torch.tensor([0, 0])}]  # fmt: skip
    result = _map(preds, targets)
    assert result["map"] == pytest.approx(1.0)
    assert_same(result, coco_stats(preds, targets))
    targets[0]["iscrowd"] = torch.tensor([False, False])  # the same region as a regular object: a false positive
    assert _map(preds, targets)["map_50"] < 1.0


def test_per_class_ap_matches_cocoeval_precision():
    preds, targets = _detection_data(9, num_categories=6, crowd=0.1)
    result = _map(preds, targets, class_metrics=True)
    evaluation = coco_reference(preds, targets)
    precision = evaluation.eval["precision"][:, :, :, 0, 2]  # area "all", maxDets 100
    for k, category in enumerate(evaluation.params.catIds):
        s = precision[:, :, k]
        expected = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
        assert result[f"ap/{category}"] == expected


def test_map_does_not_depend_on_how_images_are_batched():
    preds, targets = _detection_data(10)
    assert _map(preds, targets, batch=1) == _map(preds, targets, batch=len(preds))


@pytest.mark.parametrize(
    "preds, targets, error, match",
    [
        ({"boxes": torch.zeros(0, 4)}, [], TypeError, "preds must be a list with one dict per image, got dict"),
        ([{}], [], ValueError, "preds and targets must have one dict per image each, got 1 and 0"),
        ([{"boxes": torch.zeros(1, 4), "scores": torch.zeros(1)}], [{}], ValueError, r"preds\[0\] lacks \['labels'\]"),
        ([{"boxes": torch.zeros(2, 4), "scores": torch.zeros(2), "labels": torch.zeros(1, dtype=torch.long)}],
         [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}],
         ValueError, r"preds\[0\]\['labels'\] must have shape \[N\] with N = 2 boxes, got \[1\]"),
        ([{"boxes": torch.zeros(1, 4), "scores": torch.zeros(1), "labels": torch.zeros(1)}],
         [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}],
         ValueError, r"preds\[0\]\['labels'\] must be an integer tensor of category ids, got torch.float32"),
        ([{"boxes": torch.zeros(1, 4), "scores": torch.zeros(1), "labels": torch.zeros(1, dtype=torch.long)}],
         [{"boxes": torch.zeros(3), "labels": torch.zeros(0, dtype=torch.long)}],
         ValueError, r"targets\[0\]\['boxes'\] must have shape \[N, 4\]"),
    ],
)  # fmt: skip
def test_map_rejects_bad_input(preds, targets, error, match):
    with pytest.raises(error, match=match):
        MeanAveragePrecision().update(preds, targets)


# -- distributed ---------------------------------------------------------------------------------------------


def _metrics() -> dict:
    return {
        "accuracy": Accuracy(topk=(1, 5)),
        "box_iou": BoxIoU(thresholds=(0.5, 0.75)),
        "segmentation": SegmentationMetrics(5, ignore_index=255),
        "map": MeanAveragePrecision(class_metrics=True),
    }


def _shard(rank: int) -> list[dict]:
    """Rank `rank`'s batches: the same list of argument tuples for every metric in `_metrics()`."""
    g = torch.Generator().manual_seed(100 + rank)
    preds, targets = _detection_data(20 + rank, num_images=6)
    seg = _segmentation_batches(30 + rank, 5, 255)
    return [
        {
            "accuracy": (torch.randn(16, 8, generator=g), torch.randint(0, 8, (16,), generator=g)),
            "box_iou": (_random_boxes(16, g), _random_boxes(16, g)),
            "segmentation": seg[i],
            "map": (preds[3 * i : 3 * i + 3], targets[3 * i : 3 * i + 3]),
        }
        for i in range(2)
    ]


def _run(metrics: dict, batches: list[dict]) -> dict:
    for batch in batches:
        for name, metric in metrics.items():
            metric.update(*batch[name])
    return {name: metric.compute() for name, metric in metrics.items()}


def _assert_results_equal(got: dict, expected: dict) -> None:
    for name in expected:
        assert_same(got[name], expected[name], rel=1e-12)  # float sums may be added in another order


def test_sync_sums_tensors_and_concatenates_lists_across_ranks(monkeypatch):
    """The reduction path, without processes: two ranks that saw the same data."""
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "gloo")
    monkeypatch.setattr(dist, "all_reduce", lambda tensor, op=None, group=None: tensor.mul_(2))

    def all_gather_object(out, obj, group=None):
        out[:] = [obj, obj]

    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    batches = _shard(0)
    metrics = _metrics()
    got = _run(metrics, batches)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    _assert_results_equal(got, _run(_metrics(), batches + batches))
    # compute() left the local state alone: computing again gives the same
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    _assert_results_equal({name: m.compute() for name, m in metrics.items()}, got)


def _distributed_worker(rank: int, world_size: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        results = _run(_metrics(), _shard(rank))  # compute() is a collective: every rank calls it
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process_on_all_the_data(tmp_path: Path):
    import torch.multiprocessing as mp

    out = tmp_path / "results.pt"
    mp.spawn(_distributed_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    got = torch.load(out, weights_only=False)
    _assert_results_equal(got, _run(_metrics(), _shard(0) + _shard(1)))
    assert got["map"]["map"] > 0 and got["accuracy"]["count"] == 64.0

"""The synthetic shapes dataset: items are fixed by (seed, split, index) in any process, the masks and
boxes describe exactly the visible objects, and every task gets its own item format."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader

from vision_kernels.data.collate import detection_collate
from vision_kernels.data.shapes import MIN_AREA, SHAPES, ShapesDataset
from vision_kernels.data.transforms import boxes_from_masks

DIGEST = """
import hashlib, torch
from vision_kernels.data.shapes import ShapesDataset
d = ShapesDataset(task="instance", count=5, size=32, seed=3)
h = hashlib.sha256()
for i in range(5):
    s = d.scene(i)
    for t in (s.image, s.labels, s.masks):
        h.update(t.contiguous().numpy().tobytes())
print(h.hexdigest())
"""


def _digest() -> str:
    namespace: dict = {}
    code = DIGEST.replace("print(h.hexdigest())", "result = h.hexdigest()")
    exec(code, namespace)  # the very code the subprocess runs
    return namespace["result"]


def test_items_depend_only_on_seed_split_and_index():
    a = ShapesDataset(task="instance", count=20, size=32)
    b = ShapesDataset(task="instance", count=20, size=32)
    for i in (0, 7, 19, -1):
        (ia, ta), (ib, tb) = a[i], b[i]
        assert torch.equal(ia, ib) and all(torch.equal(ta[k], tb[k]) for k in ta)
    assert torch.equal(a[3][0], a[3][0])  # drawing an item again gives it again
    val = ShapesDataset(split="val", task="instance", count=20, size=32)
    other_seed = ShapesDataset(task="instance", count=20, size=32, seed=1)
    assert not any(torch.equal(a[i][0], val[i][0]) for i in range(20))
    assert not any(torch.equal(a[i][0], other_seed[i][0]) for i in range(20))
    assert not torch.equal(a[0][0], a[1][0])
    with pytest.raises(IndexError):
        a[20]


def test_items_do_not_depend_on_the_process_hash_seed():
    env = {**os.environ, "PYTHONHASHSEED": "7" if os.environ.get("PYTHONHASHSEED") != "7" else "8"}
    child = subprocess.run([sys.executable, "-c", DIGEST], env=env, capture_output=True, text=True, check=True)
    assert child.stdout.strip() == _digest()


def test_masks_and_boxes_describe_the_visible_objects():
    dataset = ShapesDataset(task="instance", count=40, size=48, objects=(1, 6), classes=SHAPES)
    seen = set()
    for i in range(len(dataset)):
        image, target = dataset[i]
        boxes, labels, masks, semantic = target["boxes"], target["labels"], target["masks"], target["semantic"]
        assert 1 <= len(labels) <= 6 and len(boxes) == len(masks) == len(labels)
        assert masks.sum(0).max() <= 1  # an object hides what it covers: instance masks are disjoint
        assert torch.equal(semantic, ((labels + 1)[:, None, None] * masks).sum(0))
        assert torch.equal(semantic > 0, masks.any(0))
        assert (masks.flatten(1).sum(1) >= MIN_AREA // 2).all()
        assert torch.equal(boxes, boxes_from_masks(masks))  # tight around the visible pixels
        for box, mask in zip(boxes.long(), masks, strict=True):
            x0, y0, x1, y1 = box.tolist()
            assert mask[y0:y1, x0:x1].sum() == mask.sum()
            assert mask[y0, x0:x1].any() and mask[y1 - 1, x0:x1].any()
            assert mask[y0:y1, x0].any() and mask[y0:y1, x1 - 1].any()
        seen.update(labels.tolist())
        assert image.shape == (3, 48, 48) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    assert seen == set(range(len(SHAPES)))


@pytest.mark.parametrize("task", ["classification", "localization", "detection", "segmentation", "instance"])
def test_item_format_of_each_task(task):
    dataset = ShapesDataset(task=task, count=4, size=32, classes=("circle", "star"))
    image, target = dataset[0]
    scene = dataset.scene(0)
    assert image.shape == (3, 32, 32) and torch.equal(image, scene.image)
    names = ["circle", "star"]
    assert dataset.classes == (["background", *names] if task == "segmentation" else names)
    assert dataset.num_classes == len(dataset.classes)
    assert (getattr(dataset, "collate_fn", None) is detection_collate) == (task in ("detection", "instance"))
    largest = int(scene.masks.flatten(1).sum(1).argmax())
    if task == "classification":
        assert isinstance(target, int) and target == int(scene.labels[largest])
    elif task == "localization":
        assert set(target) == {"label", "box"} and target["label"] == int(scene.labels[largest])
        assert target["box"].shape == (4,) and target["box"].dtype == torch.float32
    elif task == "segmentation":
        assert target.shape == (32, 32) and target.dtype == torch.int64 and target.max() <= 2
    else:
        keys = {"boxes", "labels"} | ({"masks", "semantic"} if task == "instance" else set())
        assert set(target) == keys and target["boxes"].dtype == torch.float32 and target["labels"].dtype == torch.int64
        images, targets = next(iter(DataLoader(dataset, batch_size=4, collate_fn=dataset.collate_fn)))
        assert images.shape == (4, 3, 32, 32) and len(targets) == 4


def test_single_mode_has_exactly_one_object():
    dataset = ShapesDataset(task="localization", single=True, objects=(3, 5), count=30, size=32)
    for i in range(len(dataset)):
        scene = dataset.scene(i)
        assert len(scene.labels) == 1
        _, target = dataset[i]
        assert torch.equal(target["box"], scene.boxes[0]) and target["label"] == int(scene.labels[0])
    assert all(len(ShapesDataset(objects=2, count=5, size=32).scene(i).labels) == 2 for i in range(5))


def test_items_are_cheap_enough_for_large_counts():
    dataset = ShapesDataset(count=10000)
    assert len(dataset) == 10000 and dataset[9999][1].shape == (64, 64)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"split": "tset"}, "split must be one of train, val, test, got 'tset'"),
        ({"task": "segment"}, "task must be one of classification, localization, detection, segmentation, instance"),
        ({"size": 8}, "size must be an integer >= 16"),
        ({"count": -1}, "count must be an integer >= 0"),
        ({"objects": (3, 2)}, "objects must be an int or a \\(min, max\\) pair"),
        ({"objects": 0}, "objects must be"),
        ({"classes": ("circle", "hexagon")}, "classes must be distinct names among circle, square"),
        ({"classes": ()}, "classes must be distinct"),
        ({"classes": ("circle", "circle")}, "classes must be distinct"),
        ({"single": "yes"}, "single must be true or false"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"deform": -1}, "deform must be a number >= 0"),
        ({"deform": True}, "deform must be a number >= 0"),
        ({"appearance": "sepia"}, "appearance must be one of random, stained, got 'sepia'"),
    ],
)
def test_bad_arguments_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        ShapesDataset(**options)


def test_deformed_scenes_bend_image_and_masks_together():
    rigid = ShapesDataset(task="instance", count=12, size=64, classes=["ellipse"], objects=(2, 5))
    bent = ShapesDataset(task="instance", count=12, size=64, classes=["ellipse"], objects=(2, 5), deform=6)
    changed = 0
    for i in range(len(bent)):
        image, target = bent[i]
        again = bent[i]
        assert torch.equal(image, again[0]) and torch.equal(target["masks"], again[1]["masks"])  # seeded
        masks, labels = target["masks"], target["labels"]
        assert masks.sum(0).max() <= 1 and (masks.flatten(1).sum(1) > 0).all()
        assert torch.equal(target["semantic"], ((labels + 1)[:, None, None] * masks).sum(0))
        assert torch.equal(target["boxes"], boxes_from_masks(masks))
        assert 0 <= image.min() <= image.max() <= 1
        # Each object is one flat colour (+ noise): inside its mask (edges blend bilinearly, so
        # one pixel in from them) the image has that colour, so the mask moved with the image.
        inner = -torch.nn.functional.max_pool2d(-masks[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0
        for mask in inner:
            if mask.sum() < 10:
                continue
            pixels = image[:, mask]
            off = (pixels - pixels.median(1).values[:, None]).abs().max(0).values > 0.15
            assert off.float().mean() < 0.02
        changed += not torch.equal(image, rigid[i][0])
    assert changed == len(bent)  # every scene bent (deform=0 is the rigid scene, as before)


def test_stained_scenes_are_light_grey_objects_on_a_dim_grey_background():
    dataset = ShapesDataset(task="instance", count=8, size=48, classes=["ellipse"], appearance="stained")
    for i in range(len(dataset)):
        image, target = dataset[i]
        assert (image.max(0).values - image.min(0).values).mean() < 0.06  # grey, up to the per-channel noise
        objects = target["masks"].any(0)
        assert image[:, ~objects].mean() < 0.35 < 0.55 < image[:, objects].mean()
    # The default appearance is unchanged by the option's existence: the same seeded scenes.
    assert torch.equal(ShapesDataset(count=2)[1][0], ShapesDataset(count=2, appearance="random")[1][0])


def test_classes_may_be_a_comma_separated_string():
    assert ShapesDataset(task="detection", classes="star, circle").classes == ["star", "circle"]

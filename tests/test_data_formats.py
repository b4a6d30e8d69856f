"""The dataset file formats on small files written here: every loader's layout and items, and every
way a file can be bad, each a DataError whose message names the file and the problem."""

from __future__ import annotations

import gzip
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from vision_kernels.data.collate import detection_collate
from vision_kernels.data.errors import DataError
from vision_kernels.data.formats import (
    CocoDetection,
    ImageFolder,
    ImageMaskFolder,
    MnistIdx,
    PairedImages,
    UnpairedImages,
    VOCDetection,
    VOCSegmentation,
    read_idx,
    write_idx,
)
from vision_kernels.data.images import list_images, read_image, read_mask
from vision_kernels.data.skipping import SkipBad
from vision_kernels.plugins.datasets import DATASETS

RNG = np.random.default_rng(0)
# pycocotools' decode under NumPy 2 (its own code, harmless).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def rgb(height: int = 6, width: int = 8) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray, mode: str | None = None, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    picture.save(path, **options)
    return path


def save_palette(path: Path, indices: np.ndarray) -> Path:
    """A VOC-style palette PNG: pixel values are class indices, the palette only colours them."""
    picture = Image.fromarray(indices.astype(np.uint8), mode="L").convert("P")
    picture.putpalette([value for index in range(256) for value in (index * 7 % 256, index * 3 % 256, index)])
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


def truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    return path


def raises_naming(path: Path, problem: str):
    """pytest.raises(DataError) whose message names `path` and matches `problem`."""
    return pytest.raises(DataError, match=re.escape(repr(str(path))) + ".*" + problem)


# --- images ---------------------------------------------------------------------------------------


def test_read_image_gray_rgb_sixteen_bit_and_palette(tmp_path):
    gray = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    image = read_image(save(tmp_path / "gray.png", gray))
    assert image.shape == (1, 5, 7) and image.dtype == torch.float32
    torch.testing.assert_close(image[0], torch.from_numpy(gray / 255.0).float())
    assert read_image(tmp_path / "gray.png", channels=3).shape == (3, 5, 7)

    colour = rgb(5, 7)
    image = read_image(save(tmp_path / "rgb.png", colour))
    torch.testing.assert_close(image, torch.from_numpy(colour / 255.0).float().permute(2, 0, 1))
    assert read_image(tmp_path / "rgb.png", channels=1).shape == (1, 5, 7)
    assert read_image(save(tmp_path / "rgba.png", np.dstack([colour, colour[..., :1]]))).shape == (3, 5, 7)
    assert read_image(save(tmp_path / "photo.jpg", colour, quality=95)).shape == (3, 5, 7)

    deep = np.array([[0, 1000, 65535], [32768, 7, 40000]], dtype=np.uint16)
    save(tmp_path / "deep.png", deep, "I;16")
    with Image.open(tmp_path / "deep.png") as picture:
        assert picture.mode.startswith("I")
    image = read_image(tmp_path / "deep.png")
    assert image.shape == (1, 2, 3)
    torch.testing.assert_close(image[0], torch.from_numpy(deep / 65535.0).float())
    torch.testing.assert_close(read_image(tmp_path / "deep.png", channels=3), image.expand(3, -1, -1))
    palette = save_palette(tmp_path / "palette.png", np.array([[0, 1], [2, 3]]))
    assert read_image(palette).shape == (3, 2, 2)
    with pytest.raises(ValueError, match="channels must be None, 1 or 3, got 2"):
        read_image(palette, channels=2)


def test_read_mask_values_and_rgb_refused(tmp_path):
    indices = np.array([[0, 1, 255], [20, 3, 0]])
    torch.testing.assert_close(read_mask(save_palette(tmp_path / "voc.png", indices)), torch.from_numpy(indices))
    torch.testing.assert_close(read_mask(save(tmp_path / "l.png", indices.astype(np.uint8))), torch.from_numpy(indices))
    deep = np.array([[0, 300], [1000, 2]], dtype=np.uint16)
    mask = read_mask(save(tmp_path / "deep.png", deep, "I;16"))
    assert mask.dtype == torch.int64 and mask.tolist() == deep.tolist()
    path = save(tmp_path / "colour.png", rgb())
    with raises_naming(path, "has mode 'RGB': a mask must be single-channel"):
        read_mask(path)


def test_unreadable_images_name_the_file(tmp_path):
    png = truncate(save(tmp_path / "cut.png", rgb(64, 64)))
    jpeg = truncate(save(tmp_path / "cut.jpg", rgb(64, 64), quality=95))
    text = tmp_path / "notes.png"
    text.write_text("not pixels\n")
    for path, problem in (
        (png, "truncated"),
        (jpeg, "truncated"),
        (text, "not an image format PIL recognizes"),
        (tmp_path / "missing.png", "no such file"),
        (tmp_path, "directory"),
    ):
        with raises_naming(path, "is not a readable image: .*" + problem) as info:
            read_image(path)
        assert info.value.path == path
    with raises_naming(png, "truncated"):
        read_mask(png)
    error = pickle.loads(pickle.dumps(DataError("bad", png)))  # as it crosses DataLoader workers
    assert (str(error), error.path) == ("bad", png)


def test_list_images(tmp_path):
    for name in ("b.PNG", "a.jpg", "sub/c.jpeg", ".hidden/d.png", "e.txt", ".f.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "sub/c.jpeg"]
    assert len(list_images(tmp_path, recursive=False)) == 2
    with raises_naming(tmp_path / "nope", "does not exist"):
        list_images(tmp_path / "nope")


# --- ImageFolder, SkipBad -------------------------------------------------------------------------


def test_image_folder_and_skip_bad(tmp_path):
    for label in ("cat", "dog"):
        for index in range(3):
            save(tmp_path / "train" / label / f"{index}.png", rgb())
    bad = tmp_path / "train" / "dog" / "3.png"
    bad.write_bytes(b"GIF89a not really")
    (tmp_path / "train" / "dog" / "readme.txt").write_text("ignored")
    data = ImageFolder(split="train", root=tmp_path)
    assert data.classes == ["cat", "dog"] and len(data) == 7 and data.targets == [0, 0, 0, 1, 1, 1, 1]
    image, label = data[4]
    assert image.shape == (3, 6, 8) and label == 1 and data.source(4).endswith("dog/1.png")
    assert data.check(0) is None and "is not a readable image" in data.check(6)
    with raises_naming(bad, "is not a readable image"):
        data[6]

    good = SkipBad(data)
    assert len(good) == 6 and good.classes == ["cat", "dog"] and [good[i][1] for i in range(6)] == [0] * 3 + [1] * 3
    assert len(good.skipped) == 1
    file, problem = good.skipped[0]
    assert file == str(bad) and str(bad) in problem and "is not a readable image" in problem
    batch = next(iter(DataLoader(good, batch_size=6)))
    assert batch[0].shape == (6, 3, 6, 8)

    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with raises_naming(tmp_path / "empty", "has no images"):
        ImageFolder(tmp_path / "empty")


# --- ImageMaskFolder --------------------------------------------------------------------------------


def test_image_mask_folder(tmp_path):
    for name in ("a", "sub/b"):
        save(tmp_path / "images" / f"{name}.jpg", rgb(4, 5))
        save(tmp_path / "masks" / f"{name}.png", np.array([[0, 1, 2, 255, 0]] * 4, dtype=np.uint8))
    data = ImageMaskFolder(tmp_path, classes=["bg", "x", "y"])
    assert len(data) == 2 and data.source(1).endswith("sub/b.jpg")
    image, mask = data[0]
    assert image.shape == (3, 4, 5) and mask.dtype == torch.int64 and mask[0].tolist() == [0, 1, 2, 255, 0]
    assert len(ImageMaskFolder(split="val", root=tmp_path)) == 2  # no split folders: every split is root/images

    save(tmp_path / "masks" / "a.png", np.full((4, 5), 7, dtype=np.uint8))
    with raises_naming(tmp_path / "masks" / "a.png", r"has values \[7\] not in the class list 0..2 \(bg, x, y\)"):
        data[0]
    save(tmp_path / "masks" / "a.png", rgb(4, 5))
    with raises_naming(tmp_path / "masks" / "a.png", "has mode 'RGB'"):
        data[0]
    save(tmp_path / "masks" / "a.png", np.zeros((3, 5), dtype=np.uint8))
    with raises_naming(tmp_path / "masks" / "a.png", "is 3x5 .* but its image .* is 4x5"):
        data[0]
    # A check returns only the problem: the record's file is the item's source (its image), the
    # problem names the mask.
    (file, problem), *_ = SkipBad(data).skipped
    assert file == data.source(0) and str(tmp_path / "masks" / "a.png") in problem

    save(tmp_path / "images" / "lonely.png", rgb(4, 5))
    with raises_naming(tmp_path / "images" / "lonely.png", "has no mask in"):
        ImageMaskFolder(tmp_path)

    split = tmp_path / "split"
    save(split / "train" / "images" / "x.png", rgb(4, 5))
    save(split / "train" / "masks" / "x.png", np.zeros((4, 5), dtype=np.uint8))
    assert len(ImageMaskFolder(split, split="train")) == 1
    with raises_naming(split, "has no split 'val'"):
        ImageMaskFolder(split, split="val")


def test_image_mask_folder_names_a_missing_root(tmp_path):
    from vision_kernels.plugins.datasets import DATASETS

    load = next(d.load for d in DATASETS if d.name == "image-mask-folder")
    for split in (None, "train"):  # not "has no split 'train'": the root itself is missing
        with raises_naming(tmp_path / "none", "does not exist: expected a folder with images/ and masks/"):
            ImageMaskFolder(tmp_path / "none", split=split)
    with raises_naming(tmp_path / "none", "does not exist"):
        load(split="train", root=str(tmp_path / "none"))
    (tmp_path / "file").write_text("")
    with raises_naming(tmp_path / "file", "is not a folder"):
        ImageMaskFolder(tmp_path / "file", split="train")


def test_image_mask_folder_told_the_models_classes_names_a_bad_mask(tmp_path):
    """Without num_classes the dataset cannot check its masks; told the model's, it names the file."""
    save(tmp_path / "images" / "a.png", rgb(4, 5))
    save(tmp_path / "masks" / "a.png", np.array([[0, 1, 7, 255, 9]] * 4, dtype=np.uint8))
    data = ImageMaskFolder(tmp_path)
    assert data[0][1].max() == 255  # unchecked
    data.expect_classes(4, ignore_index=255)
    bad = tmp_path / "masks" / "a.png"
    with raises_naming(bad, r"has values \[7, 9\] not in the class list 0..3 \(or 255 = ignore\)"):
        data[0]
    named = ImageMaskFolder(tmp_path, classes=["bg", "cell", "edge"])
    with raises_naming(bad, r"\[7, 9\] not in the class list 0..2 \(bg, cell, edge\) \(or 255"):
        named[0]
    with raises_naming(tmp_path, "has 3 classes but the model predicts 4"):
        named.expect_classes(4)


# --- VOC ------------------------------------------------------------------------------------------


def voc_xml(width: int, height: int, objects: list[tuple[str, tuple[int, int, int, int], int]]) -> str:
    parts = [f"<annotation><filename>x.jpg</filename><size><width>{width}</width><height>{height}</height>"
             "<depth>3</depth></size>"]  # fmt: skip
    for name, (x0, y0, x1, y1), difficult in objects:
        parts.append(
            f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x0}</xmin>"
            f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        )
    return "".join(parts) + "</annotation>"


def make_voc(root: Path, ids: list[str], task: str) -> None:
    (root / "ImageSets" / task).mkdir(parents=True)
    (root / "ImageSets" / task / "train.txt").write_text("".join(f"{i}\n" for i in ids))
    for image_id in ids:
        save(root / "JPEGImages" / f"{image_id}.jpg", rgb(6, 8), quality=95)


def test_voc_segmentation(tmp_path):
    make_voc(tmp_path, ["2007_000001", "2007_000002"], "Segmentation")
    indices = np.zeros((6, 8), dtype=np.int64)
    indices[1:4, 2:6], indices[0] = 15, 255
    save_palette(tmp_path / "SegmentationClass" / "2007_000001.png", indices)
    save_palette(tmp_path / "SegmentationClass" / "2007_000002.png", np.full((6, 8), 30))
    data = VOCSegmentation(split="train", root=tmp_path)
    assert len(data) == 2 and data.classes[15] == "person" and data.classes[0] == "background"
    image, mask = data[0]
    assert image.shape == (3, 6, 8) and torch.equal(mask, torch.from_numpy(indices))
    bad = tmp_path / "SegmentationClass" / "2007_000002.png"
    with raises_naming(bad, r"has values \[30\] not in the class list 0..20 \(or 255 = ignore\)"):
        data[1]
    assert SkipBad(data).skipped == [(str(tmp_path / "JPEGImages" / "2007_000002.jpg"), data.check(1))]
    bad.unlink()
    with raises_naming(bad, "listed in ImageSets/Segmentation/train.txt does not exist"):
        VOCSegmentation(tmp_path)
    with raises_naming(tmp_path / "ImageSets" / "Segmentation" / "val.txt", "does not exist"):
        VOCSegmentation(tmp_path, split="val")


def test_voc_detection_and_collate(tmp_path):
    make_voc(tmp_path, ["a", "b"], "Main")
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text(voc_xml(8, 6, [("dog", (1, 2, 4, 6), 0), ("cat", (3, 1, 8, 3), 1)]))
    (tmp_path / "Annotations" / "b.xml").write_text(voc_xml(8, 6, []))
    data = VOCDetection(split="train", root=tmp_path)
    image, target = data[0]
    assert image.shape == (3, 6, 8) and target["image_id"] == "a"
    assert target["boxes"].tolist() == [[0, 1, 4, 6], [2, 0, 8, 3]]  # 1-based inclusive -> 0-based xyxy
    assert target["labels"].tolist() == [11, 7] and target["difficult"].tolist() == [False, True]
    images, targets = next(iter(DataLoader(data, batch_size=2, collate_fn=data.collate_fn)))
    assert images.shape == (2, 3, 6, 8) and [len(t["boxes"]) for t in targets] == [2, 0]
    assert targets[1]["boxes"].shape == (0, 4)

    annotation = tmp_path / "Annotations" / "b.xml"
    for text, problem in (
        ("<annotation><size>", "is not valid XML"),
        (voc_xml(8, 6, [("dog", (2, 2, 9, 6), 0)]), "box xmin=2 ymin=2 xmax=9 ymax=6 .* outside the 8x6 image"),
        (voc_xml(8, 6, [("unicorn", (1, 1, 2, 2), 0)]), "class 'unicorn'"),
        (voc_xml(8, 6, [("dog", (1, 1, 2, 2), 0)]).replace("<xmax>2</xmax>", "<xmax>two</xmax>"), "not a number"),
    ):
        annotation.write_text(text)
        with raises_naming(annotation, problem):
            VOCDetection(tmp_path)
    annotation.write_text(voc_xml(10, 6, []))
    with raises_naming(tmp_path / "JPEGImages" / "b.jpg", r"is 8x6 \(WxH\) but its annotation .* says 10x6"):
        VOCDetection(tmp_path)[1]
    annotation.unlink()
    with raises_naming(annotation, "listed in ImageSets/Main/train.txt does not exist"):
        VOCDetection(tmp_path)


def test_detection_collate_mixed_sizes():
    items = [(torch.zeros(3, 4, 5), {"boxes": torch.zeros(1, 4)}), (torch.zeros(3, 6, 5), {"boxes": torch.zeros(0, 4)})]
    images, targets = detection_collate(items)
    assert isinstance(images, list) and [tuple(i.shape) for i in images] == [(3, 4, 5), (3, 6, 5)]
    assert [t["boxes"].shape[0] for t in targets] == [1, 0]
    stacked, _ = detection_collate(items[:1] * 2)
    assert stacked.shape == (2, 3, 4, 5)


# --- COCO -----------------------------------------------------------------------------------------


def coco_files(tmp_path: Path) -> tuple[Path, Path, dict]:
    from pycocotools import mask as mask_utils

    images = tmp_path / "images"
    save(images / "1.jpg", rgb(10, 12), quality=95)
    save(images / "2.png", rgb(10, 12))
    blob = np.zeros((10, 12), dtype=np.uint8)
    blob[2:7, 3:9] = 1
    blob[4, 5] = 0
    compressed = mask_utils.encode(np.asfortranarray(blob))
    data = {
        "images": [{"id": 2, "file_name": "2.png", "width": 12, "height": 10},
                   {"id": 1, "file_name": "1.jpg", "width": 12, "height": 10}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 18, "bbox": [1, 1, 5, 4], "iscrowd": 0, "area": 14.0,
             "segmentation": [[1, 1, 6, 1, 6, 5, 1, 5], [8, 6, 11, 6, 9.5, 9]]},
            {"id": 11, "image_id": 1, "category_id": 3, "bbox": [0, 0, 12, 10], "iscrowd": 1, "area": 20.0,
             "segmentation": {"size": [10, 12], "counts": [5, 10, 3, 7, 95]}},
            {"id": 12, "image_id": 1, "category_id": 3, "bbox": [3, 2, 6, 5], "iscrowd": 1, "area": 29.0,
             "segmentation": {"size": [10, 12], "counts": compressed["counts"].decode("ascii")}},
        ],
    }  # fmt: skip
    annotation_file = tmp_path / "instances.json"
    annotation_file.write_text(json.dumps(data))
    return images, annotation_file, data


def test_coco_boxes_and_masks_match_pycocotools(tmp_path):
    from pycocotools.coco import COCO

    images, annotation_file, _ = coco_files(tmp_path)
    data = CocoDetection(images, annotation_file, masks=True)
    assert data.ids == [1, 2] and data.classes == ["car", "dog"] and data.category_ids == [3, 18]
    image, target = data[0]
    assert image.shape == (3, 10, 12) and target["image_id"] == 1 and data.source(0).endswith("1.jpg")
    assert target["boxes"].tolist() == [[1, 1, 6, 5], [0, 0, 12, 10], [3, 2, 9, 7]]
    assert target["labels"].tolist() == [1, 0, 0] and target["iscrowd"].tolist() == [0, 1, 1]
    coco = COCO(str(annotation_file))
    expected = np.stack([coco.annToMask(annotation) for annotation in coco.loadAnns([10, 11, 12])])
    assert target["masks"].dtype == torch.bool and torch.equal(target["masks"], torch.from_numpy(expected).bool())
    assert target["masks"].sum(dim=(1, 2)).tolist() == [int(m.sum()) for m in expected] and expected.sum() > 0
    _, empty = data[1]
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 10, 12)
    images_batch, targets = next(iter(DataLoader(data, batch_size=2, collate_fn=data.collate_fn)))
    assert images_batch.shape == (2, 3, 10, 12) and [len(t["labels"]) for t in targets] == [3, 0]
    assert "masks" not in CocoDetection(images, annotation_file)[0][1]


def test_coco_broken_files(tmp_path):
    images, annotation_file, data = coco_files(tmp_path)

    def rewrite(change) -> None:
        broken = json.loads(json.dumps(data))
        change(broken)
        annotation_file.write_text(json.dumps(broken))

    rewrite(lambda d: d["annotations"][0].update(bbox=[8, 1, 6, 4]))
    with raises_naming(annotation_file, r"annotation 10 has bbox \[x, y, w, h\] = \[8, 1, 6, 4\] outside its 12x10"):
        CocoDetection(images, annotation_file)
    rewrite(lambda d: d["images"][0].update(file_name="gone.png"))
    with raises_naming(images / "gone.png", "named in annotation file .* does not exist"):
        CocoDetection(images, annotation_file)
    rewrite(lambda d: d["annotations"][0].update(category_id=99))
    with raises_naming(annotation_file, 'has category_id 99, not in "categories"'):
        CocoDetection(images, annotation_file)
    annotation_file.write_text(json.dumps(data)[:-20])
    with raises_naming(annotation_file, "is not valid JSON"):
        CocoDetection(images, annotation_file)
    with raises_naming(tmp_path / "none.json", "does not exist"):
        CocoDetection(images, tmp_path / "none.json")

    # Segmentations are decoded at read time: a truncated or corrupt RLE must not become garbage pixels.
    counts = data["annotations"][2]["segmentation"]["counts"]
    for bad_counts in (counts[:-2], "", "zz~~"):
        rewrite(lambda d, c=bad_counts: d["annotations"][2]["segmentation"].update(counts=c))
        broken = CocoDetection(images, annotation_file, masks=True)
        with raises_naming(annotation_file, "annotation 12 has a compressed RLE that does not decode to 10x12"):
            broken[0]
    rewrite(lambda d: d["annotations"][1]["segmentation"].update(counts=[5, 10]))
    with raises_naming(annotation_file, "annotation 11 has RLE counts that do not add up to 10x12"):
        CocoDetection(images, annotation_file, masks=True)[0]
    rewrite(lambda d: None)
    (images / "1.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut")
    good = SkipBad(CocoDetection(images, annotation_file))
    assert (
        len(good) == 1 and good.skipped[0][0] == str(images / "1.jpg") and "not a readable image" in good.skipped[0][1]
    )


# --- pix2pix and CycleGAN layouts -----------------------------------------------------------------


def test_paired_images(tmp_path):
    pairs = [rgb(4, 8) for _ in range(2)]
    for index, pair in enumerate(pairs):
        save(tmp_path / "train" / f"{index}.png", pair)
    data = PairedImages(split="train", root=tmp_path)
    a, b = data[1]
    expected = torch.from_numpy(pairs[1] / 255.0).float().permute(2, 0, 1)
    assert a.shape == b.shape == (3, 4, 4) and torch.equal(a, expected[..., :4]) and torch.equal(b, expected[..., 4:])
    b2, a2 = PairedImages(tmp_path, direction="BtoA")[1]
    assert torch.equal(a2, a) and torch.equal(b2, b)
    assert PairedImages(tmp_path, channels=1)[0][0].shape == (1, 4, 4)
    odd = save(tmp_path / "train" / "2.png", rgb(4, 7))
    data = PairedImages(tmp_path)
    with raises_naming(odd, "is 7 pixels wide: a side-by-side A\\|B pair needs an even width"):
        data[2]
    assert SkipBad(data).skipped == [(str(odd), data.check(2))]
    with raises_naming(tmp_path / "val", "does not exist: the pix2pix layout is root/<split>/<image>"):
        PairedImages(tmp_path, split="val")
    with pytest.raises(ValueError, match="direction must be one of .*, got 'AB'"):
        PairedImages(tmp_path, direction="AB")


def test_unpaired_images(tmp_path):
    for index in range(5):
        save(tmp_path / "trainA" / f"a{index}.png", rgb(4, 4))
    for index in range(3):
        save(tmp_path / "trainB" / f"b{index}.jpg", rgb(6, 6))
    data = UnpairedImages(split="train", root=tmp_path)
    assert len(data) == 5
    pairs = [data.pair(i) for i in range(5)]
    assert [a.name for a, _ in pairs] == [f"a{i}.png" for i in range(5)]
    assert {b.name for _, b in pairs} == {"b0.jpg", "b1.jpg", "b2.jpg"}  # every B shown in one epoch
    assert pairs == [UnpairedImages(tmp_path).pair(i) for i in range(5)]  # deterministic
    assert [b.name for _, b in (UnpairedImages(tmp_path, seed=None).pair(i) for i in range(5))] == [
        "b0.jpg", "b1.jpg", "b2.jpg", "b0.jpg", "b1.jpg"
    ]  # fmt: skip
    a, b = data[4]
    assert a.shape == (3, 4, 4) and b.shape == (3, 6, 6) and data.source(4).endswith("a4.png")
    with pytest.raises(IndexError):
        data.pair(5)
    save(tmp_path / "testA" / "x.png", rgb())
    with raises_naming(tmp_path / "testB", "does not exist: the CycleGAN layout is root/<split>A and root/<split>B"):
        UnpairedImages(tmp_path, split="test")
    bad = tmp_path / "trainB" / "b1.jpg"
    truncate(save(bad, rgb(64, 64), quality=95))
    skipped = SkipBad(data).skipped
    assert skipped and all(str(bad) in problem and "truncated" in problem for _, problem in skipped)


# --- idx ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64])
def test_idx_round_trip(tmp_path, dtype):
    tensor = (torch.arange(24) * 37 - 300).reshape(2, 3, 4)
    tensor = tensor.to(dtype) if dtype.is_floating_point else tensor.clamp(*_range(dtype)).to(dtype)
    for name in ("plain", "packed.gz"):
        write_idx(tmp_path / name, tensor)
        loaded = read_idx(tmp_path / name)
        assert loaded.dtype == dtype and torch.equal(loaded, tensor)
    assert (tmp_path / "packed.gz").read_bytes()[:2] == b"\x1f\x8b"


def _range(dtype: torch.dtype) -> tuple[int, int]:
    info = torch.iinfo(dtype)
    return info.min, info.max


def test_idx_header_and_gzip_sniffing(tmp_path):
    write_idx(tmp_path / "labels", torch.tensor([3, 1, 4], dtype=torch.uint8))
    assert (tmp_path / "labels").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])
    raw = tmp_path / "labels-idx1-ubyte"  # gzipped content under a plain name: sniffed, not guessed
    raw.write_bytes(gzip.compress((tmp_path / "labels").read_bytes()))
    assert read_idx(raw).tolist() == [3, 1, 4]
    with pytest.raises(
        ValueError, match="dtype must be one of uint8, int8, int16, int32, float32, float64, got torch.int64"
    ):
        write_idx(tmp_path / "x", torch.zeros(2, dtype=torch.int64))


def test_idx_broken_files(tmp_path):
    write_idx(tmp_path / "images", torch.zeros(4, 3, 3, dtype=torch.uint8))
    data = (tmp_path / "images").read_bytes()
    cases = {
        "truncated": (
            data[:-5],
            r"is truncated: expected 36 bytes of data for shape \[4, 3, 3\] of unsigned byte, got 31",
        ),
        "long": (data + b"\0", "is longer than its header says: expected 36 bytes .* got 37"),
        "header": (data[:9], "is truncated: expected a 16-byte header for 3 dimensions, got 9 bytes"),
        "magic": (b"\x89PNG" + data[4:], "has a bad magic number 0x89504E47: expected 2 zero bytes, a type code"),
        "code": (bytes([0, 0, 7]) + data[3:], "bad magic number 0x00000703"),
        "gzip": (gzip.compress(data)[:-10], "is gzip-compressed but does not decompress"),
    }
    for name, (content, problem) in cases.items():
        (tmp_path / name).write_bytes(content)
        with raises_naming(tmp_path / name, problem):
            read_idx(tmp_path / name)
    with raises_naming(tmp_path / "missing", "does not exist"):
        read_idx(tmp_path / "missing")


def test_mnist_idx(tmp_path):
    pixels = torch.randint(0, 256, (5, 6, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    write_idx(tmp_path / "images.gz", pixels)
    write_idx(tmp_path / "labels", torch.tensor([0, 9, 3, 3, 1], dtype=torch.uint8))
    data = MnistIdx(tmp_path / "images.gz", tmp_path / "labels")
    image, label = data[1]
    assert len(data) == 5 and label == 9 and isinstance(label, int) and data.classes == [str(d) for d in range(10)]
    assert image.shape == (1, 6, 7) and image.dtype == torch.float32
    torch.testing.assert_close(image[0], pixels[1].float() / 255)
    assert data.check(0) is None and data.source(0) == str(tmp_path / "images.gz")
    assert MnistIdx(tmp_path / "images.gz", tmp_path / "labels", classes=list("abcdefghij")).classes[9] == "j"

    write_idx(tmp_path / "short", torch.tensor([0, 1, 2], dtype=torch.uint8))
    with raises_naming(tmp_path / "images.gz", "do not match: 5 images but 3 labels"):
        MnistIdx(tmp_path / "images.gz", tmp_path / "short")
    with raises_naming(tmp_path / "labels", r"has labels 0..9, expected 0..1 for the 2 classes"):
        MnistIdx(tmp_path / "images.gz", tmp_path / "labels", classes=["no", "yes"])
    with raises_naming(tmp_path / "labels", r"holds an array of shape \[5\]: expected images \[N, H, W\]"):
        MnistIdx(tmp_path / "labels", tmp_path / "labels")


def test_mnist_idx_val_is_held_out_of_the_training_files(tmp_path):
    from vision_kernels.plugins.datasets import mnist_idx

    write_idx(tmp_path / "train-images-idx3-ubyte", torch.arange(24, dtype=torch.uint8)[:, None, None].expand(24, 2, 2)
              .contiguous())  # fmt: skip
    write_idx(tmp_path / "train-labels-idx1-ubyte", torch.arange(24, dtype=torch.uint8) % 2)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", torch.full((3, 2, 2), 200, dtype=torch.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", torch.tensor([0, 1, 0], dtype=torch.uint8))

    def sources(data):
        return [round(float(data[i][0].flatten()[0]) * 255) for i in range(len(data))]

    train, val, test = (mnist_idx(split, root=str(tmp_path)) for split in ("train", "val", "test"))
    assert sources(val) == [22, 23] and [label for _, label in (val[0], val[1])] == [0, 1]  # the 12th of each class
    assert sorted(sources(train) + sources(val)) == list(range(24)) and sources(test) == [200] * 3
    assert val.classes == train.classes == [str(d) for d in range(10)]
    files = {"images": str(tmp_path / "train-images-idx3-ubyte"), "labels": str(tmp_path / "train-labels-idx1-ubyte")}
    assert sources(mnist_idx("val", **files)) == [22, 23]
    with pytest.raises(ValueError, match=r"needs data.options.root or data.options.test_images and .test_labels"):
        mnist_idx("test", **files)
    tests = {"test_images": str(tmp_path / "t10k-images-idx3-ubyte"),
             "test_labels": str(tmp_path / "t10k-labels-idx1-ubyte")}  # fmt: skip
    assert len(mnist_idx("test", **files, **tests)) == 3


# --- registration ---------------------------------------------------------------------------------


def test_registered_loaders_take_split_and_root(tmp_path):
    loaders = {dataset.name: dataset.load for dataset in DATASETS}
    save(tmp_path / "folder" / "train" / "cat" / "0.png", rgb())
    save(tmp_path / "pix" / "val" / "0.png", rgb(4, 8))
    save(tmp_path / "cycle" / "testA" / "0.png", rgb())
    save(tmp_path / "cycle" / "testB" / "0.png", rgb())
    save(tmp_path / "seg" / "images" / "0.png", rgb())
    save(tmp_path / "seg" / "masks" / "0.png", np.zeros((6, 8), dtype=np.uint8))
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", torch.zeros(2, 4, 4, dtype=torch.uint8))
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", torch.tensor([1, 2], dtype=torch.uint8))
    assert len(loaders["imagefolder"](split="train", root=str(tmp_path / "folder"))) == 1
    assert len(loaders["paired-images"](split="val", root=str(tmp_path / "pix"), direction="BtoA")) == 1
    assert len(loaders["unpaired-images"](split="test", root=str(tmp_path / "cycle"))) == 1
    assert len(loaders["image-mask-folder"](split="train", root=str(tmp_path / "seg"), num_classes=2)) == 1
    assert loaders["mnist-idx"](split="test", root=str(tmp_path / "mnist"))[1][1] == 2
    images, annotation_file, _ = coco_files(tmp_path)
    coco = loaders["coco"](split="train", images=str(images), annotations=str(annotation_file), masks=True)
    assert len(coco) == 2

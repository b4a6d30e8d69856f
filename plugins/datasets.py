"""The first-party datasets, registered through the builtin plugin's register_datasets hook exactly
as a third-party plugin's would be. Each `load(split, **options)` imports its module when called
(nothing here imports torch), and `data.options` in a run config are its keyword arguments.
"""

from __future__ import annotations

from typing import Any

from vision_kernels.family import Dataset, lazy


def coco(
    split: str = "train",
    root: str | None = None,
    year: str = "2017",
    images: str | None = None,
    annotations: str | None = None,
    masks: bool = False,
) -> Any:
    """COCO: `images` + `annotations` for one split, or the standard layout under `root`:
    root/<split><year>/ and root/annotations/instances_<split><year>.json."""
    from pathlib import Path

    from vision_kernels.data.formats.coco import CocoDetection

    if images is None or annotations is None:
        if root is None:
            raise ValueError(
                "coco needs data.options.root (the standard layout) or data.options.images and .annotations"
            )
        images = images or str(Path(root) / f"{split}{year}")
        annotations = annotations or str(Path(root) / "annotations" / f"instances_{split}{year}.json")
    return CocoDetection(images, annotations, masks=masks)


def mnist_idx(
    split: str = "train",
    root: str | None = None,
    images: str | None = None,
    labels: str | None = None,
    test_images: str | None = None,
    test_labels: str | None = None,
) -> Any:
    """MNIST idx files: the training files `images` + `labels` (and `test_images` + `test_labels`),
    or the standard names under root: root/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
    val is every 12th training image of each class, train the rest, test the test files whole (as
    fashion-mnist: the best checkpoint is never picked on the test set)."""
    from pathlib import Path

    from vision_kernels.data.embedded import IDX_VAL_EVERY, held_out
    from vision_kernels.data.formats.idx import MnistIdx

    if split == "test":
        images, labels = test_images, test_labels
    if images is None or labels is None:
        if root is None:
            needed = "test_images and .test_labels" if split == "test" else "images and .labels"
            raise ValueError(f"mnist-idx needs data.options.root or data.options.{needed} (split {split!r})")
        prefix = "t10k" if split == "test" else "train"

        def find(kind: str) -> str:
            for ext in ("", ".gz"):
                if (Path(root) / f"{prefix}-{kind}{ext}").exists():
                    return str(Path(root) / f"{prefix}-{kind}{ext}")
            return str(Path(root) / f"{prefix}-{kind}")  # MnistIdx names the missing file

        images, labels = images or find("images-idx3-ubyte"), labels or find("labels-idx1-ubyte")
    data = MnistIdx(images, labels)
    return data if split == "test" else data.subset(held_out(data.labels, split, IDX_VAL_EVERY))


EMBEDDED = "vision_kernels.data.embedded"
FORMATS = "vision_kernels.data.formats"
TRAIN_VAL = ("train", "val")

DATASETS = [
    Dataset("digits", "scikit-learn's 1797 8x8 handwritten digits (options: size)", lazy(EMBEDDED, "digits"),
            ("classification", "generation"), TRAIN_VAL),
    Dataset("opencv-digits", "5000 20x20 handwritten digits from Debian's opencv-doc (options: size, path)",
            lazy(EMBEDDED, "opencv_digits"), ("classification", "generation"), TRAIN_VAL),
    Dataset("fashion-mnist", "70000 28x28 clothing images from Debian's dataset-fashion-mnist; val: 5000 held out of "
            "train (options: root, size)",
            lazy(EMBEDDED, "fashion_mnist"), ("classification", "generation"), ("train", "val", "test")),
    Dataset("photos", "scikit-image's photos: chelsea, astronaut, coffee, ... (options: names, size)",
            lazy(EMBEDDED, "photos"), ("generation", "translation"), ("train",)),
    Dataset("textures", "scikit-image's textures: grass, gravel, brick (options: names, size)",
            lazy(EMBEDDED, "textures"), ("generation",), ("train",)),
    Dataset("horse", "scikit-image's horse silhouette on textures, as segmentation (options: count, size, seed)",
            lazy(EMBEDDED, "Horse"), ("segmentation",), TRAIN_VAL),
    Dataset("shapes", "synthetic shapes with class, box, semantic and instance masks (options: task, size, count, "
            "objects, classes, single, seed, deform, appearance)", lazy("vision_kernels.data.shapes", "ShapesDataset"),
            ("classification", "localization", "detection", "segmentation", "instance"), TRAIN_VAL),
    Dataset("imagefolder", "root/<class>/<image> (options: root, channels)", lazy(FORMATS, "ImageFolder"),
            ("classification", "generation"), TRAIN_VAL),
    Dataset("image-mask-folder", "root/images/x.png + root/masks/x.png (options: root, num_classes, classes, ...)",
            lazy(FORMATS, "ImageMaskFolder"), ("segmentation",), TRAIN_VAL),
    Dataset("voc-segmentation", "Pascal VOC SegmentationClass (options: root)", lazy(FORMATS, "VOCSegmentation"),
            ("segmentation",), TRAIN_VAL),
    Dataset("voc-detection", "Pascal VOC Annotations XML boxes (options: root)", lazy(FORMATS, "VOCDetection"),
            ("detection",), TRAIN_VAL),
    Dataset("coco", "COCO JSON: boxes, polygons, RLE masks (options: images, annotations per split, masks)",
            coco, ("detection", "instance"), TRAIN_VAL),
    Dataset("paired-images", "pix2pix layout: root/<split>/A|B side-by-side images (options: root, direction)",
            lazy(FORMATS, "PairedImages"), ("translation",), TRAIN_VAL),
    Dataset("unpaired-images", "CycleGAN layout: root/trainA, root/trainB (options: root)",
            lazy(FORMATS, "UnpairedImages"), ("translation",), ("train", "test")),
    Dataset("mnist-idx", "MNIST idx files (options: images, labels, test_images, test_labels; or root with the "
            "standard names); val: every 12th training image of each class",
            mnist_idx, ("classification", "generation"),
            ("train", "val", "test")),
]  # fmt: skip

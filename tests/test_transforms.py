"""Joint transforms (vision_kernels.data.transforms): image, masks and boxes stay aligned under every
transform, items keep their format, the U-Net elastic field has the paper's smoothness and magnitude,
config errors name the problem, and Transformed behaves like the dataset it wraps."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader
from torchvision import tv_tensors
from torchvision.transforms import v2

from vision_kernels.data.collate import detection_collate
from vision_kernels.data.shapes import ShapesDataset
from vision_kernels.data.transforms import (
    TRANSFORMS,
    ElasticGrid,
    JointTransform,
    Transformed,
    boxes_from_masks,
    build_transforms,
)

H, W = 48, 56
SPECS = {
    "hflip": [{"hflip": {"p": 1.0}}],
    "vflip": [{"vflip": {"p": 1.0}}],
    "random_crop": [{"random_crop": {"size": 32}}],
    "random_crop_padded": [{"random_crop": {"size": [56, 64]}}],
    "random_resized_crop": [{"random_resized_crop": {"size": 40, "scale": [0.3, 1.0]}}],
    "scale": [{"scale": {"range": [0.6, 1.5]}}],
    "shift": [{"shift": {"fraction": 0.2}}],
    "resize": [{"resize": {"size": [36, 30]}}],
    "rotation": [{"rotation": {"degrees": 40}}],
    "elastic": [{"elastic": {"sigma": 3.0}}],
    "composition": [
        "hflip",
        {"rotation": {"degrees": 20}},
        {"random_crop": {"size": 40}},
        {"elastic": {"sigma": 2}},
        "color_jitter",
    ],  # fmt: skip
}


@pytest.fixture(autouse=True)
def _one_thread():
    """These images are tiny; on this 2-core machine waking torch's thread pool for each small
    matmul (torchvision's affine grids) costs ~20 ms, 100x the work. DataLoader workers run with
    one thread too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _scene(x0: int, y0: int, x1: int, y1: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A dark image with one bright filled rectangle [x0, x1) x [y0, y1), as an instance item."""
    image = torch.full((3, H, W), 0.1)
    image[:, y0:y1, x0:x1] = 0.9
    masks = torch.zeros(1, H, W, dtype=torch.bool)
    masks[0, y0:y1, x0:x1] = True
    target = {
        "boxes": torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32),
        "labels": torch.tensor([2]),
        "masks": masks,
        "semantic": masks[0].long() * 3,
    }
    return image, target


def _boundary(mask: torch.Tensor) -> torch.Tensor:
    """Pixels within one pixel of the mask's edge (where interpolated image values may cross 0.5);
    the picture's border counts as an edge (the image blends with the fill beyond it)."""
    m = F.pad(mask.float()[None, None], (1, 1, 1, 1))
    dilated = F.max_pool2d(m, 3, 1)[0, 0] > 0
    eroded = -F.max_pool2d(-m, 3, 1)[0, 0] > 0
    return dilated & ~eroded


rectangles = st.tuples(st.integers(0, W - 8), st.integers(0, H - 8), st.integers(6, 30), st.integers(6, 30)).map(
    lambda r: (r[0], r[1], min(r[0] + r[2], W), min(r[1] + r[3], H))
)


@pytest.mark.parametrize("name", list(SPECS))
@settings(max_examples=12, deadline=None)
@given(rect=rectangles, seed=st.integers(0, 2**31 - 1))
def test_image_masks_and_boxes_stay_aligned(name, rect, seed):
    image, target = _scene(*rect)
    torch.manual_seed(seed)
    out_image, out = build_transforms(SPECS[name])((image, target))
    assert out_image.dtype == torch.float32 and out_image.shape[0] == 3
    assert out["masks"].dtype == torch.bool and out["semantic"].dtype == torch.int64
    assert out["masks"].shape[-2:] == out["semantic"].shape == out_image.shape[-2:]
    assert len(out["boxes"]) == len(out["labels"]) == len(out["masks"]) <= 1
    semantic_object = out["semantic"] == 3
    assert set(out["semantic"].unique().tolist()) <= {0, 3, 255}
    if len(out["boxes"]) == 0:  # the object left the picture: its box, label and mask went with it
        x0, y0, x1, y1 = boxes_from_masks(semantic_object[None])[0].tolist()
        assert min(x1 - x0, y1 - y0) <= 2  # at most a sliver that the box (< 1 px) no longer covers
        return
    assert out["labels"].tolist() == [2]
    assert torch.equal(out["masks"][0], semantic_object)
    mask_box = boxes_from_masks(out["masks"])
    assert torch.allclose(out["boxes"], mask_box, atol=2.0), (out["boxes"], mask_box)
    # The bright pixels are the object's pixels, except along its edge where the image interpolates.
    if name != "composition":  # (colour jitter moves the brightness)
        disagree = (out_image[0] > 0.5) != semantic_object
        assert not (disagree & ~_boundary(semantic_object)).any()


@pytest.mark.parametrize("name", ["rotation", "elastic", "scale", "hflip"])
def test_boxes_without_masks_enclose_the_object(name):
    """A detection target has no masks to take boxes from: the transformed box still bounds the
    moved object closely (rotation: torchvision's rotated corners; elastic: the warped box region)."""
    image, target = _scene(10, 12, 34, 30)
    for seed in range(5):
        torch.manual_seed(seed)
        both_image, both = build_transforms(SPECS[name])((image, target))
        torch.manual_seed(seed)
        _, detection = build_transforms(SPECS[name])((image, {"boxes": target["boxes"], "labels": target["labels"]}))
        assert set(detection) == {"boxes", "labels"}
        tight = boxes_from_masks(both["masks"])
        assert torch.allclose(detection["boxes"], tight, atol=2.0), (detection["boxes"], tight)


def test_item_formats_are_kept():
    image, target = _scene(5, 5, 25, 20)
    hflip = build_transforms([{"hflip": {"p": 1.0}}])
    flipped, label = hflip((image, 7))
    assert label == 7 and torch.equal(flipped, image.flip(-1))
    mask = target["semantic"]
    out_image, out_mask = hflip((image, mask))
    assert torch.equal(out_mask, mask.flip(-1)) and out_mask.dtype == torch.int64
    a, b = hflip((image, image.clone()))  # a paired image (pix2pix) moves with the first
    assert torch.equal(a, b)
    assert torch.equal(hflip(image), image.flip(-1))  # a bare image
    _, loc = hflip((image, {"label": 1, "box": torch.tensor([5.0, 5.0, 25.0, 20.0])}))
    assert loc["label"] == 1 and loc["box"].tolist() == [W - 25.0, 5.0, W - 5.0, 20.0]
    for item in (hflip([image, 7]), hflip((image, 7, "extra"))):
        assert item[1:] == [7] or item[1:] == (7, "extra")
    with pytest.raises(TypeError, match="an image or an \\(image, target, ...\\) item"):
        hflip("not an item")


def test_outside_pixels_are_ignored_in_semantic_masks_only():
    image, target = _scene(0, 0, W, H)  # the object fills the picture
    rotate = build_transforms([{"rotation": {"degrees": [45, 45]}}])
    out_image, out = rotate((image, target))
    corner = (slice(0, 3), slice(0, 3))
    assert (out["semantic"][corner] == 255).all() and not out["masks"][0][corner].any()
    assert (out_image[:, 0:3, 0:3] == 0).all()
    _, mask = build_transforms([{"rotation": {"degrees": [45, 45]}}], outside=0)((image, target["semantic"]))
    assert (mask[corner] == 0).all() and set(mask.unique().tolist()) == {0, 3}
    _, padded = build_transforms([{"random_crop": {"size": 64}}])((image, torch.full((H, W), 255)))
    assert (padded == 255).all()  # an ignored label stays ignored


def test_degenerate_boxes_go_with_every_per_box_entry():
    image = torch.zeros(3, 40, 40)
    masks = torch.zeros(2, 40, 40, dtype=torch.bool)
    masks[0, 0:5, 0:5] = True  # outside the centre crop
    masks[1, 15:25, 15:25] = True
    target = {
        "boxes": torch.tensor([[0.0, 0.0, 5.0, 5.0], [15.0, 15.0, 25.0, 25.0]]),
        "labels": torch.tensor([4, 5]),
        "iscrowd": torch.tensor([0, 1]),
        "masks": masks,
        "image_id": 17,
    }
    _, out = JointTransform(v2.CenterCrop(20))((image, target))
    assert out["labels"].tolist() == [5] and out["iscrowd"].tolist() == [1] and out["image_id"] == 17
    assert out["boxes"].tolist() == [[5.0, 5.0, 15.0, 15.0]] and out["masks"].shape == (1, 20, 20)


def test_elastic_field_is_smooth_and_has_the_configured_magnitude():
    """U-Net: Gaussian vectors (sigma px) on a 3x3 grid, bicubic in between. At the grid nodes (corner
    and centre pixels) the field has standard deviation sigma; between them it changes slowly."""
    g = torch.Generator().manual_seed(0)
    for sigma in (10.0, 4.0):
        elastic = ElasticGrid(sigma=sigma)
        fields = torch.stack([elastic.displacement(65, 65, g) for _ in range(300)])  # [300, 2, 65, 65]
        assert fields.shape[1:] == (2, 65, 65)
        for y, x in ((0, 0), (0, 64), (32, 32), (64, 32)):
            assert abs(fields[:, :, y, x].std().item() - sigma) < 0.1 * sigma
        assert abs(fields.mean().item()) < 0.1 * sigma
        steps = torch.cat(
            [(fields[..., 1:] - fields[..., :-1]).flatten(), (fields[..., 1:, :] - fields[..., :-1, :]).flatten()]
        )
        assert steps.abs().max() < 0.3 * sigma and steps.abs().mean() < 0.05 * sigma
    assert torch.equal(ElasticGrid(sigma=0).displacement(8, 9), torch.zeros(2, 8, 9))


def test_elastic_composes_with_torchvision_and_keeps_labels():
    image = torch.rand(3, 32, 32)
    mask = tv_tensors.Mask(torch.randint(0, 4, (32, 32)))
    torch.manual_seed(0)
    out_image, out_mask = v2.Compose([v2.RandomHorizontalFlip(), ElasticGrid(sigma=2.0)])(tv_tensors.Image(image), mask)
    assert isinstance(out_image, tv_tensors.Image) and isinstance(out_mask, tv_tensors.Mask)
    assert set(out_mask.unique().tolist()) <= {0, 1, 2, 3}  # nearest: no blended labels
    identity = ElasticGrid(sigma=0.0)(tv_tensors.Image(image))
    assert torch.allclose(identity, image, atol=1e-5)
    assert ElasticGrid(p=0.0)(tv_tensors.Image(image)) is not None
    assert torch.equal(ElasticGrid(p=0.0)(tv_tensors.Image(image)), image)
    with pytest.raises(ValueError, match="grid must be an integer >= 2"):
        ElasticGrid(grid=1)


def test_unknown_names_and_bad_options_are_named():
    with pytest.raises(ValueError, match=f"unknown transform 'hflp'; valid transforms: {', '.join(TRANSFORMS)}"):
        build_transforms(["hflp"])
    with pytest.raises(ValueError, match="transform 'random_crop': unknown option\\(s\\) sz; options: size, pad_if"):
        build_transforms([{"random_crop": {"sz": 3}}])
    with pytest.raises(ValueError, match="transform 'random_crop' needs option\\(s\\) size"):
        build_transforms(["random_crop"])
    with pytest.raises(ValueError, match="transform 'rotation': bad options"):
        build_transforms([{"rotation": {"degrees": -5}}])
    with pytest.raises(ValueError, match="transform 'hflip': options must be a mapping"):
        build_transforms([{"hflip": 0.5}])
    with pytest.raises(ValueError, match="one name"):
        build_transforms([{"hflip": {}, "vflip": {}}])
    assert "elastic" in TRANSFORMS and build_transforms("hflip").boxes_from_masks is False
    assert build_transforms(["hflip", "elastic"]).boxes_from_masks is True


def test_transformed_forwards_attributes_and_pickles():
    dataset = ShapesDataset(task="instance", count=6, size=32)
    wrapped = Transformed(dataset, build_transforms(["hflip", {"elastic": {"sigma": 2}}]))
    assert len(wrapped) == 6 and wrapped.classes == dataset.classes and wrapped.collate_fn is detection_collate
    assert wrapped.scene(0).labels.tolist() == dataset.scene(0).labels.tolist()
    with pytest.raises(AttributeError):
        wrapped.no_such_attribute  # noqa: B018
    copy = pickle.loads(pickle.dumps(wrapped))
    torch.manual_seed(3)
    image, target = wrapped[2]
    torch.manual_seed(3)
    image2, target2 = copy[2]
    assert torch.equal(image, image2) and torch.equal(target["masks"], target2["masks"])
    # Instance masks, semantic mask and labels still agree after the deformation.
    expected = ((target["labels"] + 1)[:, None, None] * target["masks"]).sum(0)
    known = target["semantic"] != 255
    assert torch.equal(target["semantic"][known], expected[known])


def test_worker_augmentations_replay_with_a_seeded_loader():
    wrapped = Transformed(ShapesDataset(task="segmentation", count=8, size=32), build_transforms(["elastic"]))

    def batches() -> list[torch.Tensor]:
        loader = DataLoader(wrapped, batch_size=4, num_workers=2, generator=torch.Generator().manual_seed(5))
        return [masks for _, masks in loader]

    first, second = batches(), batches()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))

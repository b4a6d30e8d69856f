"""The U-Net core (plugins/unet: model, weights, loss, tiling) against the paper's numbers and
brute-force references: 572 -> 388 at depth 4, the border weight map from a direct distance loop,
and overlap-tile inference that equals one whole-image pass (no seams)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vision_kernels.nn import ConvTransposeNormAct2d
from vision_kernels.plugins.unet.loss import center_crop, dice_loss, weighted_cross_entropy
from vision_kernels.plugins.unet.model import UNet
from vision_kernels.plugins.unet.tiling import default_context, overlap_tile, reflect_index, whole_image
from vision_kernels.plugins.unet.weights import border_term, weight_map, weight_maps


def tiny(**kwargs) -> UNet:
    torch.manual_seed(0)
    options = dict(in_channels=1, num_classes=3, depth=2, base_width=4, dropout=0.0) | kwargs
    return UNet(**options)


# Geometry ---------------------------------------------------------------------------------------------


def test_paper_geometry_572_to_388():
    model = tiny(depth=4, base_width=2)
    assert model.margin == 92 and model.output_size(572) == 388 and model.input_size_for(388) == 572
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 572, 572)).shape == (1, 3, 388, 388)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_valid_geometry(depth):
    model = tiny(depth=depth, base_width=2)
    assert model.margin == 6 * 2**depth - 4
    for wanted in (1, 5, 17, 40):
        size = model.input_size_for(wanted)
        out = model.output_size(size)
        assert out >= wanted and size - out == 2 * model.margin and (size + 4) % 2**depth == 0
        # Minimal: the next smaller candidate input is invalid or gives too small an output.
        smaller = size - 2**depth
        assert smaller < 1 or model._trace(smaller) is None or model._trace(smaller) < wanted
    size = model.input_size_for(9)
    with torch.no_grad():
        out = model(torch.zeros(2, 1, size, size + 2**depth))
    assert out.shape == (2, 3, model.output_size(size), model.output_size(size + 2**depth))


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_same_geometry(depth):
    model = tiny(depth=depth, base_width=2, padding="same")
    assert model.margin == 0 and model.output_size(64) == 64 and model.input_size_for(50) == _up(50, 2**depth)
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 3, 64, 64)


def _up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def test_bad_sizes_name_themselves_and_the_nearest_valid_ones():
    valid = UNet(depth=4, base_width=2)
    with pytest.raises(ValueError, match=r"573.*572 or 588"):
        valid.output_size(573)
    with pytest.raises(ValueError, match=r"input width 301 .*300 or 316"):
        valid(torch.zeros(1, 1, 572, 301))
    with pytest.raises(
        ValueError, match=r"input size 20 .*smallest valid input size is 188"
    ):  # below the smallest valid input
        valid.output_size(20)
    same = UNet(depth=4, base_width=2, padding="same")
    with pytest.raises(ValueError, match=r"input height 65 .*divisible by 2\*\*depth = 16.*64 or 80"):
        same(torch.zeros(1, 1, 65, 64))
    with pytest.raises(ValueError, match="expected input"):
        same(torch.zeros(1, 3, 64, 64))
    for bad in (dict(padding="full"), dict(depth=0), dict(dropout=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            UNet(**bad)


def test_he_initialisation():
    model = UNet(depth=2, base_width=32)
    conv = model.encoder[1][0]  # 32 -> 64 channels, 3x3: N = 288
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 288), rel=0.05)
    up = model.up[0]  # 128 -> 64, 2x2 stride 2: each output pixel sees 128 inputs
    assert up.weight.std().item() == pytest.approx(math.sqrt(2 / 128), rel=0.05)
    assert not conv.bias.detach().any()


# Batch norm, fused or not; dropout -----------------------------------------------------------------


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_fused_and_unfused_batch_norm_up_convolutions_agree(padding):
    fused, plain = (
        tiny(batch_norm=True, fused=True, padding=padding),
        tiny(batch_norm=True, fused=False, padding=padding),
    )
    assert all(isinstance(up, ConvTransposeNormAct2d) for up in fused.up)
    assert all(type(up) is nn.Sequential for up in plain.up)
    assert fused.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(fused.state_dict())
    size = 44 if padding == "valid" else 32
    x = torch.randn(2, 1, size, size)
    for _ in range(2):  # training mode: batch statistics, running statistics updated alike
        torch.testing.assert_close(fused.train()(x), plain.train()(x), rtol=1e-4, atol=1e-5)
    for key, value in fused.state_dict().items():
        torch.testing.assert_close(value, plain.state_dict()[key], rtol=1e-5, atol=1e-6, msg=key)
    with torch.no_grad():
        torch.testing.assert_close(fused.eval()(x), plain.eval()(x), rtol=1e-4, atol=1e-5)



@pytest.mark.parametrize("fused", [True, False])
def test_channels_last_gives_the_same_outputs_and_gradients(fused):
    torch.manual_seed(0)
    nchw = tiny(batch_norm=True, fused=fused, padding="same", dropout=0.0)
    nhwc = tiny(batch_norm=True, fused=fused, padding="same", dropout=0.0, channels_last=True)
    nhwc.load_state_dict(nchw.state_dict())
    assert nhwc.head.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 1, 32, 32)
    out_nchw, out_nhwc = nchw(x), nhwc(x)
    assert out_nhwc.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_nhwc, out_nchw, rtol=1e-4, atol=1e-5)
    out_nchw.square().sum().backward()
    out_nhwc.square().sum().backward()
    for (name, a), b in zip(nchw.named_parameters(), nhwc.parameters(), strict=True):
        # Summation order differs between the layouts: compare against the gradient's own scale.
        scale = a.grad.abs().max().item()
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5 * scale, msg=name)

def test_dropout_only_at_the_end_of_the_contracting_path():
    model = tiny(dropout=0.5, base_width=4, depth=2)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts == [model.dropout] and model.dropout.p == 0.5
    seen = []
    model.dropout.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[1]))
    model.train()(torch.randn(1, 1, 44, 44))
    assert seen == [4 * 2**2]  # the bottom feature map
    off = tiny(dropout=0.0)
    x = torch.randn(1, 1, 44, 44)
    torch.testing.assert_close(off.train()(x), off.eval()(x))


# Weight map -------------------------------------------------------------------------------------------


def _brute_force_border(instances: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """w0 exp(-(d1 + d2)^2 / 2 sigma^2) on background pixels, distances by a direct loop."""
    _, height, width = instances.shape
    border = np.zeros((height, width))
    points = [np.argwhere(mask) for mask in instances]
    for y in range(height):
        for x in range(width):
            if instances[:, y, x].any():
                continue
            d = sorted(np.sqrt(((p - (y, x)) ** 2).sum(1)).min() for p in points)
            border[y, x] = w0 * math.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2))
    return border


def _two_squares() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 4x4 objects 2 px apart (columns 5 and 6 between them) on a 12x12 grid."""
    instances = torch.zeros(2, 12, 12, dtype=torch.bool)
    instances[0, 4:8, 1:5] = True
    instances[1, 4:8, 7:11] = True
    semantic = instances.any(0).long()
    return semantic, instances


def test_weight_map_matches_a_brute_force_distance_loop():
    semantic, instances = _two_squares()
    w0, sigma = 10.0, 5.0
    weights = weight_map(semantic, instances, num_classes=2, w0=w0, sigma=sigma)
    # Class balance by hand: 112 background, 32 object pixels, each class gets half the total weight.
    class_weight = torch.where(semantic == 1, 144 / (2 * 32), 144 / (2 * 112))
    expected = class_weight + torch.from_numpy(_brute_force_border(instances.numpy(), w0, sigma)).float()
    assert weights.dtype == torch.float32 and weights.shape == (12, 12)
    torch.testing.assert_close(weights, expected, rtol=1e-5, atol=1e-5)
    # One pixel by hand: (5, 5) is 1 px from the left object and 2 px from the right one.
    assert weights[5, 5].item() == pytest.approx(144 / 224 + 10 * math.exp(-9 / 50), rel=1e-6)
    border = weights - class_weight
    top = border.max()
    assert (border == top).nonzero()[:, 1].unique().tolist() == [5, 6]  # highest in the gap
    assert border[semantic == 1].abs().max() == 0  # only on background pixels


def test_weight_map_class_balance_mean_one_ignore_zero_and_no_border_without_two_objects():
    semantic, instances = _two_squares()
    semantic[0, :] = 255
    weights = weight_map(semantic, None, num_classes=2)
    valid = semantic != 255
    assert weights[~valid].abs().max() == 0
    assert weights[valid].mean().item() == pytest.approx(1.0, rel=1e-6)
    assert weights[semantic == 0].sum().item() == pytest.approx(weights[semantic == 1].sum().item(), rel=1e-6)
    with_objects = weight_map(semantic, instances, num_classes=2)
    assert with_objects[~valid].abs().max() == 0 and with_objects[valid].mean() > 1
    one = weight_map(semantic, instances[:1], num_classes=2)  # a single object: no border term
    torch.testing.assert_close(one, weights)
    flat = weight_map(semantic, instances, num_classes=2, class_balance=False, w0=0.0)
    torch.testing.assert_close(flat, valid.float())
    batch = weight_maps(torch.stack([semantic, semantic]), [instances, instances[:0]], num_classes=2)
    torch.testing.assert_close(batch, torch.stack([with_objects, weights]))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        weight_map(semantic + 1, None, num_classes=2)




def test_border_term_is_what_the_instances_add_to_the_weight_map():
    semantic, instances = _two_squares()
    added = weight_map(semantic, instances, num_classes=2) - weight_map(semantic, None, num_classes=2)
    valid = semantic != 255
    torch.testing.assert_close(border_term(instances)[valid], added[valid], rtol=1e-5, atol=1e-5)
    assert border_term(instances[:1]).abs().max() == 0  # one object: no gaps
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        border_term(instances[0])

def test_weight_map_class_balance_power_interpolates_between_none_and_full():
    semantic, _ = _two_squares()
    valid = semantic != 255
    counts = torch.bincount(semantic[valid].flatten(), minlength=2).double()
    for power in (0.0, 0.25, 0.5, 1.0):
        weights = weight_map(semantic, None, num_classes=2, class_balance=power).double()
        assert weights[valid].mean().item() == pytest.approx(1.0, rel=1e-6)
        # The ratio of a background pixel's weight to an object pixel's is (n_object / n_background)**p.
        ratio = weights[semantic == 0][0] / weights[semantic == 1][0]
        assert ratio.item() == pytest.approx((counts[1] / counts[0]).item() ** power, rel=1e-6)
    torch.testing.assert_close(weight_map(semantic, None, 2, class_balance=True), weight_map(semantic, None, 2, 1.0))
    with pytest.raises(ValueError, match="class_balance"):
        weight_map(semantic, None, num_classes=2, class_balance=1.5)

# Losses -----------------------------------------------------------------------------------------------


def test_weighted_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    target[0, :2] = 255
    reference = F.cross_entropy(logits, target, ignore_index=255)
    torch.testing.assert_close(weighted_cross_entropy(logits, target, torch.ones(2, 8, 8)), reference)
    torch.testing.assert_close(weighted_cross_entropy(logits, target, None), reference)
    weight = torch.rand(2, 8, 8)
    valid = target != 255
    ce = F.cross_entropy(logits, target, reduction="none", ignore_index=255)
    expected = (weight * ce)[valid].sum() / weight[valid].sum()
    torch.testing.assert_close(weighted_cross_entropy(logits, target, weight), expected)
    assert weighted_cross_entropy(logits, torch.full_like(target, 255)).item() == 0.0
    with pytest.raises(ValueError, match="center_crop"):
        weighted_cross_entropy(logits, torch.zeros(2, 10, 10, dtype=torch.long))


def test_dice_loss_and_center_crop():
    target = torch.randint(0, 3, (2, 16, 16))
    perfect = 30.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    wrong = 30.0 * F.one_hot((target + 1) % 3, 3).permute(0, 3, 1, 2).float()
    assert dice_loss(wrong, target).item() > 0.99
    ignored = target.clone()
    ignored[:, :8] = 255
    mixed = torch.cat([wrong[:, :, :8], perfect[:, :, 8:]], dim=2)  # wrong only where ignored
    assert dice_loss(mixed, ignored).item() == pytest.approx(0.0, abs=1e-6)
    t = torch.arange(36).reshape(1, 6, 6)
    assert center_crop(t, 2).tolist() == [[[14, 15], [20, 21]]]
    with pytest.raises(ValueError, match="at most 6x6"):
        center_crop(t, (7, 2))


# Overlap-tile inference -------------------------------------------------------------------------------


def test_reflect_index_is_numpys_reflect_for_any_margin():
    for size, pad in ((5, 2), (5, 13), (1, 3), (2, 7)):
        expected = np.pad(np.arange(size), pad, mode="reflect")
        assert reflect_index(-pad, size + 2 * pad, size).tolist() == expected.tolist()
    x = torch.randn(1, 1, 9, 9)
    torch.testing.assert_close(
        x[..., reflect_index(-4, 17, 9), :][..., reflect_index(-4, 17, 9)], F.pad(x, (4, 4, 4, 4), mode="reflect")
    )


@pytest.mark.parametrize("size", [(37, 50), (64, 64), (20, 13), (3, 5)])
def test_overlap_tile_equals_whole_image_valid_padding(size):
    model = tiny(depth=2, base_width=4)
    images = torch.randn(2, 1, *size)
    with torch.no_grad():
        reference = whole_image(model.eval(), images)
    for tile_output, batch_size in ((16, 3), (10, 4), (None, 2)):  # 10 -> 12, a multiple of 2**depth
        tiled = overlap_tile(model, images, tile_output=tile_output, batch_size=batch_size)
        assert tiled.shape == (2, 3, *size)
        torch.testing.assert_close(tiled, reference, rtol=1e-5, atol=1e-5)


def test_overlap_tile_same_padding_with_receptive_field_context_is_exact():
    model = tiny(depth=2, base_width=4, padding="same")
    images = torch.randn(1, 1, 45, 30)
    context = default_context(model.depth)
    with torch.no_grad():
        reference = whole_image(model.eval(), images, context=context)
        bare = whole_image(model, images)  # zero padding at the image border: differs there only
    tiled = overlap_tile(model, images, tile_output=16, batch_size=4)
    torch.testing.assert_close(tiled, reference, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(tiled, bare)  # the context matters near the border


def test_default_context_covers_the_same_padding_receptive_field():
    """Structural receptive field (positive weights and inputs, average pooling: every dependence
    has a non-zero gradient) of output pixels at every pooling phase."""
    depth = 2
    model = tiny(depth=depth, padding="same").double()
    model.pool = nn.AvgPool2d(2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.abs_()
    radius, size = 0, 96
    for phase in range(2**depth):
        x = torch.rand(1, 1, size, size, dtype=torch.float64, requires_grad=True)
        centre = size // 2 + phase
        model(x)[0, 0, centre, centre].backward()
        reached = x.grad[0, 0].sum(0).nonzero().flatten()
        radius = max(radius, centre - reached.min().item(), reached.max().item() - centre)
    assert radius == 7 * 2**depth - 5 <= default_context(depth)


def test_overlap_tile_memory_is_bounded_by_tile_and_batch():
    model = tiny(depth=2, base_width=2, num_classes=2)
    shapes = []
    model.register_forward_pre_hook(lambda module, inputs: shapes.append(tuple(inputs[0].shape)))
    model.train()
    out = overlap_tile(model, torch.randn(1, 1, 1024, 1024), tile_output=128, batch_size=4, num_classes=2)
    assert out.shape == (1, 2, 1024, 1024) and model.training  # mode restored
    tile_input = model.input_size_for(128)
    assert len(shapes) == math.ceil(64 / 4)  # 8 x 8 tiles, 4 per pass
    assert all(n <= 4 and (h, w) == (tile_input, tile_input) for n, _, h, w in shapes)
    with pytest.raises(ValueError, match="num_classes is 3"):
        overlap_tile(model, torch.randn(1, 1, 8, 8), num_classes=3)

"""The U-Net of Ronneberger et al. (2015), section 2 and Fig. 1.

Contracting path: per level two 3x3 convolutions, each followed by a ReLU, then a 2x2 max-pool with
stride 2; the number of feature channels doubles at each level (base_width * 2**level). Expanding
path: a 2x2 up-convolution that halves the channels, a concatenation with the correspondingly
cropped feature map of the contracting path, two 3x3 convolutions + ReLU; a final 1x1 convolution
maps to the class logits. "Drop-out layers at the end of the contracting path" (section 3.1).

Padding: "valid" is the paper's (no padding; every convolution loses a border pixel, so the output
is smaller than the input: 572 -> 388 at depth 4, and only some input sizes work: every max-pool
must see an even size); "same" pads every 3x3 convolution by 1 (output size = input size, the input
must be divisible by 2**depth). `output_size`, `input_size_for` and `margin` describe the geometry;
tiling.py relies on them.

batch_norm adds BatchNorm2d after every convolution (not in the paper, common since); the
up-convolution then is the toolkit's fused ConvTranspose2d + BatchNorm2d + ReLU module
(vision_kernels.nn.ConvTransposeNormAct2d) when `fused`, else the same three layers as a plain
nn.Sequential: same parameters, same state_dict keys, same results.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vision_kernels.nn import ConvTransposeNormAct2d

from .loss import center_crop

PADDINGS = ("valid", "same")


def double_conv(in_channels: int, out_channels: int, padding: int, batch_norm: bool) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by (BatchNorm2d and) a ReLU. With batch norm the
    convolutions have no bias (the norm's shift replaces it)."""
    layers: list[nn.Module] = []
    for channels in (in_channels, out_channels):
        layers.append(nn.Conv2d(channels, out_channels, 3, padding=padding, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def up_conv(in_channels: int, out_channels: int, batch_norm: bool, fused: bool) -> nn.Module:
    """The 2x2 up-convolution (stride 2: doubles the size, halves the channels). Plain, as in the
    paper, without batch norm; with it, ConvTranspose2d + BatchNorm2d + ReLU, fused or not."""
    if not batch_norm:
        return nn.ConvTranspose2d(in_channels, out_channels, 2, 2)
    if fused:
        return ConvTransposeNormAct2d(in_channels, out_channels, 2, 2, norm="batch", activation="relu", bias=False)
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 2, 2, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()
    )


def he_init(module: nn.Module) -> None:
    """The paper (section 3): weights from a Gaussian with standard deviation sqrt(2/N), N the number
    of incoming nodes of one neuron. For a convolution N = in_channels/groups * kh * kw; for a
    transposed convolution each output pixel receives in_channels/groups * (kh/sh) * (kw/sw) inputs
    (in_channels for the 2x2, stride-2 up-convolution), which torch's fan-in formula for transposed
    weights does not give, so N is computed here. Biases start at 0."""
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        sh, sw = module.stride
        fan_in = module.in_channels // module.groups * max(kh // sh, 1) * max(kw // sw, 1)
    elif isinstance(module, nn.Conv2d):
        fan_in = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
    else:
        return
    nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_in))
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class UNet(nn.Module):
    """U-Net: `depth` max-pool steps (the paper: 4), channels base_width * 2**level (the paper: 64 at
    the top, 1024 at the bottom), num_classes logits per output pixel.

    Args:
        in_channels: image channels (the paper: 1, grey-scale microscopy).
        num_classes: output logits per pixel (the paper: 2, cell / background).
        depth: number of 2x2 max-pools in the contracting path (= up-convolutions in the expanding one).
        base_width: channels of the first level.
        padding: "valid" (the paper: output smaller than input) or "same" (output size = input size).
        batch_norm: BatchNorm2d after every convolution and up-convolution (not in the paper).
        dropout: probability of the dropout at the end of the contracting path (on the bottom
            feature map); 0 disables it.
        fused: with batch_norm, use the fused ConvTranspose2d + BatchNorm2d + ReLU module.
        channels_last: keep weights and activations in channels-last (NHWC) memory order, which
            oneDNN on CPUs and cuDNN on tensor-core GPUs convolve faster (benchmarks/test_unet_step.py
            on a 2-core CPU: a training step 1.15x faster in fp32, 1.7x with bf16 autocast than
            fp32 NCHW); same numbers either way.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        depth: int = 4,
        base_width: int = 64,
        padding: str = "valid",
        batch_norm: bool = False,
        dropout: float = 0.5,
        fused: bool = True,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("depth", depth),
            ("base_width", base_width),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        self.in_channels, self.num_classes, self.depth, self.padding = in_channels, num_classes, depth, padding
        conv_padding = 1 if padding == "same" else 0
        widths = [base_width * 2**level for level in range(depth + 1)]

        self.encoder = nn.ModuleList(
            double_conv(c_in, c_out, conv_padding, batch_norm)
            for c_in, c_out in zip([in_channels, *widths[:-2]], widths[:-1], strict=True)
        )
        self.pool = nn.MaxPool2d(2)
        self.bottom = double_conv(widths[-2], widths[-1], conv_padding, batch_norm)
        self.dropout = nn.Dropout(dropout)
        # Deepest first: up[i] and decoder[i] bring level depth - i back to level depth - i - 1.
        levels = range(depth - 1, -1, -1)
        self.up = nn.ModuleList(up_conv(widths[lvl + 1], widths[lvl], batch_norm, fused) for lvl in levels)
        self.decoder = nn.ModuleList(
            double_conv(2 * widths[lvl], widths[lvl], conv_padding, batch_norm) for lvl in levels
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.apply(he_init)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    # Geometry ---------------------------------------------------------------------------------------

    @property
    def margin(self) -> int:
        """Pixels the valid-padding network loses on each side: (input - output) / 2, 92 at depth 4
        (572 -> 388); 0 for same padding. Per side, each 3x3 convolution at level l costs 2**l input
        pixels: 2 * (2**depth - 1) in the contracting path, 2 * 2**depth at the bottom and again
        2 * (2**depth - 1) in the expanding path, 6 * 2**depth - 4 in all."""
        return 6 * 2**self.depth - 4 if self.padding == "valid" else 0

    def _trace(self, size: int) -> int | None:
        """The output size for an input size, following the layers; None when a max-pool would see
        an odd size or a feature map would vanish."""
        if self.padding == "same":
            return size if size > 0 and size % 2**self.depth == 0 else None
        for _ in range(self.depth):
            size -= 4
            if size <= 0 or size % 2:
                return None
            size //= 2
        size -= 4  # the bottom level's two convolutions
        for _ in range(self.depth):
            if size <= 0:
                return None
            size = 2 * size - 4
        return size if size > 0 else None

    def _valid_inputs_near(self, size: int) -> tuple[int | None, int]:
        """The largest valid input size <= size (None if there is none) and the smallest >= size."""
        step = 2**self.depth
        if self.padding == "same":
            below = size // step * step
            return (below or None), max(-(-size // step) * step, step)
        # Valid sizes are 2**depth * (bottom + 8) - 4: every bottom size whose expanding path survives.
        smallest = self.input_size_for(1)
        below = (size + 4) // step * step - 4
        above = -(-(size + 4) // step) * step - 4
        return (below if below >= smallest else None), max(above, smallest)

    def _size_error(self, what: str, size: int) -> ValueError:
        below, above = self._valid_inputs_near(size)
        if below is None:
            nearest = f"the smallest valid input size is {above}"
        else:
            nearest = f"the nearest valid input sizes are {below} or {above}"
        step = 2**self.depth
        if self.padding == "same":
            rule = f"divisible by 2**depth = {step}"
        else:
            rule = f"2**depth * k - 4 = {step} * k - 4 with k >= {(self.input_size_for(1) + 4) // step}"
        return ValueError(
            f"{what} {size} does not fit a depth-{self.depth} U-Net with {self.padding} padding: input sizes must "
            f"be {rule}; {nearest}"
        )

    def output_size(self, input_size: int) -> int:
        """The output height (width) for an input height (width). Raises ValueError naming the size
        and the nearest valid ones when a max-pool would see an odd size (valid padding) or the size
        is not divisible by 2**depth (same padding)."""
        output = self._trace(int(input_size))
        if output is None:
            raise self._size_error("input size", int(input_size))
        return output

    def input_size_for(self, output_size: int) -> int:
        """The smallest valid input size whose output is at least `output_size` (for valid padding
        the output is then output_size rounded up to a valid output size, 2**depth * j + 4)."""
        if int(output_size) < 1:
            raise ValueError(f"output_size must be a positive int, got {output_size!r}")
        step = 2**self.depth
        if self.padding == "same":
            return max(-(-int(output_size) // step) * step, step)
        size = -(-(int(output_size) + 2 * self.margin + 4) // step) * step - 4  # a valid size, if big enough
        while self._trace(size) is None:  # only for tiny outputs whose bottom level would vanish
            size += step
        return size

    # Forward ----------------------------------------------------------------------------------------

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}")
        for name, size in zip(("height", "width"), x.shape[-2:], strict=True):
            if self._trace(int(size)) is None:
                raise self._size_error(f"input {name}", int(size))

    def forward(self, x: Tensor) -> Tensor:
        """[B, in_channels, H, W] -> [B, num_classes, output_size(H), output_size(W)] logits."""
        self._check_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        skips: list[Tensor] = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.dropout(self.bottom(x))
        for up, block, skip in zip(self.up, self.decoder, reversed(skips), strict=True):
            x = up(x)
            # Valid padding: the skip map is larger (border pixels lost in every convolution); crop it.
            x = block(torch.cat([center_crop(skip, x.shape[-2:]), x], dim=1))
        return self.head(x)

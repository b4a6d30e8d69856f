"""The box-op benchmark cases: shapes from issue #2, inputs that look like a detector's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Case:
    """One benchmark: `run(backend, *inputs)` calls vision_kernels; each of `baselines` is what a
    user would otherwise call, `name -> fn(*inputs)`. The first baseline is the one ratios use."""

    op: str
    name: str
    shape: str
    make_inputs: Callable[[torch.device], tuple[Any, ...]]
    run: Callable[..., Any]
    baselines: dict[str, Callable[..., Any]] = field(default_factory=dict)
    dtype: str = "float32"
    quick: bool = False  # part of `vk demo --quick`
    family: str = "boxes"  # which benchmarks/test_<family>.py runs it


def random_boxes(*shape: int, seed: int, image: float = 1000.0, max_size: float = 100.0) -> Tensor:
    """Valid xyxy float32 boxes, corners uniform in an image x image picture."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(*shape, 2, generator=g) * image
    return torch.cat([xy, xy + torch.rand(*shape, 2, generator=g) * max_size], dim=-1)


def detections(n: int, seed: int, classes: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """A detector's raw output: n boxes in clusters of ~16 around n/16 objects, random scores."""
    g = torch.Generator().manual_seed(seed)
    objects = random_boxes(max(n // 16, 1), seed=seed + 1)
    boxes = objects[torch.randint(len(objects), (n,), generator=g)]
    boxes = boxes + (torch.rand(n, 4, generator=g) - 0.5) * 0.2 * (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2])
    return boxes, torch.rand(n, generator=g), torch.randint(classes, (n,), generator=g)


def _on(device: torch.device, *tensors: Tensor) -> tuple[Tensor, ...]:
    return tuple(t.to(device) for t in tensors)


def _pairwise(mode: str, n: int, m: int, batch: int | None = None) -> Callable[[torch.device], tuple[Tensor, ...]]:
    lead = () if batch is None else (batch,)
    return lambda device: _on(device, random_boxes(*lead, n, seed=1), random_boxes(*lead, m, seed=2))


def _loss_inputs(n: int) -> Callable[[torch.device], tuple[Tensor, ...]]:
    def make(device: torch.device) -> tuple[Tensor, ...]:
        target = random_boxes(n, seed=3)
        pred = target + torch.randn(n, 4, generator=torch.Generator().manual_seed(4)) * 5
        return _on(device, pred, target)

    return make


def _loss_backward(loss: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., None]:
    def run(pred: Tensor, target: Tensor) -> None:
        pred = pred.detach().requires_grad_()
        loss(pred, target).backward()

    return run


def _build_cases() -> list[Case]:
    import torchvision.ops as tvo

    from vision_kernels import ops

    def pair(mode):
        return lambda backend, a, b: ops.box_iou(a, b, mode, backend=backend)

    cases = [
        Case(
            "box_iou",
            "iou-1000x1000",
            "[1000,4] x [1000,4]",
            _pairwise("iou", 1000, 1000),
            pair("iou"),
            {"torchvision.box_iou": tvo.box_iou},
            quick=True,
        ),
        Case(
            "box_iou",
            "giou-1000x1000",
            "[1000,4] x [1000,4]",
            _pairwise("giou", 1000, 1000),
            pair("giou"),
            {"torchvision.generalized_box_iou": tvo.generalized_box_iou},
            quick=True,
        ),
        Case(
            "box_iou",
            "diou-1000x1000",
            "[1000,4] x [1000,4]",
            _pairwise("diou", 1000, 1000),
            pair("diou"),
            {"torchvision.distance_box_iou": tvo.distance_box_iou},
        ),
        Case(
            "box_iou",
            "ciou-1000x1000",
            "[1000,4] x [1000,4]",
            _pairwise("ciou", 1000, 1000),
            pair("ciou"),
            {"torchvision.complete_box_iou": tvo.complete_box_iou},
        ),
        Case(
            "box_iou",
            "iou-16x1000x100",
            "[16,1000,4] x [16,100,4]",
            _pairwise("iou", 1000, 100, 16),
            pair("iou"),
            {
                "torchvision.box_iou per image": lambda a, b: torch.stack(
                    [tvo.box_iou(x, y) for x, y in zip(a, b, strict=True)]
                ),
                "torchvision.box_iou batched": tvo.box_iou,
            },
            quick=True,
        ),
        Case(
            "box_iou",
            "iou-4000x4000",
            "[4000,4] x [4000,4]",
            _pairwise("iou", 4000, 4000),
            pair("iou"),
            {"torchvision.box_iou": tvo.box_iou},
        ),
        Case(
            "box_iou_aligned",
            "giou-aligned-100k",
            "[100000,4] x [100000,4]",
            _loss_inputs(100_000),
            lambda backend, p, t: 1 - ops.box_iou(p, t, "giou", aligned=True, backend=backend),
            {"torchvision.generalized_box_iou_loss": lambda p, t: tvo.generalized_box_iou_loss(p, t)},
        ),
        Case(
            "box_iou_aligned",
            "giou-loss-100k",
            "[100000,4] x [100000,4], forward+backward",
            _loss_inputs(100_000),
            lambda backend, p, t: _loss_backward(
                lambda x, y: (1 - ops.box_iou(x, y, "giou", aligned=True, backend=backend)).sum()
            )(p, t),
            {
                "torchvision.generalized_box_iou_loss": _loss_backward(
                    lambda x, y: tvo.generalized_box_iou_loss(x, y, reduction="sum")
                )
            },
            quick=True,
        ),
        Case(
            "box_iou_aligned",
            "ciou-loss-100k",
            "[100000,4] x [100000,4], forward+backward",
            _loss_inputs(100_000),
            lambda backend, p, t: _loss_backward(
                lambda x, y: (1 - ops.box_iou(x, y, "ciou", aligned=True, backend=backend)).sum()
            )(p, t),
            {
                "torchvision.complete_box_iou_loss": _loss_backward(
                    lambda x, y: tvo.complete_box_iou_loss(x, y, reduction="sum")
                )
            },
        ),
    ]
    for n in (1000, 5000, 20000):
        cases.append(
            Case(
                "nms",
                f"nms-{n // 1000}k",
                f"[{n},4], threshold 0.5",
                lambda device, n=n: _on(device, *detections(n, seed=5)[:2]),
                lambda backend, b, s: ops.nms(b, s, 0.5, backend=backend),
                {"torchvision.nms": lambda b, s: tvo.nms(b, s, 0.5)},
                quick=n == 5000,
            )
        )
    cases += [
        Case(
            "batched_nms",
            "batched-nms-5k",
            "[5000,4], 20 classes, threshold 0.5",
            lambda device: _on(device, *detections(5000, seed=6, classes=20)),
            lambda backend, b, s, i: ops.batched_nms(b, s, i, 0.5, backend=backend),
            {"torchvision.batched_nms": lambda b, s, i: tvo.batched_nms(b, s, i, 0.5)},
        ),
        Case(
            "box_convert",
            "convert-100k",
            "[100000,4] xywh -> xyxy",
            lambda device: _on(device, random_boxes(100_000, seed=7)),
            lambda backend, b: ops.box_convert(b, "xywh", "xyxy", backend=backend),
            {"torchvision.box_convert": lambda b: tvo.box_convert(b, "xywh", "xyxy")},
        ),
    ]
    return cases


_CASES: list[Case] | None = None


def cases_for(op: str | None = None, quick: bool = False, family: str | None = None) -> list[Case]:
    """The cases (built on first use: they import torchvision), optionally of one op or family, or
    quick ones only."""
    global _CASES
    if _CASES is None:
        _CASES = _build_cases() + _norm_cases() + _conv_cases()
    return [
        c
        for c in _CASES
        if (op is None or c.op == op) and (c.quick or not quick) and (family is None or c.family == family)
    ]


# ---- instance norm: CycleGAN's resnet_9blocks generator at 256x256, batch 1, and a training batch ----


def _norm_inputs(shape: tuple[int, ...]) -> Callable[[torch.device], tuple[Tensor, ...]]:
    def make(device: torch.device) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(8)
        return _on(device, torch.randn(shape, generator=g), torch.randn(shape, generator=g))

    return make


def _stock_instance_norm_relu(x: Tensor) -> Tensor:
    return torch.nn.functional.relu(torch.nn.functional.instance_norm(x))


def _backward_of(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor, Tensor], None]:
    def run(x: Tensor, grad: Tensor) -> None:
        fn(x.detach().requires_grad_()).backward(grad)

    return run


def _norm_cases() -> list[Case]:
    from vision_kernels import ops

    compiled = torch.compile(_stock_instance_norm_relu, dynamic=False)  # per shape, at the warm-up call
    cases = []
    for shape in [(1, 256, 64, 64), (1, 128, 128, 128), (1, 64, 256, 256), (16, 64, 128, 128)]:
        name = "x".join(map(str, shape))
        cases.append(
            Case(
                "instance_norm",
                f"in-relu-{name}",
                f"{list(shape)}, no affine (CycleGAN), forward",
                _norm_inputs(shape),
                lambda backend, x, g: ops.instance_norm(x, activation="relu", backend=backend),
                {
                    "F.instance_norm + relu": lambda x, g: _stock_instance_norm_relu(x),
                    "torch.compile of it": lambda x, g: compiled(x),
                },
                family="instance_norm",
                quick=shape == (1, 64, 256, 256),
            )
        )
        cases.append(
            Case(
                "instance_norm",
                f"in-relu-{name}-train",
                f"{list(shape)}, no affine, forward+backward",
                _norm_inputs(shape),
                lambda backend, x, g: _backward_of(lambda t: ops.instance_norm(t, activation="relu", backend=backend))(
                    x, g
                ),
                {
                    "F.instance_norm + relu": _backward_of(_stock_instance_norm_relu),
                    "torch.compile of it": _backward_of(compiled),
                },
                family="instance_norm",
            )
        )
    return cases


# ---- ConvTranspose2d + norm + activation: DCGAN, pix2pix (unet_256 decoder), CycleGAN ---------------

# (name, batch, in, out, kernel, stride, padding, output_padding, input size, norm, activation, bias),
# with the models' own choices: DCGAN and pix2pix (batch norm) have no convolution bias.
CONV_LAYERS = [
    ("dcgan-512-256-4to8", 64, 512, 256, 4, 2, 1, 0, 4, "batch", "relu", False),
    ("dcgan-256-128-8to16", 64, 256, 128, 4, 2, 1, 0, 8, "batch", "relu", False),
    ("dcgan-128-64-16to32", 64, 128, 64, 4, 2, 1, 0, 16, "batch", "relu", False),
    ("pix2pix-1024-256-16to32", 1, 1024, 256, 4, 2, 1, 0, 16, "batch", "none", False),
    ("pix2pix-512-128-32to64", 1, 512, 128, 4, 2, 1, 0, 32, "batch", "none", False),
    ("pix2pix-256-64-64to128", 1, 256, 64, 4, 2, 1, 0, 64, "batch", "none", False),
    ("cyclegan-256-128-64to128", 1, 256, 128, 3, 2, 1, 1, 64, "instance", "relu", True),
    ("cyclegan-128-64-128to256", 1, 128, 64, 3, 2, 1, 1, 128, "instance", "relu", True),
]


def _conv_modules(layer: tuple, device: torch.device) -> tuple[Any, ...]:
    """(input, the stock nn.Sequential, its fused copy, torch.compile of the stock one)."""
    from torch import nn

    from vision_kernels import nn as vnn

    _, batch, cin, cout, k, s, p, op, size, norm, act, bias = layer
    torch.manual_seed(0)
    norm_module = nn.BatchNorm2d(cout) if norm == "batch" else nn.InstanceNorm2d(cout)
    act_module = nn.ReLU(inplace=True) if act == "relu" else nn.Identity()
    conv = nn.ConvTranspose2d(cin, cout, k, s, p, op, bias=bias)
    # The GPU targets are in bfloat16 (what these models train in there); float32 on CPU.
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    stock = nn.Sequential(conv, norm_module, act_module).to(device, dtype)
    fused = vnn.fuse(stock)
    x = torch.randn(batch, cin, size, size, generator=torch.Generator().manual_seed(1)).to(device, dtype)
    return x, stock, fused, torch.compile(stock, dynamic=False)  # static: one graph per layer shape


def _conv_cases() -> list[Case]:
    cases = []
    for layer in CONV_LAYERS:
        name, batch, cin, cout, k, s, p, op, size, norm, act, _ = layer
        shape = f"[{batch},{cin},{size},{size}] -> {cout} ch, k{k} s{s} p{p}" + (f" op{op}" if op else "")
        shape += f", {norm} norm + {act}"

        def make(device, layer=layer, train=False):
            x, stock, fused, compiled = _conv_modules(layer, device)
            for m in (stock, fused):
                m.train(train)
            if not train:
                x = x.detach()
            return x, stock, fused, compiled

        def inference(model):
            def run(x, *_):
                with torch.no_grad():
                    return model(x)

            return run

        def training(model):
            def run(x, *_):
                y = model(x.requires_grad_() if not x.requires_grad else x)
                y.backward(torch.ones_like(y))

            return run

        def on(backend, fn):
            def run(x):
                from vision_kernels import backends

                with backends.use_backend(backend):
                    return fn(x)

            return run

        cases.append(
            Case(
                "conv_transpose_norm_act",
                f"{name}-eval",
                shape + ", eval",
                lambda d, m=make: m(d, train=False),
                lambda backend, x, stock, fused, compiled: on(backend, inference(fused))(x),
                {
                    "nn.Sequential (eager)": lambda x, stock, fused, compiled: inference(stock)(x),
                    "torch.compile of it": lambda x, stock, fused, compiled: inference(compiled)(x),
                },
                family="conv_transpose_norm_act",
                dtype="float32 (cpu), bfloat16 (cuda)",
            )
        )
        cases.append(
            Case(
                "conv_transpose_norm_act",
                f"{name}-train",
                shape + ", training forward+backward",
                lambda d, m=make: m(d, train=True),
                lambda backend, x, stock, fused, compiled: on(backend, training(fused))(x),
                {
                    "nn.Sequential (eager)": lambda x, stock, fused, compiled: training(stock)(x),
                    "torch.compile of it": lambda x, stock, fused, compiled: training(compiled)(x),
                },
                family="conv_transpose_norm_act",
                dtype="float32 (cpu), bfloat16 (cuda)",
            )
        )
    return cases


def saved_for_backward_bytes(model: Any, x: Tensor) -> int:
    """Bytes of the tensors autograd keeps for the backward of model(x) (the activation memory a
    training step holds); counts each distinct tensor once."""
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        seen[id(t)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x.detach().requires_grad_())
    return sum(seen.values())

"""`train.compile`: one training step of a family (its own training_step: forward, loss, backward,
optimizer step, as the engine calls it), eager and with the networks compiled by the engine's
compile_networks (torch.compile, default mode: inductor), after warm-up.

- dcgan: the family's defaults (32 px, widths 64, z of 100, fused generator blocks, fp32 on a CPU),
  a batch of 64: one discriminator step and one generator step, each with Adam.
- unet: the family's defaults (batch 8 of 3x128x128, depth 4, width 16, same padding, batch norm
  with fused up-convolutions, channels-last, bf16 autocast where bf16 is native), with semantic
  masks (the class-balance weight map; no border term); unet-fp32 is the same in fp32.

As a pytest-benchmark suite (`make bench`, or `pytest benchmarks/test_compile_step.py
-o addopts="" --benchmark-only`), or as a script that times eager and compiled in alternating
rounds (a shared CPU disturbs both alike) and writes the ratios with the machine's description:

    .venv/bin/python benchmarks/test_compile_step.py --out benchmarks/results/compile-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from vision_kernels.engine.compiling import compile_networks
from vision_kernels.engine.data import to_device
from vision_kernels.testing import step_context

# name: (family module, family attribute, overrides, batch maker(device), description)
CASES: dict[str, tuple[str, str, list[str], Callable, str]] = {
    "dcgan": (
        "vision_kernels.plugins.gans.dcgan",
        "DCGAN",
        [],
        lambda device: (torch.rand(64, 1, 32, 32, device=device), torch.randint(0, 10, (64,), device=device)),
        "batch 64, 1x32x32, widths 64, fused G blocks, fp32",
    ),
    "unet": (
        "vision_kernels.plugins.unet.family",
        "UNET",
        [],
        lambda device: (torch.rand(8, 3, 128, 128, device=device), torch.randint(0, 4, (8, 128, 128), device=device)),
        "batch 8, 3x128x128, depth 4, width 16, same padding, fused up-convolutions, channels-last, "
        "precision auto-bf16",
    ),
    "unet-fp32": (
        "vision_kernels.plugins.unet.family",
        "UNET",
        ["train.precision=fp32"],
        lambda device: (torch.rand(8, 3, 128, 128, device=device), torch.randint(0, 4, (8, 128, 128), device=device)),
        "as unet, fp32",
    ),
}
IMPLS = ("eager", "compiled")
WARMUP = 3  # the first compiled step compiles every graph (D on real/fake, G with and without grad)


def make_step(case: str, impl: str, device: str = "cpu") -> tuple[Callable[[], None], float, str]:
    """(one training step, seconds the first WARMUP steps took, the autocast dtype)."""
    import importlib

    module, attribute, overrides, batch, _ = CASES[case]
    family = getattr(importlib.import_module(module), attribute)
    ctx = step_context(family, *overrides, device=device)
    if impl == "compiled":
        compile_networks(ctx.networks, ctx.config.train.model_copy(update={"compile": True}))
    torch.manual_seed(0)
    data = to_device(batch(torch.device(device)), ctx.device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step() -> None:
        for optimizer in ctx.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        family.training_step(ctx, data)
        sync()

    start = time.perf_counter()
    for _ in range(WARMUP):
        step()
    return step, time.perf_counter() - start, str(ctx.amp_dtype or torch.float32).replace("torch.", "")


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_training_step(benchmark, case, impl, device):
    step, _, dtype = make_step(case, impl, device)
    benchmark.group = f"{case}_train_step [{device}]"
    benchmark.extra_info.update(
        op="train_step",
        case=f"{case}_train_step",
        shape=CASES[case][4],
        dtype=dtype,
        device=device,
        impl=impl,
        baseline="eager",
        kind="baseline" if impl == "eager" else "variant",
    )
    benchmark.pedantic(step, rounds=10, warmup_rounds=1)


def _summary(times: list[float]) -> dict[str, float]:
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "iqr_s": q[2] - q[0],
    }


def measure_case(case: str, rounds: int, steps: int, device: str = "cpu") -> dict:
    """Eager and compiled steps timed in alternating rounds of `steps` steps each."""
    torch._dynamo.reset()
    built = {impl: make_step(case, impl, device) for impl in IMPLS}
    per_step: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for _ in range(rounds):
        for impl in IMPLS:
            step = built[impl][0]
            start = time.perf_counter()
            for _ in range(steps):
                step()
            per_step[impl].append((time.perf_counter() - start) / steps)
    round_ratios = [e / c for e, c in zip(per_step["eager"], per_step["compiled"], strict=True)]
    result = {
        "case": CASES[case][4],
        "dtype": built["eager"][2],
        "rounds": rounds,
        "steps_per_round": steps,
        "warmup_s": {impl: round(built[impl][1], 2) for impl in IMPLS},
        **{impl: {k: round(v, 4) for k, v in _summary(per_step[impl]).items()} for impl in IMPLS},
        "round_s": {impl: [round(t, 4) for t in per_step[impl]] for impl in IMPLS},
    }
    result["speedup"] = round(result["eager"]["median_s"] / result["compiled"]["median_s"], 3)
    result["speedup_rounds"] = {
        "median": round(statistics.median(round_ratios), 3),
        "min": round(min(round_ratios), 3),
        "max": round(max(round_ratios), 3),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/compile-cpu.json"))
    parser.add_argument("--case", action="append", choices=list(CASES), help="default: all")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import vision_kernels
    from vision_kernels.environment import environment

    env = environment(args.device)
    out = {
        "what": "one family training step (forward, loss, backward, optimizer step) eager vs train.compile "
        "(torch.compile default mode, inductor), after warm-up; speedup = eager / compiled median step time",
        "command": "python benchmarks/test_compile_step.py " + " ".join(
            f"--case {c}" for c in (args.case or [])
        ) + f" --rounds {args.rounds} --steps {args.steps}",
        "date": env["date"],
        "commit": env["commit"],
        "torch": env["torch"],
        "python": env["python"],
        "cpu": env["cpu"],
        "cpu_threads": torch.get_num_threads(),
        "cpu_capability": vision_kernels.build_info()["native"]["cpu_capability"],
        "native_bf16": torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported(),
        "device": args.device,
        "cases": {},
    }
    for case in args.case or list(CASES):
        out["cases"][case] = result = measure_case(case, args.rounds, args.steps, args.device)
        print(
            f"{case}: eager {result['eager']['median_s'] * 1e3:.1f} ms, compiled "
            f"{result['compiled']['median_s'] * 1e3:.1f} ms per step: {result['speedup']:.2f}x "
            f"(rounds {result['speedup_rounds']['min']:.2f}-{result['speedup_rounds']['max']:.2f}x; warm-up "
            f"{result['warmup_s']['eager']:.1f} s eager, {result['warmup_s']['compiled']:.1f} s compiled)",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

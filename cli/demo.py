"""`vk demo`: the box ops on detector-like data, timed next to torchvision, with a check that both
give the same answer."""

from __future__ import annotations

import torch
from rich.console import Console
from rich.table import Table


def _agreement(a, b) -> str:
    """How close our result is to torchvision's."""
    if a is None or b is None:
        return ""
    if a.dtype == torch.int64 or torch.equal(a, b):
        return "equal" if torch.equal(a, b) else "[red]DIFFERENT[/]"
    return f"±{(a.double() - b.double()).abs().max().item():.0e}"


def _compare(case, device: str, min_time: float) -> list[str]:
    """One table row: our auto-chosen backend against the case's first torchvision baseline."""
    from vision_kernels import backends
    from vision_kernels.benchmarking import measure

    inputs = case.make_inputs(torch.device(device))
    backend = backends.resolve(case.op, torch.device(device))
    baseline = next(iter(case.baselines.values()))
    ours = measure(lambda: case.run(backend, *inputs), min_time, device).median_s
    theirs = measure(lambda: baseline(*inputs), min_time, device).median_s
    agreement = _agreement(case.run(backend, *inputs), baseline(*inputs))
    return [
        case.name,
        backend,
        f"{ours * 1e3:.3f} ms",
        f"{theirs * 1e3:.3f} ms",
        f"[bold green]{theirs / ours:.1f}x[/]",
        agreement,
    ]


def run_demo(device: str = "cpu", quick: bool = False) -> None:
    from vision_kernels import __version__, build_info
    from vision_kernels.benchmarking import cases_for

    console = Console()
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("vk demo: --device cuda, but torch sees no CUDA GPU here")
    native = build_info()["native"]
    where = f"CPU ({torch.get_num_threads()} threads, {native.get('cpu_capability', 'reference')})"
    if device == "cuda":
        where = torch.cuda.get_device_name()
    console.print(f"[bold]vision-kernels {__version__}[/] box ops on {where}, torch {torch.__version__}")
    if not native["loaded"]:
        console.print(f"[yellow]native kernels unavailable: {native['reason']}[/]")

    table = Table(title="median time per call; speed-up = torchvision / vision-kernels")
    for column in ("case", "backend", "vision-kernels", "torchvision", "speed-up", "result"):
        table.add_column(column, justify="right" if column in ("vision-kernels", "torchvision", "speed-up") else "left")
    for case in cases_for(quick=quick):
        table.add_row(*_compare(case, device, min_time=0.1 if quick else 0.3))
    console.print(table)
    console.print("Full benchmarks with every backend: [bold]make bench[/] (results in benchmarks/results/).")

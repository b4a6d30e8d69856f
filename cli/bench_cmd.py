"""`vk bench [OP]`: the kernel benchmark cases, every backend next to the torch/torchvision call it
replaces, timed in this process; prints the ratio table. (`make bench` runs the pytest-benchmark
suites in benchmarks/ and records results; this command needs only the installed package.)"""

from __future__ import annotations

from typing import Annotated

import typer


def bench(
    op: Annotated[
        str | None, typer.Argument(help="Only this op (box_iou, nms, instance_norm, ...); default: all.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    quick: Annotated[bool, typer.Option(help="Only the quick cases, shorter timing.")] = False,
) -> None:
    """Run the kernel benchmarks and print the ratio table."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from vision_kernels import backends
    from vision_kernels.benchmarking import cases_for, measure

    from .errors import CliError

    if device == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda, but torch sees no CUDA GPU here")
    cases = cases_for(op=op, quick=quick)
    if not cases:
        known = sorted({c.op for c in cases_for()})
        raise CliError(f"no benchmark case for op {op!r}", hint=f"ops with cases: {', '.join(known)}")
    table = Table(title=f"median time per call on {device}; ratio = baseline / implementation")
    for column in ("case", "implementation", "median", "ratio"):
        table.add_column(column, justify="right" if column in ("median", "ratio") else "left")
    min_time = 0.1 if quick else 0.3
    for case in cases:
        inputs = case.make_inputs(torch.device(device))
        baseline_name = next(iter(case.baselines))
        rows = {name: measure(lambda fn=fn, x=inputs: fn(*x), min_time, device).median_s
                for name, fn in case.baselines.items()}
        for backend in backends.available_backends(case.op, device):
            if backend == "triton" and device == "cpu":
                continue  # the interpreter: correct, but its speed means nothing
            run = case.run
            rows[backend] = measure(lambda b=backend, r=run, x=inputs: r(b, *x), min_time, device).median_s
        for name, seconds in rows.items():
            ratio = rows[baseline_name] / seconds
            table.add_row(case.name, name, f"{seconds * 1e3:.3f} ms",
                          "baseline" if name == baseline_name else f"{ratio:.2f}x")
    Console().print(table)

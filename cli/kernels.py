"""`vk kernels`: which backends run each op on each device here, and how _C was built."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def show_kernels() -> None:
    import vision_kernels
    from vision_kernels import backends

    info = vision_kernels.build_info()
    console = Console()
    table = Table(title="ops x backends (✓ runs here; auto picks the first of its preference that runs)")
    table.add_column("op")
    devices = sorted({d for per_op in info["backends"].values() for d in per_op})
    names = [*backends.BACKENDS[1:], *backends.plugin_backends()]
    for device in devices:
        for backend in names:
            table.add_column(f"{device}\n{backend}", justify="center")
        table.add_column(f"{device}\nauto", justify="center")
    import torch

    for op, per_device in info["backends"].items():
        row = [op]
        for device in devices:
            available = per_device.get(device, [])
            row += ["✓" if b in available else "·" for b in names]
            row.append(backends.resolve(op, torch.device(device), "auto") if available else "")
        table.add_row(*row)
    console.print(table)
    for kernel in info["plugin_kernels"]:
        console.print(f"plugin backend {kernel['backend']} for {kernel['op']} ({', '.join(kernel['devices'])}): "
                      f"{kernel['description'] or 'no description'} (from plugin {kernel['plugin']})", markup=False)
    native = info["native"]
    if native["loaded"]:
        console.print(
            f"native: built for torch {native['torch_version']} with {native['compiler']}, "
            f"OpenMP {native['openmp'] or 'no'}, CPU kernels {native['cpu_capabilities_compiled']} "
            f"(running {native['cpu_capability']}), CUDA {native['cuda_version'] or 'no'} "
            f"{native['cuda_architectures']}"
        )
    else:
        console.print(f"[yellow]native: not loaded: {native['reason']}[/]")
    console.print(f"torch {info['torch']['running']}, triton {info['triton'] or 'not installed'}")

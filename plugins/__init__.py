"""First-party plugin (installed as vision_kernels.plugins, entry point `builtin` in the
`vision_kernels` group): the project's own model families register here, through exactly the hooks
and the entry-point path a third-party plugin uses (see docs/plugins.md). Families are added by
their issues (GAN/DCGAN/cGAN, U-Net, ...); each lives in its own subpackage and is registered by
register_families below, importing no torch until it builds a model.
"""

from __future__ import annotations

from typing import Any

from vision_kernels.hookspecs import hookimpl

# (module, attribute) of each first-party Family, imported when the registry asks for them.
FAMILIES: list[tuple[str, str]] = [
    ("vision_kernels.plugins.gans.gan", "GAN"),
    ("vision_kernels.plugins.gans.dcgan", "DCGAN"),
    ("vision_kernels.plugins.gans.cgan", "CGAN"),
    ("vision_kernels.plugins.unet.family", "UNET"),
]


@hookimpl
def register_families(register: Any) -> None:
    import importlib

    for module, attribute in FAMILIES:
        register(getattr(importlib.import_module(module), attribute))


@hookimpl
def register_datasets(register: Any) -> None:
    from vision_kernels.plugins.datasets import DATASETS

    for dataset in DATASETS:
        register(dataset)

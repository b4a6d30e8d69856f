"""The `vk` command line (installed as vision_kernels.cli). Its start-up path imports no torch:
each command imports what it needs when it runs."""

from .app import app, main

__all__ = ["app", "main"]

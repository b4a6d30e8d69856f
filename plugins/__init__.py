"""First-party model families, installed as vision_kernels.plugins. Each registers through the
`vision_kernels` entry-point group, exactly like a third-party plugin."""

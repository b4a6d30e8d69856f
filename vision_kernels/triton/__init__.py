"""Triton kernels, one module per op, each exposed as a `torch.library.triton_op` named
`vision_kernels::<op>_triton` so torch.compile can see into it.

Nothing here is imported by `import vision_kernels`: the modules load when the triton backend is
first chosen. On CPU tensors they run only under Triton's interpreter (TRITON_INTERPRET=1, set
before the first import of these modules), which is how the tests run them without a GPU.
"""

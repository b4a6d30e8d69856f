"""Dataset files on disk: image/mask decoding (`images`), the error they raise (`errors`), one
torch Dataset per file layout (`formats`), skipping bad items (`skipping`) and a detection
collate function (`collate`).

Nothing is imported here, so `import vision_kernels.data` stays cheap: import the submodule you
need (`from vision_kernels.data.formats import ImageFolder`).
"""

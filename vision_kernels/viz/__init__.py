"""Pictures of a training run: image grids and PNG input/output (`grid`), metric curves (`curves`)
and the self-contained HTML run report (`report`).

Nothing is imported here, so `import vision_kernels.viz` stays cheap: import the submodule you
need (`from vision_kernels.viz.report import write_report`); torch, PIL and matplotlib load then.
"""

#!/usr/bin/env bash
# Builds the project against a CPU-only torch in a throwaway venv and smoke-tests it: the CUDA
# kernels must be skipped (not fail) even where nvcc is installed, and the CPU ops must work.
# Usage: tools/check_cpu_only_torch.sh [torch spec, default torch==2.13.0 (a CPU wheel on this disk)]
set -euo pipefail
spec="${1:-torch==2.13.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$spec" $(grep -E '^(scikit-build-core|ninja|cmake|numpy)==' "$root/requirements/dev.txt") 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
cd "$root"
"$work/venv/bin/pip" install -q --no-build-isolation --no-deps -C build-dir="$work/build" . 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
cd "$work"
"$work/venv/bin/python" - <<'PY'
import torch
import vision_kernels as vk
from vision_kernels import ops, reference

native = vk.build_info()["native"]
assert native["loaded"], native["reason"]
assert torch.version.cuda is None and native["cuda"] is False, native
g = torch.Generator().manual_seed(0)
b = torch.rand(50, 4, generator=g) * 100
b[:, 2:] += b[:, :2]
for mode in ("iou", "giou", "diou", "ciou", "iof"):
    torch.testing.assert_close(ops.box_iou(b, b.flip(0), mode), reference.box_iou(b, b.flip(0), mode))
s = torch.rand(50, generator=g)
assert torch.equal(ops.nms(b, s, 0.3), reference.nms(b, s, 0.3))
p = b.clone().requires_grad_()
(1 - ops.box_iou(p, b.flip(0), "giou", aligned=True)).sum().backward()
torch.compile(lambda a: ops.box_iou(a, a, "giou"), fullgraph=True, backend="aot_eager")(b)
print(f"CPU-only torch {torch.__version__}: built ({native['cpu_capabilities_compiled']}, no CUDA) and ops OK")
PY

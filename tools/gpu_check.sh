#!/usr/bin/env bash
# One-shot GPU check for a lent GPU machine: build the extension with CUDA there, then run the GPU
# tests and the GPU benchmarks, writing logs and results under $OUT. Every step is time-boxed against
# one overall budget, and the most valuable results come first (build, tests, benchmarks), so a
# step that runs long still leaves the earlier results in $OUT.
#
#   OUT=/some/dir GPU_CHECK_BUDGET=540 bash tools/gpu_check.sh
#
# Knobs (environment):
#   OUT                 where logs and results go (default build/gpu_check)
#   PYTHON              interpreter (default python3)
#   GPU_CHECK_BUDGET    seconds the whole script may take (default 540)
#   GPU_CHECK_NO_BUILD  set: skip the build (use the extension already installed)
#   VK_CUDA_ARCHS       CUDA architectures to build (default 90-real: H100/H200 only, fast nvcc)
#   VK_COMMIT           commit to record in the benchmark report (the device's .git may be stale)
#   GPU_CHECK_BENCH_ARGS extra pytest-benchmark options (default: modest rounds, warm-up on)
#   GPU_CHECK_TESTS     test files of step 4 (default: every kernel test file)
#   GPU_CHECK_AFTER     a command run after the tests, time-boxed like them (e.g. a training script)
#   GPU_CHECK_NO_BENCH  set: skip the benchmarks
#
# Files in $OUT (at most 8): gpu_check.log (everything printed), build.log, tests.xml (junit),
# gpu-bench.json (pytest-benchmark), cuda-<gpu>.json (benchmarks/report.py format), bench-table.md.
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/build/gpu_check}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-540}
START=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
# cap MAX RESERVE: a time box of at most MAX seconds that still leaves RESERVE seconds for later steps.
cap() { local t=$(( $(left) - $2 )); (( t > $1 )) && t=$1; (( t < 5 )) && t=5; echo "$t"; }
step() { echo; echo "=== [$(( $(date +%s) - START ))s elapsed, $(left)s left] $*"; }
has() { "$PY" -c "import $1" >/dev/null 2>&1; }

step "1. wheels carried for packages the image lacks"
if has pydantic; then
  echo "pydantic importable: no wheels installed"
elif compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  echo "wheels -> /tmp/site: rc=$?"; ls /tmp/site | head -30
else
  echo "WARNING: pydantic missing and no .whl/ carried"
fi

step "2. build the extension with CUDA (${VK_CUDA_ARCHS:-90-real})"
BUILD_RC=skipped
command -v nvcc >/dev/null || for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
  [ -x "$d/nvcc" ] && export PATH=$d:$PATH && break
done
echo "nvcc: $(command -v nvcc || echo none) $(nvcc --version 2>/dev/null | tail -1); gcc: $(gcc -dumpfullversion 2>/dev/null)"
if [ -z "${GPU_CHECK_NO_BUILD:-}" ]; then
  t0=$(date +%s)
  # Time left for the steps after the build: less without the benchmarks. A build needs ~40 s on
  # 16 cores; a budget too small for it is said here, not found later as "extension not built".
  RESERVE=200
  [ -n "${GPU_CHECK_NO_BENCH:-}" ] && RESERVE=60
  BUILD_CAP=$(cap 330 $RESERVE)
  (( BUILD_CAP < 60 )) && echo "WARNING: only ${BUILD_CAP}s for the build (GPU_CHECK_BUDGET=$BUDGET is too small)"
  VK_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) timeout -k 10 "$BUILD_CAP" \
    "$PY" -m pip install -v --no-build-isolation --no-deps --no-cache-dir \
    -C "cmake.define.VK_CUDA_ARCHITECTURES=${VK_CUDA_ARCHS:-90-real}" -e . >"$OUT/build.log" 2>&1
  BUILD_RC=$?
  echo "build: rc=$BUILD_RC in $(( $(date +%s) - t0 )) s (nproc $(nproc)); log: build.log"
  grep -E "vision_kernels:|error|Error|warning: |Successfully" "$OUT/build.log" | grep -v "^ *-- Looking" | head -40
  [ "$BUILD_RC" = 0 ] || tail -40 "$OUT/build.log"
fi

step "3. device and versions"
timeout 30 nvidia-smi || echo "nvidia-smi unavailable"
timeout 60 "$PY" - <<'PY' || echo "version probe failed: rc=$?"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, "cc", f"{p.major}.{p.minor}", "SMs", p.multi_processor_count, "mem GiB", round(p.total_memory / 2**30, 1))
for name in ("triton", "torchvision", "pydantic", "pytest", "xdist", "pytest_timeout", "pytest_benchmark"):
    try:
        m = __import__(name)
        print(name, getattr(m, "__version__", "?"))
    except Exception as e:
        print(name, "MISSING", type(e).__name__, e)
import json
import vision_kernels as vk
info = vk.build_info()
print(json.dumps({k: info[k] for k in ("version", "python", "torch", "native", "triton")}, indent=1))
for op, per_device in info["backends"].items():
    print(f"  backends {op}: " + "; ".join(f"{d} {','.join(b)}" for d, b in per_device.items()))
PY

step "4. GPU tests"
TESTS=${GPU_CHECK_TESTS:-"tests/test_gpu.py tests/test_box_iou.py tests/test_nms.py tests/test_instance_norm.py tests/test_conv_norm_act.py
tests/test_box_convert.py tests/test_compile.py tests/test_triton_compile.py tests/test_backends.py tests/test_nn_norm.py"}
XARGS=()
has xdist && XARGS+=(-n 8)
has pytest_timeout && XARGS+=(--timeout=150)
# Whole files: the CUDA and Triton parametrisations, and the CPU ones too (cheap, and they check
# this torch). No -x: one run must report every failure; --maxfail only bounds a broken build
# (60 cut the first H200 run short: one test failed in all its 60 parametrisations).
# SIGINT at the time box: pytest still writes the junit file and the summary.
# shellcheck disable=SC2086
timeout -s INT -k 20 "$(cap 210 150)" "$PY" -m pytest -p no:cacheprovider -q -rfE --tb=short --maxfail=300 --durations=15 \
  "${XARGS[@]}" --junitxml="$OUT/tests.xml" $TESTS
echo "tests: rc=$?"
"$PY" - "$OUT/tests.xml" <<'PY' || true
import collections, sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as e:
    sys.exit(f"no junit summary: {e}")
counts, fails, skips = collections.Counter(), [], collections.Counter()
for case in root.iter("testcase"):
    name = f"{case.get('classname')}::{case.get('name')}"
    cuda = "cuda" in name or "test_gpu" in name
    kind = "passed"
    for child in case:
        if child.tag in ("failure", "error"):
            kind = child.tag
            first = (child.get("message") or child.text or "").strip().splitlines()
            fails.append(f"{child.tag.upper()} {name}: {first[0][:300] if first else ''}")
        elif child.tag == "skipped":
            kind = "skipped"
            skips[(child.get("message") or "")[:120]] += 1
    counts[kind] += 1
    counts[f"{kind} (cuda)" if cuda else f"{kind} (cpu)"] += 1
print("JUNIT SUMMARY:", dict(sorted(counts.items())))
for reason, n in skips.most_common(12):
    print(f"  skipped x{n}: {reason}")
for line in fails[:80]:
    print(" ", line)
PY

if [ -n "${GPU_CHECK_AFTER:-}" ]; then
  step "4b. $GPU_CHECK_AFTER"
  timeout -s INT -k 20 "$(left)" bash -c "$GPU_CHECK_AFTER"
  echo "after: rc=$?"
fi
if [ -n "${GPU_CHECK_NO_BENCH:-}" ]; then
  step "done (no benchmarks)"
  exit 0
fi

step "5. GPU benchmarks"
BARGS=(-p no:cacheprovider -o addopts="" --benchmark-only --device cuda -q -rfE --tb=short
  ${GPU_CHECK_BENCH_ARGS:---benchmark-min-rounds=10 --benchmark-max-time=0.25 --benchmark-warmup=on --benchmark-warmup-iterations=3})
# Everything but the torch.compile baselines first (their cold compiles are slow), then those.
timeout -s INT -k 20 "$(cap 170 80)" "$PY" -m pytest benchmarks "${BARGS[@]}" -k "not compile" \
  --benchmark-json="$OUT/bench-1.json"
echo "benchmarks (no compile): rc=$?"
timeout -s INT -k 20 "$(cap 400 45)" "$PY" -m pytest benchmarks/test_instance_norm.py benchmarks/test_conv_transpose_norm_act.py "${BARGS[@]}" -k "compile" \
  --benchmark-json="$OUT/bench-2.json"
echo "benchmarks (torch.compile baselines): rc=$?"

step "6. report"
VK_COMMIT=${VK_COMMIT:-} timeout 60 "$PY" - "$OUT" <<'PY' || echo "merge failed"
import json, os, pathlib, sys
out = pathlib.Path(sys.argv[1])
parts = [json.loads(p.read_text()) for p in (out / "bench-1.json", out / "bench-2.json") if p.exists() and p.stat().st_size]
if not parts:
    sys.exit("no benchmark json")
merged = parts[0]
for extra in parts[1:]:
    merged["benchmarks"] += extra["benchmarks"]
env = merged["machine_info"].setdefault("vision_kernels", {})
if os.environ.get("VK_COMMIT"):  # the device's copy of .git can be stale: the caller's word wins
    env["commit"] = os.environ["VK_COMMIT"]
(out / "gpu-bench.json").write_text(json.dumps(merged, indent=1))
for p in (out / "bench-1.json", out / "bench-2.json"):
    p.unlink(missing_ok=True)
print("merged", len(merged["benchmarks"]), "benchmarks")
PY
if [ -s "$OUT/gpu-bench.json" ]; then
  timeout 60 "$PY" benchmarks/report.py "$OUT/gpu-bench.json" --out-dir "$OUT" | tee "$OUT/bench-table.md"
fi
step "done"

"""The Triton kernels compile to PTX and through ptxas for the GPUs we target (sm_80, sm_90) on
this CPU-only machine: the interpreter, which the other tests use here, accepts Python that the
Triton compiler rejects, so this catches what only a GPU run would otherwise show."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.triton

SCRIPT = textwrap.dedent(
    """
    import itertools, os, sys
    os.environ.pop("TRITON_INTERPRET", None)
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from vision_kernels.triton import box_convert, box_iou, conv_transpose, nms, norm as inorm

    def compile_all(capability):
        target = GPUTarget("cuda", capability, 32)
        count = 0

        def build(fn, signature, constexprs, matmul=False):
            nonlocal count
            sig = {**signature, **{name: "constexpr" for name in constexprs}}
            # As vision_kernels.triton._common.launch compiles them: no FMA contraction.
            kernel = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=constexprs), target=target,
                                    options={"enable_fp_fusion": False})
            ptx = kernel.asm["ptx"]
            # Rounded like the reference: no fused multiply-add, no approximate float32 division.
            # (A matrix product accumulates with fused multiply-adds in every library: allowed there.)
            banned = ("div.full.f32", "div.approx") + (() if matmul else ("fma.rn.f32", "fma.rn.f64"))
            assert not any(op in ptx for op in banned), fn.__name__
            count += 1

        for mode, fp64 in itertools.product(range(5), (False, True)):
            f = "*fp64" if fp64 else "*fp32"
            boxes = {"b1_ptr": f, "b2_ptr": f, "ang1_ptr": "*fp32", "ang2_ptr": "*fp32"}
            eps = {"eps_ptr": f}
            build(box_iou._pairwise_kernel, {**boxes, "out_ptr": f, "N": "i32", "M": "i32", **eps},
                  {"MODE": mode, "FP64": fp64, "BLOCK_N": 32, "BLOCK_M": 64})
            build(box_iou._aligned_kernel, {**boxes, "out_ptr": f, "K": "i32", **eps},
                  {"MODE": mode, "FP64": fp64, "BLOCK": 256})
            build(box_iou._aligned_backward_kernel,
                  {"grad_ptr": f, **boxes, "g1_ptr": f, "g2_ptr": f, "K": "i32", **eps},
                  {"MODE": mode, "FP64": fp64, "BLOCK": 256})
        for src, dst in itertools.product(range(3), range(3)):
            build(box_convert._convert_kernel, {"in_ptr": "*bf16", "out_ptr": "*bf16", "K": "i32"},
                  {"FROM": src, "TO": dst, "FP64": False, "BLOCK": 256})
        for categories in (False, True):
            build(nms._mask_kernel, {"boxes_ptr": "*fp32", "cat_ptr": "*i64", "threshold_ptr": "*fp32",
                                     "mask_ptr": "*i64", "N": "i32", "WORDS": "i32"},
                  {"HAS_CATEGORIES": categories, "BLOCK_ROWS": 32})
        build(nms._keep_kernel, {"mask_ptr": "*i64", "removed_ptr": "*i64", "keep_ptr": "*i8", "N": "i32",
                                 "WORDS": "i32"}, {"BLOCK_WORDS": 128})
        for dt, fp64 in (("*fp32", False), ("*bf16", False), ("*fp64", True)):
            a = "*fp64" if fp64 else "*fp32"
            dims = {"S": "i32", "C": "i32", "CHUNKS": "i32"}
            build(inorm._plane_stats_kernel, {"x_ptr": dt, "partial_ptr": a, **dims},
                  {"FP64": fp64, "CHUNK": 4096, "BLOCK": 1024})
            build(inorm._cl_stats_kernel, {"x_ptr": dt, "partial_ptr": a, **dims},
                  {"FP64": fp64, "ROW_CHUNK": 256, "ROWS": 16, "CHANNELS": 64})
            params = {"mean_ptr": a, "rstd_ptr": a, "w_ptr": a, "b_ptr": a, "slope_ptr": a}
            for act, cl in itertools.product(range(3), (False, True)):
                flags = {"HAS_W": True, "HAS_B": act != 1, "ACT": act, "FP64": fp64}
                build(inorm._apply_kernel, {"x_ptr": dt, "y_ptr": dt, **params, "S": "i32", "C": "i32", "TOTAL": "i32"},
                      {**flags, "CL": cl, "BLOCK": 1024})
                build(inorm._grad_apply_kernel, {"x_ptr": dt, "g_ptr": dt, "gx_ptr": dt, **params, "mean_a_ptr": a,
                                                 "mean_b_ptr": a, "S": "i32", "C": "i32", "TOTAL": "i32"},
                      {**flags, "CL": cl, "BLOCK": 1024})
            build(inorm._plane_grad_sums_kernel, {"x_ptr": dt, "g_ptr": dt, **params, "partial_ptr": a, **dims},
                  {"HAS_W": True, "HAS_B": True, "ACT": 2, "FP64": fp64, "CHUNK": 4096, "BLOCK": 1024})
            build(inorm._cl_grad_sums_kernel, {"x_ptr": dt, "g_ptr": dt, **params, "partial_ptr": a, **dims},
                  {"HAS_W": False, "HAS_B": False, "ACT": 1, "FP64": fp64, "ROW_CHUNK": 256, "ROWS": 16,
                   "CHANNELS": 64})
        ints = ["N", "CIN", "H", "W", "COUT", "OH", "OW", "sxn", "sxc", "sxh", "sxw", "swi", "swo", "swh", "sww",
                "syn", "syc", "syh", "syw", "S_H", "S_W", "P_H", "P_W", "PH", "PW", "J0_H", "J0_W", "CNT_H", "CNT_W",
                "TAPS_H", "TAPS_W"]
        for dt in ("*fp32", "*fp16", "*bf16"):
            for act in range(4):
                build(conv_transpose._phase_kernel,
                      {"x_ptr": dt, "w_ptr": dt, "b_ptr": dt, "y_ptr": dt, **{k: "i32" for k in ints}, "slope": "fp32"},
                      {"HAS_BIAS": act % 2 == 0, "ACT": act, "BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, matmul=True)
        return count

    print(compile_all(int(sys.argv[1])))
    """
)


@pytest.mark.parametrize("capability", [80, 90])
def test_triton_kernels_compile_for_gpu(capability):
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(capability)], capture_output=True, text=True, timeout=900, env=env
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert int(result.stdout.strip().splitlines()[-1]) == 42 + 3 * (2 + 2 * 6 + 2) + 3 * 4

"""The Triton graph kernels (aggregation, Laplacian) compile for a GPU (sm_90) on a machine
without one: the interpreter runs their semantics, not Triton's GPU compiler, which rejects
things the interpreter accepts. As tests/test_triton_gpu_compile.py, in a fresh process."""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import triton, triton.language as tl
    from triton.backends import backends
    if "nvidia" not in backends:
        print("skip: Triton has no CUDA backend here"); raise SystemExit
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton_kernels import graph_aggregate as ga, graph_laplacian as gl

    def compile_for_sm90(fn, signature, constants):
        signature = {**signature, **{k: "constexpr" for k in constants}}
        triton.compile(ASTSource(fn, signature, constants), target=GPUTarget("cuda", 90, 32),
                       options=dict(num_warps=4))

    csr = dict(rowptr_ptr="*i64", col_ptr="*i64", t_rowptr_ptr="*i64", t_col_ptr="*i64")
    strides = dict(hs_sb="i64", hs_sn="i64", hn_sb="i64", hn_sn="i64", w_sb="i64")
    for dtype in ("fp32", "fp16", "bf16"):
        p = "*" + dtype
        for by_rows in (True, False):
            compile_for_sm90(ga._forward_kernel, dict(
                hs_ptr=p, hn_ptr=p, w_ptr="*fp32", bias_ptr=p, out_ptr=p, **csr, perm_ptr="*i64",
                N="i32", F="i32", E="i32", **strides),
                dict(HAS_BIAS=True, BY_ROWS=by_rows, CT=tl.float32, BLOCK_F=256))
            compile_for_sm90(ga._backward_nodes_kernel, dict(
                go_ptr=p, hs_ptr=p, hn_ptr=p, w_ptr="*fp32", gs_ptr=p, gn_ptr=p, da_ptr="*fp32",
                bias_part_ptr="*fp32", **csr, perm_ptr="*i64", B="i32", N="i32", F="i32",
                E="i32", go_sb="i64", go_sn="i64", **strides),
                dict(BIAS=True, BY_ROWS=by_rows, CT=tl.float32, UNITS=8, BLOCK_F=256))
            compile_for_sm90(gl._laplacian_kernel, dict(
                x_ptr=p, out_ptr=p, **csr, N="i32", D="i32", E="i32"),
                dict(TRANSPOSE=by_rows, CT=tl.float32, BLOCK_D=2))
        compile_for_sm90(ga._edge_weights_kernel, dict(
            lg_ptr=p, w_ptr="*fp32", rowptr_ptr="*i64", S="i32", E="i32", lg_sb="i64"),
            dict(CT=tl.float32, BLOCK_B=128))
        for per_sample in (True, False):
            compile_for_sm90(ga._backward_rows_kernel, dict(
                w_ptr="*fp32", da_ptr="*fp32", gl_ptr=p, part_ptr="*fp32", rowptr_ptr="*i64",
                B="i32", E="i32", w_sb="i64"),
                dict(PER_SAMPLE=per_sample, N_TILES=2, CT=tl.float32, BLOCK_B=128))
        compile_for_sm90(ga._column_sum_kernel, dict(src_ptr="*fp32", dst_ptr=p, R="i32",
                                                     C="i32"), dict(CT=tl.float32, BLOCK_C=128))
        print("ok", dtype)
""")


def test_graph_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True,
                         text=True)
    if out.stdout.startswith("skip:"):
        pytest.skip(out.stdout[5:].strip())
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["ok", "fp32", "ok", "fp16", "ok", "bf16"], out.stdout

"""The Triton coordinate-loss kernels compile for a GPU (sm_90) on a machine without one.

The interpreter runs the kernels' semantics on CPU tensors but not Triton's GPU compiler, which
rejects things the interpreter accepts (types, scalar promotion). Compiling ahead of time needs
no device: Triton's CUDA backend and its bundled ptxas suffice. It runs in a fresh process,
since the test session imported Triton in interpreter mode.
"""

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
    from triton_kernels import coord_loss

    target = GPUTarget("cuda", 90, 32)

    def ptx_of(fn, signature, constants, **options):
        signature = {**signature, **{k: "constexpr" for k in constants}}
        src = ASTSource(fn, signature, constants)
        return triton.compile(src, target=target, options=options).asm["ptx"]

    for dtype in ("fp32", "fp16", "bf16"):
        ptr = "*" + dtype
        signature = dict(pred_ptr=ptr, target_ptr=ptr, weight_ptr=ptr, phi_ptr=ptr,
                         loss_ptr="*fp32", grad_ptr="*fp32" if dtype == "fp16" else ptr,
                         partial_ptr="*fp32", numel="i64", dims="i64", iters="i32",
                         p0="fp64", p1="fp64", p2="fp64", grad_scale="fp64", divisor="fp64")
        for loss in (0, 1, 2):
            constants = dict(LOSS=loss, WEIGHT_MODE=1, PHI_PER_LANDMARK=True,
                             STORE_LOSS=False, REDUCE=2, COMPUTE_GRAD=True, CT=tl.float32,
                             BLOCK=1024)
            ptx = ptx_of(coord_loss._coord_loss_kernel, signature, constants, num_warps=4)
            # fp64 hyper-parameters are rounded once to fp32 (x + 0, then cvt): no other fp64
            # maths, in the loop or anywhere.
            f64 = [l for l in ptx.splitlines() if ".f64" in l and "param" not in l
                   and "cvt.rn.f32.f64" not in l and "0d0000000000000000" not in l]
            assert not f64, (dtype, loss, f64)
            print("ok", dtype, loss)
    ptx_of(coord_loss._sum_partials_kernel,
           dict(partial_ptr="*fp32", out_ptr="*fp32", n_partials="i32", divisor="fp64"),
           dict(CT=tl.float32, BLOCK=1024))
    print("ok reduce")
""")


def test_coord_loss_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True,
                         text=True)
    if out.stdout.startswith("skip:"):
        pytest.skip(out.stdout[5:].strip())
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("ok") == 10, out.stdout

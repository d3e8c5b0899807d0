"""The Triton coordinate-loss and PFLD kernels compile for a GPU (sm_90) on a machine without one.

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
    from triton_kernels import coord_loss, pfld_loss

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
    for dtype in ("fp32", "fp16", "bf16"):
        ptr = "*" + dtype
        ptx_of(pfld_loss._sample_kernel,
               dict(pred_ptr=ptr, target_ptr=ptr, angles_ptr=ptr, angles_target_ptr=ptr,
                    attr_ptr=ptr, weights_ptr=ptr, grad_ptr="*fp32" if dtype == "fp16" else ptr,
                    grad_angles_ptr="*fp32", partial_ptr="*fp32", batch="i32", row="i64",
                    num_angles="i32", num_classes="i32", batch_f="fp64", period="fp64",
                    weight_floor="fp64"),
               dict(HAS_WEIGHTS=False, COMPUTE_GRAD=True, CT=tl.float32, SAMPLES=4,
                    BLOCK=256, BLOCK_B=64, BLOCK_C=8, BLOCK_K=4))
        ptx_of(pfld_loss._batch_sum_kernel,
               dict(partial_ptr="*fp32", weighted_ptr="*fp32", l2_ptr="*fp32", batch="i32",
                    batch_f="fp64"),
               dict(CT=tl.float32, BLOCK_B=64))
        print("ok pfld", dtype)
""")


def test_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True,
                         text=True)
    if out.stdout.startswith("skip:"):
        pytest.skip(out.stdout[5:].strip())
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("ok") == 13, out.stdout

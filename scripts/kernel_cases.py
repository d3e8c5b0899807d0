"""The kernels scripts/kernel_report.py compiles, with their launch facts (one entry per op).

The headline case of each op is what its benchmark measures on the GPU: for AWing, B=64 K=99
64×64 fp32 with the weighted loss map (k=3).
"""

import triton.language as tl

from scripts.kernel_report import Case

OPS = ("awing_loss",)

_HEADLINE_AWING = dict(shape=(64, 99, 64, 64), map_kernel=3)


def cuda_cases(op):
    """{substring of the demangled kernel name: Case} for csrc/cuda/<op>.cu."""
    if op == "awing_loss":
        # csrc/cuda/awing_loss.cu: 256 threads, 64×64 tiles; the hot loop is the row loop of a
        # thread's strip: four pixels per iteration (the no-map kernel unrolls its four rows).
        return {
            "awing_tiles_kernel<float, 1, true, false>": Case("cuda awing fp32 map k=3", 256, 4),
            "awing_tiles_kernel<float, 0, true, false>": Case("cuda awing fp32 no map", 256, 16),
            "awing_tiles_kernel<float, 1, false, false>": Case("cuda awing fp32 map k=3 W%4≠0", 256, 4),
            "awing_tiles_kernel<c10::BFloat16, 1, true, false>": Case("cuda awing bf16 map k=3", 256,
                                                               4),
        }
    return {}


def triton_cases(op):
    """[(Case, jit function, signature, constexprs, attrs, num_warps)] the wrapper launches;
    attrs mark the arguments the JIT would specialise as divisible by 16 (aligned pointers,
    such integers), which is what lets Triton vectorise."""
    if op != "awing_loss":
        return []
    from triton_kernels import awing_loss as kernels
    cases = []
    for label, dtype, width, map_kernel in (("triton awing fp32 map k=3", "fp32", 64, 3),
                                            ("triton awing fp32 map k=3 W=100", "fp32", 100, 3),
                                            ("triton awing fp32 no map", "fp32", 64, 0),
                                            ("triton awing bf16 map k=3", "bf16", 64, 3)):
        shape = _HEADLINE_AWING["shape"][:3] + (width,)
        spec = kernels.specialisation(shape, map_kernel=map_kernel, weight_mode=0, reduction=1,
                                      compute_grad=True)
        constexprs = dict(spec.constexprs, CT=tl.float32, FAST=True)
        ints = dict(zip(("H", "W", "tiles_w", "tiles_per_plane", "num_tiles"),
                        (shape[2], shape[3]) + spec.tile_args))
        signature, attrs = {}, {}
        for i, name in enumerate(kernels.tiles_kernel.arg_names):
            if name in constexprs:
                signature[name] = "constexpr"
            elif name.endswith("_ptr"):
                signature[name] = "*" + ("fp32" if name in ("loss_ptr", "partial_ptr") or
                                         (name == "grad_ptr" and dtype == "fp16") else dtype)
                attrs[(i,)] = [["tt.divisibility", 16]]
            else:
                signature[name] = kernels.SCALAR_TYPES.get(name, "i32")
                if ints.get(name, 1) % 16 == 0:
                    attrs[(i,)] = [["tt.divisibility", 16]]
        cases.append((Case(label, 32 * spec.num_warps, spec.elements_per_thread),
                      kernels.tiles_kernel, signature, constexprs, attrs, spec.num_warps))
    return cases

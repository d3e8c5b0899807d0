"""The kernels scripts/kernel_report.py compiles, with their launch facts (one entry per op).

The headline case of each op is what its benchmark measures on the GPU: for AWing, B=64 K=99
64×64 fp32 with the weighted loss map (k=3).
"""

import triton.language as tl

from scripts.kernel_report import Case

OPS = ("awing_loss", "awing_loss_from_coords")

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
    if op == "awing_loss_from_coords":
        # csrc/cuda/awing_loss_from_coords.cu: same tiling. The hot loop found is the tile loop
        # (its row loop of 4 pixels inside, not unrolled): its static count holds one row
        # iteration plus the tile's column set-up, which runs once per 16 pixels, so
        # per_element over-states the cost per pixel.
        return {
            "coords_tiles_kernel<float, true, true, false>": Case("cuda coords fp32 map k=3", 256, 4),
            "coords_tiles_kernel<float, false, true, false>": Case("cuda coords fp32 no map", 256, 4),
            "coords_tiles_kernel<c10::BFloat16, true, true, false>": Case("cuda coords bf16 map k=3",
                                                                    256, 4),
        }
    return {}


def triton_cases(op):
    """[(Case, jit function, signature, constexprs, attrs, num_warps)] the wrapper launches;
    attrs mark the arguments the JIT would specialise as divisible by 16 (aligned pointers,
    such integers), which is what lets Triton vectorise."""
    if op == "awing_loss":
        from triton_kernels import awing_loss as kernels
        variants = (("triton awing fp32 map k=3", "fp32", 64, 3),
                    ("triton awing fp32 map k=3 W=100", "fp32", 100, 3),
                    ("triton awing fp32 no map", "fp32", 64, 0),
                    ("triton awing bf16 map k=3", "bf16", 64, 3))
        spec_of = lambda shape, k: kernels.specialisation(  # noqa: E731
            shape, map_kernel=k, weight_mode=0, reduction=1, compute_grad=True)
    elif op == "awing_loss_from_coords":
        from triton_kernels import awing_loss_from_coords as kernels
        variants = (("triton coords fp32 map k=3", "fp32", 64, 3),
                    ("triton coords fp32 no map", "fp32", 64, 0),
                    ("triton coords bf16 map k=3", "bf16", 64, 3))
        spec_of = lambda shape, k: kernels.specialisation(  # noqa: E731
            shape, map_kernel=k, has_weight=False, reduction=1, compute_grad=True)
    else:
        return []
    cases = []
    for label, dtype, width, map_kernel in variants:
        shape = _HEADLINE_AWING["shape"][:3] + (width,)
        spec = spec_of(shape, map_kernel)
        constexprs = dict(spec.constexprs, CT=tl.float32, FAST=True)
        ints = dict(zip(("K", "H", "W", "tiles_w", "tiles_per_plane", "num_tiles"),
                        (shape[1], shape[2], shape[3]) + spec.tile_args))
        signature, attrs = {}, {}
        for i, name in enumerate(kernels.tiles_kernel.arg_names):
            if name in constexprs:
                signature[name] = "constexpr"
            elif name.endswith("_ptr"):
                signature[name] = "*" + ("fp32" if name in ("loss_ptr", "partial_ptr", "coords_ptr",
                                                       "sigma_ptr") or
                                         (name == "grad_ptr" and dtype == "fp16") else dtype)
                attrs[(i,)] = [["tt.divisibility", 16]]
            else:
                signature[name] = kernels.SCALAR_TYPES.get(name, "i32")
                if ints.get(name, 1) % 16 == 0:
                    attrs[(i,)] = [["tt.divisibility", 16]]
        cases.append((Case(label, 32 * spec.num_warps, spec.elements_per_thread),
                      kernels.tiles_kernel, signature, constexprs, attrs, spec.num_warps))
    return cases

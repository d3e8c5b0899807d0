"""The kernels scripts/kernel_report.py compiles, with their launch facts (one entry per op).

The headline case of each op is what its benchmark measures on the GPU: for AWing, B=64 K=99
64×64 fp32 with the weighted loss map (k=3), and its multi-stage op (S = 4 stacks, the stage
loop inside the tile loop: a "per element" of these cases is one pixel of one stage); for the coordinate losses (Wing, SoftWing, ACR:
csrc/cuda/coord_loss.cu, triton_kernels/coord_loss.py) and PFLD, B ∈ {64, 1024}, N=98, D=2.
"""

import triton.language as tl

from scripts.kernel_report import Case

OPS = ("awing_loss", "awing_loss_from_coords", "coord_loss", "pfld_loss")

_HEADLINE_AWING = dict(shape=(64, 99, 64, 64), map_kernel=3)


def cuda_cases(op):
    """{substring of the demangled kernel name: Case} for csrc/cuda/<op>.cu."""
    if op == "awing_loss":
        # csrc/cuda/awing_loss.cu: 256 threads, 64×64 tiles; the hot loop is the row loop of a
        # thread's strip: four pixels per iteration (the no-map kernel unrolls its four rows).
        # The multi-stage kernels (last template argument true): with the map the hot loop
        # found is the stage loop, four pixels of one stage per iteration; without it the tile
        # loop, whose four unrolled rows each hold a stage loop counted once (16 pixel-stages).
        return {
            "awing_tiles_kernel<float, 1, true, false, false>": Case("cuda awing fp32 map k=3", 256,
                                                                     4),
            "awing_tiles_kernel<float, 0, true, false, false>": Case("cuda awing fp32 no map", 256,
                                                                     16),
            "awing_tiles_kernel<float, 1, false, false, false>": Case(
                "cuda awing fp32 map k=3 W%4≠0", 256, 4),
            "awing_tiles_kernel<c10::BFloat16, 1, true, false, false>": Case(
                "cuda awing bf16 map k=3", 256, 4),
            "awing_tiles_kernel<float, 1, true, false, true>": Case(
                "cuda awing stages fp32 map k=3", 256, 4),
            "awing_tiles_kernel<float, 0, true, false, true>": Case(
                "cuda awing stages fp32 no map", 256, 16),
        }
    if op == "awing_loss_from_coords":
        # csrc/cuda/awing_loss_from_coords.cu: same tiling. The hot loop found is the tile loop
        # (its row loop of 4 pixels inside, not unrolled): its static count holds one row
        # iteration plus the tile's column set-up, which runs once per 16 pixels, so
        # per_element over-states the cost per pixel.
        return {
            "coords_tiles_kernel<float, true, true, false, false>": Case("cuda coords fp32 map k=3",
                                                                         256, 4),
            "coords_tiles_kernel<float, false, true, false, false>": Case("cuda coords fp32 no map",
                                                                          256, 4),
            "coords_tiles_kernel<c10::BFloat16, true, true, false, false>": Case(
                "cuda coords bf16 map k=3", 256, 4),
            # The tile loop again (row and stage loops inside, each counted once).
            "coords_tiles_kernel<float, true, true, false, true>": Case(
                "cuda coords stages fp32 map k=3", 256, 4),
        }
    if op == "coord_loss":
        # 512 threads, a grid-stride loop of one element per thread and iteration.
        return {f"coord_loss_kernel<{dtype}, landmark_kernels::{fn}<float> >":
                Case(f"cuda {label} {name}", 512, 1)
                for fn, label in (("WingFn", "wing"), ("SoftWingFn", "soft_wing"),
                                  ("AcrFn", "acr"))
                for dtype, name in (("float", "fp32"), ("c10::BFloat16", "bf16"))}
    if op == "pfld_loss":
        # Stage 1: a warp per sample, one element per lane and iteration; the one-block kernel
        # (B·N·D ≤ 32768, e.g. B=64) and stage 2 are dominated by their per-sample loops.
        return {"distances_kernel<float>": Case("cuda pfld distances fp32", 256, 1),
                "one_block_kernel<float>": Case("cuda pfld one block fp32", 1024, 1),
                "batch_kernel<float>": Case("cuda pfld batch stage fp32", 1024, 1)}
    return {}


def triton_cases(op):
    """[(Case, jit function, signature, constexprs, attrs, num_warps)] the wrapper launches;
    attrs mark the arguments the JIT would specialise as divisible by 16 (aligned pointers,
    such integers), which is what lets Triton vectorise."""
    if op == "coord_loss":
        return _coord_triton_cases()
    if op == "pfld_loss":
        return _pfld_triton_cases()
    if op == "awing_loss":
        from triton_kernels import awing_loss as kernels
        variants = (("triton awing fp32 map k=3", "fp32", 64, 3, None),
                    ("triton awing fp32 map k=3 W=100", "fp32", 100, 3, None),
                    ("triton awing fp32 no map", "fp32", 64, 0, None),
                    ("triton awing bf16 map k=3", "bf16", 64, 3, None),
                    ("triton awing stages S=4 fp32 map k=3", "fp32", 64, 3, 4))
        spec_of = lambda shape, k, stages: kernels.specialisation(  # noqa: E731
            shape, map_kernel=k, weight_mode=0, reduction=1, compute_grad=True, stages=stages)
    elif op == "awing_loss_from_coords":
        from triton_kernels import awing_loss_from_coords as kernels
        variants = (("triton coords fp32 map k=3", "fp32", 64, 3, None),
                    ("triton coords fp32 no map", "fp32", 64, 0, None),
                    ("triton coords bf16 map k=3", "bf16", 64, 3, None),
                    ("triton coords stages S=4 fp32 map k=3", "fp32", 64, 3, 4))
        spec_of = lambda shape, k, stages: kernels.specialisation(  # noqa: E731
            shape, map_kernel=k, has_weight=False, reduction=1, compute_grad=True,
            stages=stages)
    else:
        return []
    cases = []
    for label, dtype, width, map_kernel, stages in variants:
        shape = _HEADLINE_AWING["shape"][:3] + (width,)
        spec = spec_of(shape, map_kernel, stages)
        constexprs = dict(spec.constexprs, CT=tl.float32, FAST=True)
        ints = dict(zip(("K", "H", "W", "tiles_w", "tiles_per_plane", "num_tiles", "S",
                         "stage_numel"), (shape[1], shape[2], shape[3]) + spec.tile_args))
        signature, attrs = {}, {}
        for i, name in enumerate(kernels.tiles_kernel.arg_names):
            if name in constexprs:
                signature[name] = "constexpr"
            elif name.endswith("_ptr"):
                signature[name] = "*" + ("fp32" if name in ("loss_ptr", "partial_ptr", "coords_ptr",
                                                       "sigma_ptr", "stage_weight_ptr") or
                                         (name == "grad_ptr" and dtype == "fp16") else dtype)
                attrs[(i,)] = [["tt.divisibility", 16]]
            else:
                signature[name] = kernels.SCALAR_TYPES.get(name, "i32")
                if ints.get(name, 1) % 16 == 0:
                    attrs[(i,)] = [["tt.divisibility", 16]]
        cases.append((Case(label, 32 * spec.num_warps, spec.elements_per_thread),
                      kernels.tiles_kernel, signature, constexprs, attrs, spec.num_warps))
    return cases


def _signature(fn, constexprs, types):
    """(signature, attrs) of a Triton kernel: pointers 16-byte aligned, as the wrappers pass."""
    signature, attrs = {}, {}
    for i, name in enumerate(fn.arg_names):
        if name in constexprs:
            signature[name] = "constexpr"
        else:
            signature[name] = types.get(name, "i32")
            if name.endswith("_ptr"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    return signature, attrs


def _coord_triton_cases():
    from triton_kernels import coord_loss as kernels
    cases = []
    for label, loss, dtype, reduce in (("wing fp32", 0, "fp32", 2), ("soft_wing fp32", 1, "fp32", 2),
                                       ("acr fp32", 2, "fp32", 2), ("wing bf16", 0, "bf16", 2),
                                       ("wing fp32 multi-program", 0, "fp32", 1)):
        constexprs = dict(LOSS=loss, WEIGHT_MODE=0, PHI_PER_LANDMARK=False, STORE_LOSS=False,
                          REDUCE=reduce, COMPUTE_GRAD=True, CT=tl.float32, BLOCK=1024)
        types = {name: "*" + dtype for name in ("pred_ptr", "target_ptr", "weight_ptr",
                                                 "phi_ptr", "grad_ptr")}
        types.update(loss_ptr="*fp32", partial_ptr="*fp32", numel="i64", dims="i64",
                     **{name: "fp64" for name in ("p0", "p1", "p2", "grad_scale", "divisor")})
        signature, attrs = _signature(kernels._coord_loss_kernel, constexprs, types)
        cases.append((Case(f"triton {label}", 128, 8), kernels._coord_loss_kernel, signature,
                      constexprs, attrs, 4))
    return cases


def _pfld_triton_cases():
    from triton_kernels import pfld_loss as kernels
    constexprs = dict(COMPUTE_GRAD=True, CT=tl.float32, BLOCK=256)
    types = dict(pred_ptr="*fp32", target_ptr="*fp32", grad_ptr="*fp32", d2_ptr="*fp32",
                 row="i64", grad_scale="fp64")
    signature, attrs = _signature(kernels._sample_distance_kernel, constexprs, types)
    return [(Case("triton pfld distances fp32", 128, 2), kernels._sample_distance_kernel,
             signature, constexprs, attrs, 4)]

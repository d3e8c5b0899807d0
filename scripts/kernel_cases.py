"""The kernels scripts/kernel_report.py compiles, with their launch facts (one entry per op).

The headline case of each op is what its benchmark measures on the GPU: for AWing, B=64 K=99
64×64 fp32 with the weighted loss map (k=3), and its multi-stage op (S = 4 stacks, the stage
loop inside the tile loop: a "per element" of these cases is one pixel of one stage); for the
coordinate losses (Wing, SoftWing, ACR: csrc/cuda/coord_loss.cu, triton_kernels/coord_loss.py)
and PFLD, B ∈ {64, 1024}, N=98, D=2; for the graph ops (issue 9) B=128, N=98, the WFLW-98 top-3
graph (E=470 edges, 4.8 per node), F=1024 for the aggregation, D=2 for the Laplacian. A gather
kernel's element is one feature of one edge: its per_element times 4.8 is the cost per output
feature.
"""

import triton.language as tl

from scripts.kernel_report import Case

OPS = ("awing_loss", "awing_loss_from_coords", "coord_loss", "pfld_loss", "graph_aggregate",
       "graph_laplacian")

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
        # Stage 1: a warp per sample, one element per lane and iteration (after the class
        # weights); the one-block kernel (B·N·D ≤ 32768, e.g. B=64) runs both stages.
        return {"samples_kernel<float>": Case("cuda pfld samples fp32", 256, 1),
                "one_block_kernel<float>": Case("cuda pfld one block fp32", 1024, 1),
                "means_kernel<float>": Case("cuda pfld means fp32", 1024, 1)}
    if op == "graph_aggregate":
        return _graph_cuda_cases()
    if op == "graph_laplacian":
        # One thread per output entry; the hot loop is its walk over the node's list.
        return {"laplacian_kernel<float>": Case("cuda laplacian fp32", 256, 1, hot="loads"),
                "laplacian_kernel<c10::BFloat16>": Case("cuda laplacian bf16", 256, 1,
                                                        hot="loads")}
    return {}


def _graph_cuda_cases():
    """csrc/cuda/graph_aggregate.cu: a warp per (sample, node), a lane owns 4 features of each
    chunk of 128; F=1024 runs the 4-chunk (512-feature) pass twice. The hot loop is the per-edge
    loop (hot="loads"): 4·chunks features of one edge per lane (the backward's self edge is
    handled outside it, once per node and pass). The scalar fallback (F % 4 ≠ 0 or unaligned
    rows) is not reported: its edge loop holds no load wider than the index loads around it."""
    cases = {}
    for dtype, name in (("float", "fp32"), ("c10::BFloat16", "bf16")):
        cases[f"forward_kernel<{dtype}, 4, true>"] = Case(f"cuda forward {name} F=1024", 256,
                                                          16, hot="loads")
        cases[f"backward_nodes_kernel<{dtype}, 4, true>"] = Case(
            f"cuda backward nodes {name} F=1024", 256, 16, hot="loads")
    cases["backward_rows_kernel<float>"] = Case("cuda backward rows fp32", 256, 1, hot="loads")
    return cases


def triton_cases(op):
    """[(Case, jit function, signature, constexprs, attrs, num_warps)] the wrapper launches;
    attrs mark the arguments the JIT would specialise as divisible by 16 (aligned pointers,
    such integers), which is what lets Triton vectorise."""
    if op == "coord_loss":
        return _coord_triton_cases()
    if op == "pfld_loss":
        return _pfld_triton_cases()
    if op == "graph_aggregate":
        return _graph_triton_cases()
    if op == "graph_laplacian":
        return _laplacian_triton_cases()
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
    constexprs = dict(HAS_WEIGHTS=False, COMPUTE_GRAD=True, CT=tl.float32, SAMPLES=4,
                      BLOCK=256, BLOCK_B=64, BLOCK_C=8, BLOCK_K=4)
    types = dict(pred_ptr="*fp32", target_ptr="*fp32", angles_ptr="*fp32",
                 angles_target_ptr="*fp32", attr_ptr="*fp32", weights_ptr="*fp32",
                 grad_ptr="*fp32", grad_angles_ptr="*fp32", partial_ptr="*fp32", batch="i32",
                 row="i64", num_angles="i32", num_classes="i32", batch_f="fp64", period="fp64",
                 weight_floor="fp64")
    signature, attrs = _signature(kernels._sample_kernel, constexprs, types)
    # A program takes 4 samples × 256 elements of a row block per step.
    return [(Case("triton pfld samples fp32", 128, 8), kernels._sample_kernel,
             signature, constexprs, attrs, 4)]


def _jit_signature(fn, values, constexprs):
    """(signature, constexprs, attrs) as the JIT specialises a launch: `values` gives each
    runtime argument, a pointer as its type ("*fp32"; the wrappers' tensors are 16-byte
    aligned) or an integer, typed and marked divisible by 16 (or made a constant, 1) by Triton's
    own rule."""
    from triton.backends.compiler import BaseBackend
    from triton._C.libtriton import native_specialize_impl
    signature, constexprs, attrs = {}, dict(constexprs), {}
    for i, name in enumerate(fn.arg_names):
        if name in constexprs:
            signature[name] = "constexpr"
            continue
        value = values[name]
        if isinstance(value, str):
            signature[name], key = value, "D"
        else:
            signature[name], key = native_specialize_impl(BaseBackend, value, False, True, True)
            if signature[name] == "constexpr":
                constexprs[name] = key
                continue
        if key == "D":
            attrs[(i,)] = [["tt.divisibility", 16]]
    return signature, constexprs, attrs


_GRAPH = dict(B=128, N=98, E=470, F=1024)


def _graph_triton_cases():
    """triton_kernels/graph_aggregate.py at the headline, as its wrappers launch it: BLOCK_F and
    num_warps from its launch rule, h_self, h_neigh and grad_out contiguous (B,N,F); the hot loop
    is the per-edge loop (hot="loads")."""
    from triton_kernels import graph_aggregate as kernels
    B, N, E, F = (_GRAPH[k] for k in "BNEF")
    block_f, warps = kernels._block_f(F), kernels._num_warps(kernels._block_f(F))
    csr = dict(rowptr_ptr="*i64", col_ptr="*i64", t_rowptr_ptr="*i64", t_col_ptr="*i64",
               perm_ptr="*i64")
    strides = dict(hs_sb=N * F, hs_sn=F, hn_sb=N * F, hn_sn=F, go_sb=N * F, go_sn=F)
    cases = []
    for name, dtype in (("fp32", "fp32"), ("bf16", "bf16")):
        p = "*" + dtype
        for by_rows, kind in ((True, "static"), (False, "per-sample transposed")):
            if dtype == "bf16" and not by_rows:
                continue
            w_sb = 0 if by_rows else E  # shared logits (SemGraphConv) or per sample
            fwd = dict(hs_ptr=p, hn_ptr=p, w_ptr="*fp32", bias_ptr=p, out_ptr=p, **csr, N=N, F=F,
                       E=E, w_sb=w_sb, **strides)
            sig = _jit_signature(kernels._forward_kernel, fwd,
                                 dict(HAS_BIAS=True, BY_ROWS=by_rows, CT=tl.float32,
                                      BLOCK_F=block_f))
            cases.append((Case(f"triton forward {name} {kind}", 32 * warps,
                               block_f // (32 * warps), hot="loads"),
                          kernels._forward_kernel, *sig, warps))
            bwd = dict(go_ptr=p, hs_ptr=p, hn_ptr=p, w_ptr="*fp32", gs_ptr=p, gn_ptr=p,
                       da_ptr="*fp32", bias_part_ptr="*fp32", **csr, B=B, N=N, F=F, E=E,
                       w_sb=w_sb, **strides)
            sig = _jit_signature(kernels._backward_nodes_kernel, bwd,
                                 dict(BIAS=True, BY_ROWS=not by_rows, CT=tl.float32,
                                      UNITS=kernels._UNITS, BLOCK_F=block_f))
            cases.append((Case(f"triton backward nodes {name} {kind}", 32 * warps,
                               block_f // (32 * warps), hot="loads"),
                          kernels._backward_nodes_kernel, *sig, warps))
    return cases


def _laplacian_triton_cases():
    from triton_kernels import graph_laplacian as kernels
    cases = []
    for name, dtype in (("fp32", "fp32"), ("bf16", "bf16")):
        values = dict(x_ptr="*" + dtype, out_ptr="*" + dtype, rowptr_ptr="*i64", col_ptr="*i64",
                      t_rowptr_ptr="*i64", t_col_ptr="*i64", N=_GRAPH["N"], D=2, E=_GRAPH["E"])
        sig = _jit_signature(kernels._laplacian_kernel, values,
                             dict(TRANSPOSE=True, CT=tl.float32, BLOCK_D=2))
        cases.append((Case(f"triton laplacian {name}", 32, 1, hot="loads"),
                      kernels._laplacian_kernel, *sig, 1))
    return cases

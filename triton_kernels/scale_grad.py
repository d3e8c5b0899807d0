"""grad *= scale in place, skipped when scale is 1: the fused losses' backward on CUDA tensors
when the CUDA kernels are not built (csrc/cuda/scale_grad.cu is the same for a CUDA build).

The scale stays on the device: every program reads it and returns at once when it is 1 (the
usual grad_output), so the common backward is one near-empty launch with no host sync.
"""

import triton
import triton.language as tl

_BLOCK = 1024
_MAX_PROGRAMS = 1024  # a grid-stride loop: when scale is 1 only these programs start and exit


@triton.jit
def _scale_kernel(grad_ptr, scale_ptr, n, CT: tl.constexpr, BLOCK: tl.constexpr):
    s = tl.load(scale_ptr).to(CT)
    if s != 1.0:
        for start in range(tl.program_id(0) * BLOCK, n, tl.num_programs(0) * BLOCK):
            offs = start + tl.arange(0, BLOCK)
            mask = offs < n
            g = tl.load(grad_ptr + offs, mask=mask).to(CT)
            tl.store(grad_ptr + offs, (g * s).to(grad_ptr.dtype.element_ty), mask=mask)


def scale_grad_(grad, scale):
    """grad (contiguous) *= scale (a one-element tensor on grad's device), in fp32 (fp64 for
    fp64 grad), rounded once to grad's dtype."""
    n = grad.numel()
    if n == 0:
        return
    ct = tl.float64 if grad.dtype.itemsize == 8 and grad.is_floating_point() else tl.float32
    grid = (max(1, min(triton.cdiv(n, _BLOCK), _MAX_PROGRAMS)),)
    _scale_kernel[grid](grad, scale, n, CT=ct, BLOCK=_BLOCK)

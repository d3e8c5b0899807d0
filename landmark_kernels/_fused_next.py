"""Registration of the fused loss ops under the hardened contract of issue 6 (stand-in).

Stand-in for issue 6's `register_fused_loss(name, *, check, triton_kernel)` in _fused.py, with
the same signature: when that lands, the coordinate losses import it from there and this file
goes. The contract: the op `<name>(Tensor pred, ..., int reduction, bool compute_grad) ->
(Tensor loss, Tensor grad)` returns the loss in fp32 (fp64 for fp64) and, when compute_grad,
the exact ∂loss/∂pred for grad_output = 1 (the reduction's divisor folded in), stored in fp32
for fp16 pred and in pred's dtype otherwise. The backward multiplies it by grad_output.
"""

import torch

from . import _backends


def loss_dtype(dtype):
    """Losses are returned in the accumulation dtype: fp64 for fp64 input, else fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def grad_dtype(dtype):
    """The stored gradient's dtype: fp32 for fp16 (whose range would overflow or flush the exact,
    reduction-scaled gradient), else pred's (C++: coord_loss.h coord_grad_dtype)."""
    return torch.float32 if dtype == torch.float16 else dtype


def fused_outputs_like(pred, reduction, compute_grad):
    """Empty (loss, grad) as every kernel returns them; also the fake (meta) implementation."""
    loss = pred.new_empty(pred.shape if reduction == 0 else (), dtype=loss_dtype(pred.dtype))
    grad = pred.new_empty(pred.shape if compute_grad else (0,), dtype=grad_dtype(pred.dtype))
    return loss, grad


def _setup_context(ctx, inputs, output):
    _, grad = output
    ctx.mark_non_differentiable(grad)
    ctx.save_for_backward(grad)
    ctx.pred_dtype = inputs[0].dtype
    ctx.compute_grad = inputs[-1]
    ctx.num_inputs = len(inputs)


def _backward(ctx, grad_loss, _grad_of_grad):
    (grad,) = ctx.saved_tensors
    if not ctx.compute_grad:
        raise RuntimeError("this loss was computed with compute_grad=False, so it has no "
                           "gradient buffer; call it with compute_grad=True to backpropagate")
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        # create_graph=True: the stored gradient is a constant to autograd, so a second
        # derivative through it would be silently wrong.
        raise RuntimeError("landmark_kernels losses do not support double backward "
                           "(create_graph=True); use backend='torch' for that")
    # Out of place (the stored gradient is an output of the op); one rounding to pred's dtype.
    return ((grad * grad_loss).to(ctx.pred_dtype),) + (None,) * (ctx.num_inputs - 1)


def register_fused_loss(name, *, check, triton_kernel):
    """Register, for `landmark_kernels::<name>` and `<name>_triton`: fake (check, then allocate
    the outputs), autograd and autocast (fp32); and the Triton op's cpu/cuda implementation
    (check, then `triton_kernel(*args)`, or the C++ CPU kernel on CPU tensors when the Triton
    interpreter is off). `check(*op_args)` raises ValueError/TypeError naming the argument."""
    native = getattr(torch.ops.landmark_kernels, name).default

    def fake(*args):
        check(*args)
        return fused_outputs_like(args[0], args[-2], args[-1])

    def triton_impl(*args):
        check(*args)
        if args[0].device.type == "cpu" and not _backends.TRITON_INTERPRET:
            # No Triton on CPU tensors without the interpreter: the C++ CPU kernel (same
            # contract) stands in, so the op stays usable (opcheck, torch.compile) anywhere.
            return native(*args)
        return triton_kernel(*args)

    torch.library.impl(f"landmark_kernels::{name}_triton", ("cpu", "cuda"))(triton_impl)
    for qualname in (f"landmark_kernels::{name}", f"landmark_kernels::{name}_triton"):
        torch.library.register_fake(qualname)(fake)
        torch.library.register_autograd(qualname, _backward, setup_context=_setup_context)
        for device_type in ("cpu", "cuda"):
            torch.library.register_autocast(qualname, device_type, torch.float32)

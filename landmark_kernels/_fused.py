"""Registration shared by the fused loss ops.

A fused loss op `landmark_kernels::<name>` (and its Triton twin `<name>_triton`) has the schema
`(Tensor pred, ..., int reduction, bool compute_grad) -> (Tensor loss, Tensor grad)`. Its
forward kernel writes the loss and, when asked, the exact gradient ∂loss/∂pred for
grad_output = 1 (the reduction's divisor folded in) into a new buffer, so the backward has only
to multiply that buffer by grad_output. Adding a loss op = one `register_fused_loss` call.

The op itself is functional: its outputs never change after it returns. The public functions
drop the gradient output and mark it private (`keep_grad_private`); for a private buffer, the
backward scales in place with `scale_grad_`, which leaves it untouched when grad_output is 1, so
the common backward makes no pass over the data. Anyone else holding the buffer (a direct
torch.ops caller, opcheck) gets an out-of-place product instead.
"""

import torch

from . import _backends
from ._backends import TRITON_INTERPRET
from ._extension import HAS_CUDA_KERNELS

REDUCTION_CODES = {"none": 0, "mean": 1, "sum": 2, "batchmean": 3}
_NONE, _MEAN, _BATCHMEAN = 0, 1, 3
_PRIVATE = "_landmark_kernels_private_grad"


def loss_dtype(dtype):
    """Losses are returned in the accumulation dtype: fp64 for fp64 input, else fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def grad_dtype(dtype):
    """The stored gradient's dtype: pred's, except fp32 for fp16, whose range would overflow or
    flush the exact per-element gradient (1/N-sized for a mean over ~1e7 pixels)."""
    return torch.float32 if dtype == torch.float16 else dtype


def stored_grad_scale(reduction, shape):
    """The reduction's 1/divisor that the kernels fold into the stored gradient: 1/numel for
    "mean", 1/batch for "batchmean", else 1 (C++: common.h stored_grad_scale)."""
    divisor = 1
    if reduction == _MEAN:
        divisor = shape.numel()
    elif reduction == _BATCHMEAN:
        divisor = shape[0]
    return 1.0 / divisor if divisor > 0 else 1.0


def fused_outputs_like(pred, reduction, compute_grad):
    """Empty (loss, grad) as every kernel returns them; also the fake (meta) implementation."""
    loss = pred.new_empty(pred.shape if reduction == _NONE else (), dtype=loss_dtype(pred.dtype))
    grad = torch.empty(pred.shape, dtype=grad_dtype(pred.dtype), device=pred.device) \
        if compute_grad else pred.new_empty(0)
    return loss, grad


def keep_grad_private(grad):
    """Mark the op's gradient output as dropped by the caller, so that the backward may scale it
    in place (see the module docstring). Call it only on a buffer no one else references."""
    if not torch.compiler.is_compiling():  # traced graphs scale out of place anyway
        setattr(grad, _PRIVATE, True)


def _setup_context(ctx, inputs, output):
    _, grad = output
    ctx.mark_non_differentiable(grad)
    ctx.save_for_backward(grad)
    ctx.pred_dtype = inputs[0].dtype
    ctx.compute_grad = inputs[-1]
    ctx.num_inputs = len(inputs)


def _may_scale_in_place(grad, pred_dtype):
    # Only a private buffer in pred's dtype, and only when the graph is freed: a kept graph
    # (retain_graph, gradcheck) must find it intact for the next backward, and a traced one
    # (torch.compile) is better served out of place, which Inductor fuses.
    return (getattr(grad, _PRIVATE, False) and grad.dtype == pred_dtype
            and not torch.compiler.is_compiling()
            and not torch._C._autograd._get_current_graph_task_keep_graph())


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
    if _may_scale_in_place(grad, ctx.pred_dtype):
        torch.ops.landmark_kernels.scale_grad_(grad, grad_loss)
        grad_pred = grad
    else:  # product in the loss dtype (fp32/fp64), one rounding to pred's dtype
        grad_pred = (grad.to(grad_loss.dtype) * grad_loss).to(ctx.pred_dtype)
    return (grad_pred,) + (None,) * (ctx.num_inputs - 1)


def _scale_grad_cuda(grad, scale):
    """scale_grad_ on CUDA tensors for a build without the CUDA kernels (the Triton backend):
    the Triton kernel skips the data when the scale is 1, as csrc/cuda/scale_grad.cu does."""
    if scale.numel() == 1 and grad.is_contiguous() and _backends.HAS_TRITON:
        from .triton_kernels.scale_grad import scale_grad_
        return scale_grad_(grad, scale)
    grad.copy_(grad.to(scale.dtype) * scale)  # per-element scale (reduction "none")


torch.library.register_fake("landmark_kernels::scale_grad_")(lambda grad, scale: None)
if not HAS_CUDA_KERNELS:  # a CPU-only build still serves CUDA tensors (Triton backend)
    torch.library.impl("landmark_kernels::scale_grad_", "cuda")(_scale_grad_cuda)


def register_fused_loss(name, *, check, triton_kernel, native_autograd_in_cpp=False,
                        stages=False):
    """Register `landmark_kernels::<name>` and `<name>_triton` (schemas in registration.cpp).

    check(*op_args): validates the raw op arguments as the C++ kernels' TORCH_CHECKs do, raising
        ValueError/TypeError naming the argument; the fake kernels and the Triton op run it.
    triton_kernel(): returns the Triton implementation (imported lazily: triton is optional),
        called as fn(*op_args, loss=..., grad=..., grad_scale=...) with the outputs allocated
        here and the reduction's factor for the stored gradient.
    native_autograd_in_cpp: the C++ op's autograd kernel is registered in C++
        (csrc/autograd.cpp, same contract), so only the Triton op gets the Python rule.
    stages: a multi-stage op, pred (S,B,K,H,W): each stage is reduced on its own, so the
        gradient's factor is that of one stage (B,K,H,W).
    Registers for both ops the fake kernel, the autograd rule (the backward above) and autocast
    (fp32); and the Triton op's CPU/CUDA kernel. On CPU tensors without TRITON_INTERPRET there
    is no Triton to run, so the C++ CPU kernel (same contract) stands in: the op stays usable
    (opcheck, torch.compile) on any machine.
    """
    native = getattr(torch.ops.landmark_kernels, name).default

    def fake(*args):
        check(*args)
        return fused_outputs_like(args[0], args[-2], args[-1])

    def triton_impl(*args):
        check(*args)
        pred, reduction, compute_grad = args[0], args[-2], args[-1]
        if pred.device.type == "cpu" and not TRITON_INTERPRET:
            return native(*args)
        loss, grad = fused_outputs_like(pred, reduction, compute_grad)
        shape = pred.shape[1:] if stages else pred.shape
        return triton_kernel()(*args, loss=loss, grad=grad,
                               grad_scale=stored_grad_scale(reduction, shape))

    for qualname in (f"landmark_kernels::{name}", f"landmark_kernels::{name}_triton"):
        torch.library.register_fake(qualname)(fake)
        if qualname.endswith("_triton") or not native_autograd_in_cpp:
            torch.library.register_autograd(qualname, _backward, setup_context=_setup_context)
        for device_type in ("cpu", "cuda"):
            torch.library.register_autocast(qualname, device_type, torch.float32)
    torch.library.impl(f"landmark_kernels::{name}_triton", ("cpu", "cuda"))(triton_impl)

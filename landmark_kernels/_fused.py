"""Registration shared by the fused loss ops.

A fused loss op has the schema `(Tensor pred, ..., int reduction, bool compute_grad)
-> (Tensor loss, Tensor grad)`: its forward kernel writes the loss and, when asked, the gradient
∂loss/∂pred for grad_output = 1 into a new buffer (the mean's 1/N folded in, except in fp16:
see `stored_grad_scale`). The backward registered here only scales that buffer by grad_output,
in place with `scale_grad_`, which leaves it untouched when grad_output is 1: the common backward
makes no pass over the data. Adding a loss op = one `register_fused_loss` call.
"""

import torch

from ._extension import HAS_CUDA_KERNELS

REDUCTION_CODES = {"none": 0, "mean": 1, "sum": 2, "batchmean": 3}
_MEAN = REDUCTION_CODES["mean"]


def loss_dtype(dtype):
    """Losses are returned in the accumulation dtype: fp64 for fp64 input, else fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _mean_left_to_backward(reduction, dtype):
    # fp16's range would flush 1/N-sized stored values (N ~ 1e7 for heatmaps) to zero.
    return reduction == _MEAN and dtype == torch.float16


def stored_grad_scale(reduction, numel, dtype):
    """Factor the kernels fold into the stored gradient (C++: common.h stored_grad_scale): the
    mean's 1/N, except in fp16, where the backward applies it, in fp32."""
    folded = reduction == _MEAN and not _mean_left_to_backward(reduction, dtype)
    return 1.0 / numel if folded and numel > 0 else 1.0


def fused_outputs_like(pred, reduction, compute_grad):
    """Empty (loss, grad) as every kernel returns them; also the fake (meta) implementation."""
    loss = pred.new_empty(pred.shape if reduction == 0 else (), dtype=loss_dtype(pred.dtype))
    grad = torch.empty_like(pred, memory_format=torch.contiguous_format) if compute_grad \
        else pred.new_empty(0)
    return loss, grad


def _setup_context(ctx, inputs, output):
    _, grad = output
    ctx.mark_non_differentiable(grad)
    ctx.save_for_backward(grad)
    ctx.mean_left = _mean_left_to_backward(inputs[-2], inputs[0].dtype)
    ctx.compute_grad = inputs[-1]
    ctx.num_inputs = len(inputs)


def _may_scale_in_place(grad):
    # The stored gradient becomes the returned one, scaled in place (a no-op for grad_output 1),
    # unless the graph is kept for another backward (retain_graph, gradcheck), which must find it
    # intact, or is being traced (torch.compile: out of place lets Inductor fuse the product).
    return (type(grad) is torch.Tensor and not torch.compiler.is_compiling()
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
    scale = grad_loss / grad.numel() if ctx.mean_left else grad_loss
    if _may_scale_in_place(grad):
        torch.ops.landmark_kernels.scale_grad_(grad, scale)
        grad_pred = grad
    else:  # fp32 product, one rounding to grad's dtype (scale is fp32: the loss dtype)
        grad_pred = (grad.to(scale.dtype) * scale).to(grad.dtype)
    return (grad_pred,) + (None,) * (ctx.num_inputs - 1)


def _scale_grad_torch(grad, scale):
    grad.copy_(grad.to(scale.dtype) * scale)


torch.library.register_fake("landmark_kernels::scale_grad_")(lambda grad, scale: None)
if not HAS_CUDA_KERNELS:  # a CPU-only build still serves CUDA tensors (Triton backend)
    torch.library.impl("landmark_kernels::scale_grad_", "cuda")(_scale_grad_torch)


def register_fused_loss(qualname):
    """Register fake, autograd and autocast (fp32) rules for the fused loss op `qualname`."""
    torch.library.register_fake(qualname)(
        lambda pred, *args: fused_outputs_like(pred, args[-2], args[-1]))
    torch.library.register_autograd(qualname, _backward, setup_context=_setup_context)
    for device_type in ("cpu", "cuda"):
        torch.library.register_autocast(qualname, device_type, torch.float32)

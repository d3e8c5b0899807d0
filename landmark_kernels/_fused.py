"""Registration shared by the fused loss ops.

A fused loss op has the schema `(Tensor pred, ..., int reduction, bool compute_grad)
-> (Tensor loss, Tensor grad)`: its forward kernel writes the loss and, when asked, the
per-element gradient ∂loss_i/∂pred_i into a new buffer. The backward registered here only scales
that buffer by grad_output (and 1/N for "mean"). Adding a loss op = one `register_fused_loss`
call with its fake (shape) function.
"""

import torch

REDUCTION_CODES = {"none": 0, "mean": 1, "sum": 2}
_MEAN = REDUCTION_CODES["mean"]
_HALF_TYPES = (torch.float16, torch.bfloat16)


def loss_dtype(dtype):
    """Losses are returned in the accumulation dtype: fp64 for fp64 input, else fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


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
    ctx.mean = inputs[-2] == _MEAN
    ctx.compute_grad = inputs[-1]
    ctx.num_inputs = len(inputs)


def _backward(ctx, grad_loss, _grad_of_grad):
    (grad,) = ctx.saved_tensors
    if not ctx.compute_grad:
        raise RuntimeError("this loss was computed with compute_grad=False, so it has no "
                           "gradient buffer; call it with compute_grad=True to backpropagate")
    scale = grad_loss / grad.numel() if ctx.mean else grad_loss
    if grad.dtype in _HALF_TYPES:
        # 1/N (N ~ 1e7 for heatmaps) underflows in fp16: scale in fp32, round once.
        grad_pred = (grad.float() * scale.float()).to(grad.dtype)
    else:
        grad_pred = grad * scale
    return (grad_pred,) + (None,) * (ctx.num_inputs - 1)


def register_fused_loss(qualname):
    """Register fake, autograd and autocast (fp32) rules for the fused loss op `qualname`."""
    torch.library.register_fake(qualname)(
        lambda pred, *args: fused_outputs_like(pred, args[-2], args[-1]))
    torch.library.register_autograd(qualname, _backward, setup_context=_setup_context)
    for device_type in ("cpu", "cuda"):
        torch.library.register_autocast(qualname, device_type, torch.float32)

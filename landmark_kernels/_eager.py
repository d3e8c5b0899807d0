"""The eager fast path of the fused ops: the op inside a plain torch.autograd.Function.

The ops register their autograd from Python (torch.library.register_autograd), and every eager
call pays that machinery in Python (argument default filling, a Python redispatch, a generated
Function): about as much host time as the whole forward kernel of a batch of 64 faces on the
CPU. In eager mode the public functions therefore run the op below the Autograd key inside a
plain Function: the same kernels and gradients, less Python. Under torch.compile (and for direct
torch.ops calls) the op runs as registered: a compiled graph has no Python overhead to save.
"""

import torch

_BELOW_AUTOGRAD = torch._C._AutoDispatchBelowAutograd


class _FusedLoss(torch.autograd.Function):
    """A fused loss op `(pred, ..., reduction, compute_grad) -> (loss, grad)` seen as loss(pred):
    its gradient buffer never leaves this Function, so the backward may hand it on as it is."""

    @staticmethod
    def forward(ctx, op, *args):
        with _BELOW_AUTOGRAD():
            loss, grad = op(*args)
        ctx.save_for_backward(grad)
        ctx.pred_dtype = args[0].dtype
        ctx.num_args = len(args)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        if torch.is_grad_enabled():
            # create_graph=True: the stored gradient is a constant to autograd, so a second
            # derivative through it would be silently wrong.
            raise RuntimeError("landmark_kernels losses do not support double backward "
                               "(create_graph=True); use backend='torch' for that")
        (grad,) = ctx.saved_tensors
        # The exact gradient for grad_output = 1 is the buffer itself (the common case: a CPU
        # scalar, read without a device sync); else one fp32 product, rounded once. Never in
        # place: a kept graph (retain_graph) finds the buffer intact.
        if not (grad_loss.numel() == 1 and grad_loss.device.type == "cpu"
                and grad_loss.item() == 1.0):
            grad = grad.to(grad_loss.dtype) * grad_loss
        return (None, grad.to(ctx.pred_dtype)) + (None,) * (ctx.num_args - 1)


def fused_loss(op, args):
    """The loss of the fused loss op `op(*args)` (args end with reduction, compute_grad), with
    autograd to pred (args[0]): the Function above in eager mode, the registered op traced."""
    if torch.compiler.is_compiling():
        return op(*args)[0]
    if args[-1]:
        return _FusedLoss.apply(op, *args)
    with _BELOW_AUTOGRAD():  # nothing to record: skip the Python autograd kernel
        return op(*args)[0]


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx, setup_context, backward, op, *args):
        with _BELOW_AUTOGRAD():
            output = op(*args)
        setup_context(ctx, args, output)
        ctx.op_backward = backward
        return output

    @staticmethod
    def backward(ctx, *grads):
        return (None, None, None) + tuple(ctx.op_backward(ctx, *grads))


def call(op, args, *, setup_context, backward):
    """op(*args) — all its outputs — with autograd through the op's own registered
    setup_context/backward (ops with several outputs, e.g. PFLD); args end with compute_grad.
    The Function above in eager mode, the registered op traced."""
    if torch.compiler.is_compiling():
        return op(*args)
    if args[-1]:
        return _Fused.apply(setup_context, backward, op, *args)
    with _BELOW_AUTOGRAD():
        return op(*args)

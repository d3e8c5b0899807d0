"""The eager fast path of the fused ops: the op inside a plain torch.autograd.Function.

The ops register their autograd from Python (torch.library.register_autograd), and every eager
call pays that machinery in Python (argument default filling, a Python redispatch, a generated
Function): about as much host time as the whole forward kernel for a batch of 64 faces on the
CPU. In eager mode the public functions therefore call the op below the Autograd key inside
this Function, with the op's own setup_context and backward: the same kernels, the same
gradients, the same double-backward error, less Python. Under torch.compile (and for direct
torch.ops calls) the op runs as registered: the compiled graph has no Python overhead to save.
"""

import torch

_BELOW_AUTOGRAD = torch._C._AutoDispatchBelowAutograd


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
    """op(*args) — its outputs — with autograd through the op's own setup_context/backward;
    args end with compute_grad. The fast path above in eager mode, the registered op when
    traced."""
    if torch.compiler.is_compiling():
        return op(*args)
    if args[-1]:
        return _Fused.apply(setup_context, backward, op, *args)
    with _BELOW_AUTOGRAD():  # nothing to record: skip the Python autograd kernel
        return op(*args)

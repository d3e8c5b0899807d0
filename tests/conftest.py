"""Shared fixtures: backend parametrisation, the Triton interpreter, GPU skips.

Without a CUDA GPU the Triton kernels run through the Triton interpreter on CPU tensors, so
TRITON_INTERPRET=1 is set here before anything imports triton.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import landmark_kernels as lk  # noqa: E402
import torch._functorch.config  # noqa: E402
import torch._inductor.config  # noqa: E402

# The on-disk AOT/Inductor caches key on the traced graph, not on the Python backward registered
# for an opaque op: after editing that backward, a cached graph would test the old one.
torch._functorch.config.enable_autograd_cache = False
torch._inductor.config.fx_graph_cache = False

DEVICES = ("cpu", "cuda")
NATIVE_BACKENDS = ("cpu", "cuda", "triton")  # everything but the reference itself


def _skip_reason(device, backend):
    if device == "cuda" and not torch.cuda.is_available():
        return "no CUDA GPU on this machine"
    if backend in lk.available_backends(device):
        return None
    if backend == "cuda" and device == "cuda":
        return "landmark_kernels was built without CUDA kernels (LK_BUILD_CUDA=0?)"
    if backend == "triton":
        return "triton is not installed" if device == "cuda" else \
            "triton on CPU tensors needs TRITON_INTERPRET=1 set before import"
    return None


def backend_params(backends=NATIVE_BACKENDS):
    """(device, backend) pairs each native backend runs on; absent hardware skips, saying why."""
    pairs = [(d, b) for d in DEVICES for b in backends
             if (d, b) not in (("cpu", "cuda"), ("cuda", "cpu"))]
    return [pytest.param(d, b, id=f"{b}-{d}",
                         marks=pytest.mark.skip(reason=_skip_reason(d, b)) if _skip_reason(d, b)
                         else ())
            for d, b in pairs]


def is_interpreted(device, backend):
    """True where Triton runs in its (slow) interpreter: tests keep those shapes small."""
    return backend == "triton" and device == "cpu"


def assert_close(actual, expected, *, dtype=torch.float32, what="value"):
    """Tolerances of the project standard: fp32 1e-5 relative, fp16/bf16 1e-2, fp64 1e-10."""
    tol = {torch.float64: (1e-10, 1e-12), torch.float32: (1e-5, 1e-6),
           torch.float16: (1e-2, 1e-2), torch.bfloat16: (2e-2, 2e-2)}[dtype]
    torch.testing.assert_close(actual.double(), expected.double(), rtol=tol[0], atol=tol[1],
                               msg=lambda m: f"{what}: {m}")


def assert_close_to_scale(actual, expected, *, dtype=torch.float32, what="value"):
    """As assert_close, with the absolute tolerance relative to the tensor's largest entry: for
    results that are sums with cancellation (graph aggregations, bias gradients, x − mean of
    neighbours), whose small entries carry the rounding of their large terms in any fp32 order."""
    tol = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 1e-2,
           torch.bfloat16: 2e-2}[dtype]
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual.double(), expected.double(), rtol=tol, atol=tol * scale,
                               msg=lambda m: f"{what}: {m}")

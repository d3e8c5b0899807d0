"""Timing, statistics and memory for every benchmark case.

A Case is one op at one shape; it lists Impls (ours on each backend, the baselines, the floor).
`measure` times an Impl's forward, backward and forward+backward and records its peak memory.

CPU: wall-clock (time.perf_counter) of each call after warm-up, a sample being the mean of a
group of calls lasting about a millisecond. CUDA: CUDA events around each call, synchronised
after it: where the host is the bottleneck (the small losses) the GPU waits
for the launches and the events include that host time, so a small loss is timed as a training
step pays for it. Peak memory: torch.cuda.max_memory_allocated above what was allocated before
the call (inputs excluded); the CPU allocator keeps no such statistics, so it is left blank there.
"""

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

import landmark_kernels as lk

# (warm-up calls, minimum timed samples, seconds after which to stop adding samples) per size.
REPEATS = {"smoke": (1, 3, 0.0), "quick": (1, 5, 0.1), "full": (5, 30, 1.0)}
# CPU: warm up for at least this long (caches, allocator, the OpenMP pool), and time calls
# shorter than SAMPLE_S in groups that last about that long: one perf_counter reading per call
# of a few µs measures the machine's jitter more than the call.
WARMUP_S = {"smoke": 0.0, "quick": 0.05, "full": 0.2}
SAMPLE_S = 1e-3


@dataclass
class Impl:
    """One way to compute a case. kind: "ours" | "baseline" | "floor" | "loader" (data-loader
    work, reported beside the loss). run() returns the tensor to back-propagate, or None for a
    forward-only implementation (a copy floor, a renderer, a loader step)."""
    name: str
    kind: str
    run: Callable[[], Optional[torch.Tensor]]
    backend: Optional[str] = None


@dataclass
class Case:
    """One op at one shape. leaves: tensors whose .grad is cleared between calls; grad_out: the
    gradient fed to backward (None: the output is a scalar loss); bytes: memory traffic of the
    op (read inputs, write outputs and gradients) for memory-bound ops, else None."""
    op: str
    shape: str
    impls: list
    leaves: tuple = ()
    grad_out: Optional[torch.Tensor] = None
    bytes: Optional[int] = None
    notes: list = field(default_factory=list)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _samples(call, device, size, prepare=None):
    """Per-call times (ms) of call() after warm-up; prepare() (untimed) runs before each call.
    On the CPU a sample is the mean of a group of calls lasting about SAMPLE_S."""
    warmup, repeat, min_s = REPEATS[size]
    group, calls, start_warm = 1, 0, time.perf_counter()
    while calls < warmup or (device.type == "cpu" and
                             time.perf_counter() - start_warm < WARMUP_S[size]):
        arg = prepare() if prepare else None
        call(arg)
        calls += 1
    _sync(device)
    if device.type == "cpu" and calls:
        per_call = (time.perf_counter() - start_warm) / calls
        group = max(1, min(1000, int(SAMPLE_S / max(per_call, 1e-9))))
    times, start_all = [], time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start_all < min_s and
                                  len(times) < 10 * repeat):
        if device.type == "cuda":
            arg = prepare() if prepare else None
            _sync(device)
            start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            start.record()
            call(arg)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
            continue
        total = 0.0
        for _ in range(group):
            arg = prepare() if prepare else None
            t0 = time.perf_counter()
            call(arg)
            total += time.perf_counter() - t0
        times.append(total / group * 1e3)
    return times


def stats(times):
    """median, p20, p80 (ms) of a list of times."""
    q = statistics.quantiles(times, n=10, method="inclusive")
    return {"median_ms": statistics.median(times), "p20_ms": q[1], "p80_ms": q[7],
            "repeats": len(times)}


def measure(case, impl, device, size):
    """{phase: stats} for phases "fwd", "bwd", "fwd_bwd" (forward only: "fwd"), plus
    "peak_mem_bytes" (None on the CPU)."""
    def clear():
        for t in case.leaves:
            t.grad = None

    def backward(out):
        out.backward(case.grad_out)
        clear()

    probe = impl.run()
    differentiable = probe is not None and probe.requires_grad
    if differentiable:  # the implementation computes on this case's tensors, not another's
        probe.backward(case.grad_out)
        if not any(t.grad is not None for t in case.leaves):
            raise RuntimeError(f"{impl.name} of {case.op} {case.shape}: no gradient reached "
                               "the case's tensors")
    del probe
    clear()
    result = {"fwd": stats(_samples(lambda _: impl.run(), device, size))}
    if differentiable:
        result["bwd"] = stats(_samples(backward, device, size, prepare=impl.run))
        result["fwd_bwd"] = stats(_samples(lambda _: backward(impl.run()), device, size))
    result["peak_mem_bytes"] = _peak_memory(impl, backward if differentiable else None, device)
    return result


def _peak_memory(impl, backward, device):
    """Bytes allocated at the peak of one call (and backward) above what was allocated before:
    the implementation's own memory, inputs excluded. CUDA only."""
    if device.type != "cuda":
        return None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    out = impl.run()
    if backward is not None:
        backward(out)
    del out
    _sync(device)
    return torch.cuda.max_memory_allocated(device) - before


def ours_backends(device):
    """Our backends worth timing on `device`: every available one except "torch" (that is the
    eager reference, timed as a baseline) and the Triton interpreter on the CPU (a test tool,
    orders of magnitude too slow to time)."""
    return [b for b in lk.available_backends(device)
            if b != "torch" and not (b == "triton" and device.type == "cpu")]


def ours(name, fn, device):
    """Impls of ours, one per backend: fn(backend) is the forward call."""
    return [Impl(f"{name} [{b}]", "ours", lambda b=b: fn(b), backend=b)
            for b in ours_backends(device)]


def compiled(name, fn, call, size):
    """torch.compile(fn), run as call(compiled_fn); none in the smoke size (compiling costs
    seconds per case)."""
    if size == "smoke":
        return []
    compiled_fn = torch.compile(fn)
    return [Impl(f"torch.compile({name})", "baseline", lambda: call(compiled_fn))]

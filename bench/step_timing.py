"""Forward + backward time of each coordinate loss against the trivial loss and the eager
reference, with the implementations interleaved round by round.

    python -m bench.step_timing [--batch 64 256] [--threads 2] [--rounds 15] [--settle 10]

The losses take tens of microseconds on a CPU, where a shared machine's speed drifts by more
than the differences measured: `python -m bench` times one implementation after another, so a
drift lands on one of them. Here every round times each implementation for a block of calls in
turn (after a few untimed calls that let it settle in after the previous block), and the
minimum and median over rounds are printed (per call, µs) with the ratios the
issue's targets are about: ours ÷ trivial loss (≤ 1: no slower than it) and eager ÷ ours.
CPU only; on a GPU use `python -m bench --device cuda`.
"""

import argparse
import statistics
import time

import torch

import landmark_kernels as lk
from landmark_kernels import reference

from .coord_losses import coord_inputs


def cases(batch, n=98):
    """{name: (ours, eager reference, tensors whose .grad to clear)}: the inputs of
    bench/coord_losses.py (pixel coordinates for Wing/SoftWing, unit scale for ACR/PFLD)."""
    cpu = torch.device("cpu")
    pred, target, _ = coord_inputs(batch, n, cpu, 256.0)
    unit_pred, unit_target, g = coord_inputs(batch, n, cpu, 1.0)
    phi = torch.rand(batch, n, 2, generator=g)
    angles_target = torch.randn(batch, 3, generator=g)
    angles = (angles_target + 0.1 * torch.randn(batch, 3, generator=g)).requires_grad_()
    attributes = (torch.rand(batch, 5, generator=g) < 0.3).float()
    pfld_args = (unit_pred, unit_target, angles, angles_target, attributes)
    return {
        "trivial loss": (lambda: (pred - target).abs().sum(), None, (pred,)),
        "wing": (lambda: lk.wing_loss(pred, target),
                 lambda: reference.wing_loss(pred, target), (pred,)),
        "soft_wing": (lambda: lk.soft_wing_loss(pred, target),
                      lambda: reference.soft_wing_loss(pred, target), (pred,)),
        "acr": (lambda: lk.acr_loss(unit_pred, unit_target, phi),
                lambda: reference.acr_loss(unit_pred, unit_target, phi), (unit_pred,)),
        "pfld": (lambda: lk.pfld_loss(*pfld_args)[0],
                 lambda: reference.pfld_loss(*pfld_args)[0], (unit_pred, angles)),
    }


def block(step, leaves, calls, settle):
    """Mean seconds per call of `calls` forward + backward steps, after `settle` untimed ones:
    the previous block (an eager reference's, with its large temporaries) leaves cold caches
    and, after its single-threaded work, a sleeping OpenMP worker; the first calls after it
    pay for that whatever runs them (~100 µs more for the first, a few µs by the fifth)."""
    steps(step, leaves, settle)
    start = time.perf_counter()
    steps(step, leaves, calls)
    return (time.perf_counter() - start) / calls


def steps(step, leaves, calls):
    """`calls` forward + backward steps, clearing the leaves' gradients after each."""
    for _ in range(calls):
        step().backward()
        for t in leaves:
            t.grad = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=100, help="calls per block")
    parser.add_argument("--settle", type=int, default=10,
                        help="untimed calls at the start of each block")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds of "
          f"{args.calls} calls; µs per forward + backward, min / median over rounds")
    for batch in args.batch:
        impls = {}
        for name, (ours, eager, leaves) in cases(batch).items():
            impls[name] = (ours, leaves)
            if eager is not None:
                impls[name + " (eager reference)"] = (eager, leaves)
        times = {name: [] for name in impls}
        for name, (step, leaves) in impls.items():  # warm-up
            block(step, leaves, args.calls, args.settle)
        for _ in range(args.rounds):
            for name, (step, leaves) in impls.items():
                times[name].append(block(step, leaves, args.calls, args.settle) * 1e6)
        best = {name: min(t) for name, t in times.items()}
        floor = best["trivial loss"]
        print(f"\nB={batch} N=98 D=2")
        print("| implementation | min | median | ours ÷ trivial loss | eager ÷ ours |")
        print("|---|---:|---:|---:|---:|")
        for name, t in times.items():
            ours = name in ("wing", "soft_wing", "acr", "pfld")
            ratio = f"{best[name] / floor:.2f}" if ours else ""
            speedup = f"{best[name + ' (eager reference)'] / best[name]:.1f}x" if ours else ""
            print(f"| {name} | {best[name]:.1f} | {statistics.median(t):.1f} | {ratio} | "
                  f"{speedup} |")


if __name__ == "__main__":
    main()

"""Timing and reporting shared by every benchmark: one table row per (case, variant).

A case provides its inputs and named variants (callables running fwd+bwd); each row reports the
median time and its ratios to the eager reference, torch.compile of it, and the memory floor
measured in the same run.
"""

import statistics
import time

import torch


def median_ms(fn, device, *, warmup=3, repeat=20, min_time_s=0.5):
    """Median wall time of fn() in ms; CUDA timed with events, after warm-up."""
    for _ in range(warmup):
        fn()
    times = []
    start_all = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start_all < min_time_s and
                                  len(times) < 10 * repeat):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def fwd_bwd(loss_fn, pred, *args):
    """A callable running loss_fn(pred, *args) forward and backward, as training does."""
    def run():
        loss_fn(pred, *args).backward()
        pred.grad = None
    return run


def print_table(title, rows, floor="floor (copy)"):
    """rows: dicts with case, variant, ms; ratios are taken against the same case's anchors;
    `floor` names the variant the last column compares with."""
    print(f"\n## {title}\n")
    print(f"| case | variant | time (ms) | vs eager | vs compiled | vs {floor} |")
    print("|---|---|---:|---:|---:|---:|")
    anchors = {}
    for r in rows:
        anchors.setdefault(r["case"], {})[r["variant"]] = r["ms"]
    for r in rows:
        a = anchors[r["case"]]

        def ratio(name):
            return f"{a[name] / r['ms']:.2f}x faster" if name in a and name != r["variant"] \
                else ""
        floor_ms = a.get(floor)
        vs_floor = f"{r['ms'] / floor_ms:.2f}x" if floor_ms and r["variant"] != floor else ""
        print(f"| {r['case']} | {r['variant']} | {r['ms']:.3f} | {ratio('eager reference')} | "
              f"{ratio('torch.compile(reference)')} | {vs_floor} |")

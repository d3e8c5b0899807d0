"""The benchmark: every op of landmark-kernels against the eager reference, torch.compile of it
and the way the public code computes it, on the shapes users train with.

    python -m bench [--ops awing,wing,...] [--device cpu|cuda] [--quick] [--out DIR]

Prints markdown tables and writes DIR/results.json, results.csv (one row per measurement) and
results.png (when matplotlib is installed). See bench/report.py for how to read the ratios.
"""

import argparse
import datetime
import os
import platform
import sys
import time

import torch

from . import awing_loss, awing_loss_from_coords, coord_losses, graph, render
from .harness import measure, ours_backends
from .report import LEGEND, markdown, summarise, write

OPS = {"awing": awing_loss.cases, "awing_from_coords": awing_loss_from_coords.cases,
       "wing": coord_losses.wing, "soft_wing": coord_losses.soft_wing, "acr": coord_losses.acr,
       "pfld": coord_losses.pfld, "graph": graph.graph,
       "relative_location": graph.relative_location, "render": render.render}
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", default=",".join(OPS),
                        help=f"comma-separated, from: {','.join(OPS)} (default: all)")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true",
                        help="one shape per op and fewer repeats (a few minutes on a CPU)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny shapes, 3 repeats, no torch.compile: checks the harness runs")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's own choice)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    args.ops = [op.strip() for op in args.ops.split(",") if op.strip()]
    unknown = sorted(set(args.ops) - set(OPS))
    if unknown:
        parser.error(f"unknown op(s) {unknown}; choose from {list(OPS)}")
    return args


def metadata(device, argv):
    import landmark_kernels as lk
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{_cpu_model()}, {torch.get_num_threads()} threads"
    return {"device": device.type, "device_name": name, "torch": torch.__version__,
            "triton": triton_version, "cuda": torch.version.cuda,
            "landmark_kernels": lk.__version__, "backends_timed": ours_backends(device),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            # Other jobs on the machine slow every row (a loaded CPU most of all): say so.
            "load_average_1min": round(os.getloadavg()[0], 2),
            "command": " ".join(["python -m bench"] + argv)}


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _progress(total):
    """A tqdm bar when tqdm imports, else one stderr line per step."""
    try:
        from tqdm import tqdm
        return tqdm(total=total, unit="impl", file=sys.stderr, dynamic_ncols=True)
    except ImportError:
        class Line:
            n = 0

            def set_description(self, text):
                self.text = text

            def update(self, k):
                self.n += k
                print(f"[{self.n}/{total}] {self.text}", file=sys.stderr, flush=True)

            def close(self):
                pass
        return Line()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    meta = metadata(device, argv)
    notes = [LEGEND]
    if device.type == "cuda":
        notes.append("CUDA: CUDA events around each call after warm-up, synchronised after it; "
                     "where the host is the bottleneck (small losses) the events include the "
                     "host's launch time. Peak memory: above the inputs.")
    else:
        notes.append("CPU: wall-clock of each call after warm-up (a sample: the mean of a group "
                     f"of calls lasting ~1 ms), {torch.get_num_threads()} thread(s).")
        notes.append("Peak memory is CUDA-only (torch.cuda.max_memory_allocated above the "
                     "inputs); the CPU allocator keeps no statistics, so it is blank here.")
        notes.append("The Triton backend is not timed on the CPU: there it runs in Triton's "
                     "interpreter, a test tool far too slow to time.")
    if size == "smoke":
        notes.append("Smoke size: tiny shapes, 3 repeats, torch.compile skipped; not a "
                     "measurement to quote.")
    started = time.perf_counter()
    cases = [case for op in args.ops for case in OPS[op](device, size)]
    bar = _progress(sum(len(c.impls) for c in cases))
    rows, tables = [], []
    for case in cases:
        results = []
        for impl in case.impls:
            bar.set_description(f"{case.op} {case.shape}: {impl.name}"[:60])
            results.append((impl, measure(case, impl, device, size)))
            bar.update(1)
        case_rows = summarise(case, results)
        rows += case_rows
        tables.append(markdown(case, case_rows))
    bar.close()
    meta["seconds"] = round(time.perf_counter() - started, 1)
    paths = write(args.out, meta, rows, notes)
    print(f"# landmark-kernels benchmark: {meta['device_name']}\n\n"
          f"torch {meta['torch']}, triton {meta['triton']}, CUDA {meta['cuda']}; "
          f"{meta['date']}; `{meta['command']}`; {meta['seconds']} s; load average at the "
          f"start {meta['load_average_1min']}\n")
    print("\n".join(f"- {n}" for n in notes) + "\n")
    print("\n\n".join(tables))
    print("\nWritten: " + ", ".join(paths))


if __name__ == "__main__":
    main()

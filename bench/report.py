"""Results: the ratios, the markdown tables, results.json, results.csv and results.png.

One convention for every ratio, all taken on numbers of the same run:
  ours faster by = a baseline's time ÷ the time of ours (the case's first row, backend="auto"):
                   > 1 means ours is faster;
  × floor        = the time of ours ÷ the floor's time (a copy of the same bytes, or the trivial
                   loss): 1.0 would be as fast as merely moving the data.
The time compared is forward+backward, or forward alone where an implementation has no backward.
"""

import csv
import json
import os

LEGEND = ("Times in ms: median [p20–p80]. **ours faster by** = baseline time ÷ time of ours "
          "(the first row, backend=auto) on fwd+bwd (fwd where there is no backward): > 1 means "
          "ours is faster. **× floor** = time of ours ÷ time of the floor (a copy of the bytes "
          "the op must move, or the trivial loss `(pred - target).abs().sum()`): 1.0 is the best "
          "possible. Loader rows are data-loader work on the CPU, outside the training step. "
          "Every ratio compares numbers from this one run.")
COLUMNS = ["op", "case", "implementation", "kind", "backend", "phase", "median_ms", "p20_ms",
           "p80_ms", "repeats", "peak_mem_bytes", "bytes", "gb_per_s", "x_floor",
           "ours_faster_by", "device", "device_name", "torch", "triton", "cuda", "date",
           "command"]


def total_phase(result):
    return "fwd_bwd" if "fwd_bwd" in result else "fwd"


def summarise(case, results):
    """Rows (one per implementation × phase) with the ratios filled on each total-phase row.
    results: [(impl, measure() dict)] in the case's order."""
    def total(result):
        return result[total_phase(result)]["median_ms"]
    anchor = next(total(r) for impl, r in results if impl.kind == "ours")
    floor = next((total(r) for impl, r in results if impl.kind == "floor"), None)
    rows = []
    for impl, result in results:
        for phase in ("fwd", "bwd", "fwd_bwd"):
            if phase not in result:
                continue
            row = dict(op=case.op, case=case.shape, implementation=impl.name, kind=impl.kind,
                       backend=impl.backend, phase=phase, **result[phase],
                       peak_mem_bytes=result["peak_mem_bytes"], bytes=case.bytes,
                       gb_per_s=None, x_floor=None, ours_faster_by=None)
            if phase == total_phase(result):
                ms = result[phase]["median_ms"]
                if impl.kind == "ours":
                    row["x_floor"] = ms / floor if floor else None
                    row["gb_per_s"] = case.bytes / ms / 1e6 if case.bytes else None
                elif impl.kind == "baseline":
                    row["ours_faster_by"] = ms / anchor
                elif impl.kind == "floor" and case.bytes:
                    row["gb_per_s"] = case.bytes / ms / 1e6
            rows.append(row)
    return rows


def _fmt(value, spec):
    return "" if value is None else format(value, spec)


def markdown(case, rows):
    """The markdown table of one case."""
    mb = f", {case.bytes / 1e6:.3g} MB moved" if case.bytes else ""
    lines = [f"### {case.op}: {case.shape}{mb}", "",
             "| implementation | fwd | bwd | fwd+bwd [p20–p80] | peak MiB | GB/s | × floor | "
             "ours faster by |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    by_impl = {}
    for row in rows:
        by_impl.setdefault(row["implementation"], {})[row["phase"]] = row
    for name, phases in by_impl.items():
        last = phases.get("fwd_bwd") or phases["fwd"]
        times = {p: _fmt(phases[p]["median_ms"], ".3f") if p in phases else "" for p in
                 ("fwd", "bwd")}
        both = phases.get("fwd_bwd")
        span = f"{both['median_ms']:.3f} [{both['p20_ms']:.3f}–{both['p80_ms']:.3f}]" if both \
            else ""
        peak = last["peak_mem_bytes"]
        kind = {"ours": f"**{name}**", "loader": f"{name} (loader)"}.get(last["kind"], name)
        faster = f"{last['ours_faster_by']:.2f}x" if last["ours_faster_by"] else ""
        lines.append(f"| {kind} | {times['fwd']} | {times['bwd']} | {span} | "
                     f"{_fmt(peak and peak / 2**20, '.1f')} | {_fmt(last['gb_per_s'], '.1f')} | "
                     f"{_fmt(last['x_floor'], '.2f')} | {faster} |")
    return "\n".join(lines + [""] + [f"- {n}" for n in case.notes])


def write(out_dir, meta, rows, notes):
    """results.json, results.csv and (when matplotlib imports) results.png in out_dir; returns
    the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, "results.json"), os.path.join(out_dir, "results.csv")]
    with open(paths[0], "w") as f:
        json.dump({"meta": meta, "notes": notes, "legend": LEGEND, "rows": rows}, f, indent=1)
    with open(paths[1], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: meta[k] for k in COLUMNS if k in meta}, **row})
    png = _chart(os.path.join(out_dir, "results.png"), meta, rows)
    return paths + ([png] if png else [])


def _chart(path, meta, rows):
    """Horizontal bars: ours faster by, per case and baseline (log scale)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    bars = [(f"{r['op']} {r['case']}: {r['implementation'][:48]}", r["ours_faster_by"])
            for r in rows if r["ours_faster_by"] is not None]
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(12, 0.3 * len(bars) + 1.5))
    labels, values = zip(*reversed(bars))
    ax.barh(range(len(values)), values, color=["tab:green" if v >= 1 else "tab:red"
                                              for v in values])
    for y, v in enumerate(values):
        ax.annotate(f"{v:.2f}x", (v, y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=7)
    ax.set_yticks(range(len(values)), labels, fontsize=7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("ours faster by = baseline time ÷ time of ours (fwd+bwd); > 1: ours faster")
    ax.set_title(f"landmark-kernels, {meta['device_name']}, {meta['date'][:16]}\n"
                 f"{meta['command']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path

"""Smoke test of the benchmark harness: `python -m bench --smoke` (one tiny shape per op, three
repeats, no torch.compile) runs on the CPU and writes results.json/results.csv whose times are
positive and whose ratios are the ratios of those times. No timing is asserted."""

import csv
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS = ("awing", "awing_from_coords", "wing", "soft_wing", "acr", "pfld", "graph",
       "relative_location", "render")


def test_bench_smoke(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--device", "cpu",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ours faster by" in proc.stdout and "× floor" in proc.stdout
    with open(tmp_path / "results.json") as f:
        result = json.load(f)
    with open(tmp_path / "results.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    rows = result["rows"]
    assert len(csv_rows) == len(rows) > 0
    for key in ("device_name", "torch", "triton", "cuda", "date", "command"):
        assert key in csv_rows[0] and key in result["meta"]
    assert result["meta"]["device"] == "cpu"
    assert {r["op"] for r in rows} == set(OPS)
    for r in rows:
        assert r["median_ms"] > 0 and r["p20_ms"] <= r["median_ms"] <= r["p80_ms"], r
    by_impl = {}
    for r in rows:
        by_impl.setdefault((r["op"], r["case"]), {}).setdefault(r["implementation"], {})[
            r["phase"]] = r
    for (op, case), impls in by_impl.items():
        # The ratios are taken on fwd+bwd, or fwd where an implementation has no backward.
        totals = [phases.get("fwd_bwd", phases["fwd"]) for phases in impls.values()]
        assert {"ours", "baseline", "floor"} <= {r["kind"] for r in totals}, (op, case)
        anchor = next(r for r in totals if r["kind"] == "ours")
        floor = next(r for r in totals if r["kind"] == "floor")
        for r in totals:
            if r["kind"] == "baseline":
                assert math.isclose(r["ours_faster_by"], r["median_ms"] / anchor["median_ms"])
            if r["kind"] == "ours":
                assert math.isclose(r["x_floor"], r["median_ms"] / floor["median_ms"])
                if r["bytes"]:
                    assert math.isclose(r["gb_per_s"], r["bytes"] / r["median_ms"] / 1e6)

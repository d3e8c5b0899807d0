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


def test_public_code_baselines_match_the_reference():
    """The restated public code computes our ops' values (where the definitions agree), so the
    benchmark times like against like."""
    import numpy as np
    import torch

    import landmark_kernels as lk
    from landmark_kernels import reference

    sys.path.insert(0, ROOT)
    from bench import public_code
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(2, 5, 2, generator=g) * 15
    target = reference.render_gaussian_heatmaps(coords, 16, 16, 1.5)
    pred = target + 0.2 * torch.randn(target.shape, generator=g)
    rendered = np.stack([public_code.mmpose_unbiased_heatmaps(c, 16, 16, 1.5)
                         for c in coords.numpy()])
    torch.testing.assert_close(torch.from_numpy(rendered), target)
    weight_map = torch.from_numpy(public_code.official_weight_map(target.numpy()))
    torch.testing.assert_close(public_code.official_awing_with_map(pred, target, weight_map),
                               reference.awing_loss(pred, target))
    torch.testing.assert_close(public_code.mmpose_awing(pred, target),
                               reference.awing_loss(pred, target, weight_map=False))

    p, t = 20 * torch.randn(4, 68, 2, generator=g), 20 * torch.randn(4, 68, 2, generator=g)
    torch.testing.assert_close(public_code.mmpose_wing(p, t), reference.wing_loss(p, t))
    torch.testing.assert_close(public_code.mmpose_soft_wing(p, t),
                               reference.soft_wing_loss(p, t))
    u, v, phi = torch.rand(4, 68, 2, generator=g) * 2, torch.rand(4, 68, 2), torch.rand(4, 68, 2)
    torch.testing.assert_close(public_code.official_acr(u, v, phi),
                               100 * reference.acr_loss(u, v, phi))
    angles, angles_t = torch.rand(4, 3, generator=g), torch.rand(4, 3, generator=g)
    attributes = (torch.rand(4, 5, generator=g) < 0.5).float()
    attribute_gt = torch.cat([torch.zeros(4, 1), attributes], dim=1)
    torch.testing.assert_close(
        public_code.pfld_pytorch_loss(attribute_gt, t.flatten(1), angles_t, angles, p.flatten(1),
                                      4),
        reference.pfld_loss(p, t, angles, angles_t, attributes))

    top3 = lk.LandmarkGraph.preset("wflw98_top3")
    hs, hn = torch.randn(3, 98, 8, generator=g), torch.randn(3, 98, 8, generator=g)
    for logits, transposed in ((torch.randn(top3.num_edges, generator=g), False),
                               (torch.randn(3, top3.num_edges, generator=g), True)):
        torch.testing.assert_close(
            public_code.sdfl_dense_aggregate(hs, hn, logits, top3.dense_mask(), transposed),
            reference.graph_relational_aggregate(hs, hn, logits, top3, transposed=transposed))
    edges = lk.LandmarkGraph.preset("wflw98", symmetric=False, self_loops=False)
    p, t = 20 * torch.randn(4, 98, 2, generator=g), 20 * torch.randn(4, 98, 2, generator=g)
    torch.testing.assert_close(
        public_code.sdfl_relative_location(p, t, edges.dense_mask().float()),
        reference.relative_location_loss(p, t, edges))


def test_step_timing_smoke():
    """python -m bench.step_timing runs and prints, per batch size, a row per implementation
    with positive times and the two ratios for each of our losses."""
    proc = subprocess.run([sys.executable, "-m", "bench.step_timing", "--batch", "2", "3",
                           "--rounds", "1", "--calls", "2", "--threads", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for batch in (2, 3):
        table = proc.stdout.split(f"B={batch} N=98 D=2")[1].split("\n\n")[0]
        rows = {line.split(" | ")[0].strip("| "): line.split(" | ")
                for line in table.splitlines() if line.startswith("| ") and "---" not in line}
        for name in ("wing", "soft_wing", "acr", "pfld"):
            cells = rows[name]
            assert float(cells[1]) > 0 and float(cells[3]) > 0 and cells[4].endswith("x |"), cells
            assert float(rows[name + " (eager reference)"][1]) > 0
        assert float(rows["trivial loss"][1]) > 0

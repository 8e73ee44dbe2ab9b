"""benchmarks/labor_sampling.py runs end to end on a tiny graph (gnnsys side) and summarises."""

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_labor_benchmark_prints_rows_and_a_summary(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path))
    monkeypatch.syspath_prepend(str(BENCH))
    import labor_sampling

    argv = ["--graph", "tiny", "--rounds", "2", "--batches", "2", "--batch-size", "32"]
    assert labor_sampling.main([*argv, "--no-peer"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    rows, summary = lines[:-1], lines[-1]
    assert [(r["round"], r["sampler"]) for r in rows] == [
        (0, "neighbor"),
        (0, "labor"),
        (1, "neighbor"),
        (1, "labor"),
    ]
    lo, hi = summary["gnnsys_labor_over_neighbor_nodes"]
    assert 0 < lo <= hi < 1  # LABOR reaches fewer nodes
    assert summary["dgl_labor_over_neighbor_nodes"] is None  # no peer run
    assert summary["gnnsys_labor_over_graphbolt_labor_batches_per_s"] is None
    sys.modules.pop("labor_sampling", None)

"""benchmarks/temporal_sampling.py runs end to end on tiny-stream (gnnsys side), in CSC time
order and with the edges listed in a random order (sorted copy against the scan)."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("unsorted", [False, True])
def test_temporal_benchmark_prints_rows_and_a_summary(capsys, monkeypatch, tmp_path, unsorted):
    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path))
    monkeypatch.syspath_prepend(str(BENCH))
    import temporal_sampling

    argv = ["--graph", "tiny-stream", "--rounds", "1", "--batches", "2", "--warmup", "1"]
    argv += ["--batch-size", "16", "--no-peer", "--out", ""]
    assert temporal_sampling.main(argv + (["--unsorted"] if unsorted else [])) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    rows, summary = lines[1:-1], lines[-1]
    names = [(r["sampler"], r["strategy"]) for r in rows]
    if unsorted:
        assert names[:2] == [("temporal", "uniform"), ("temporal-scan", "uniform")]
        assert rows[0]["sampler_setup_s"] >= 0
        assert summary["sorted_copy_over_scan_batches_per_s"] is not None
    else:
        assert names[:2] == [("temporal", "uniform"), ("temporal", "last")]
        assert summary["sorted_copy_over_scan_batches_per_s"] is None
    assert all(r["batches_per_s"] > 0 for r in rows)
    assert summary["temporal_cost_vs_disjoint_neighbor"] is not None
    assert summary["gnnsys_over_graphbolt_batches_per_s"] is None  # no peer run
    sys.modules.pop("temporal_sampling", None)

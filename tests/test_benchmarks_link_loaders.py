"""benchmarks/link_loaders.py runs end to end on a tiny graph (gnnsys's two fronts, no peer),
summarises, and refuses mixed libraries."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch, tmp_path):
    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path))
    monkeypatch.syspath_prepend(str(BENCH))
    import link_loaders

    yield link_loaders
    sys.modules.pop("link_loaders", None)


@pytest.mark.parametrize("front", ["pyg", "dgl"])
def test_rows_and_summary(bench, capsys, front):
    argv = ["--peer", "none", "--front", front, "--graph", "tiny", "--rounds", "2"]
    assert bench.main([*argv, "--batches", "2", "--batch-size", "16", "--edges", "100"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    rows, summary = lines[:-1], lines[-1]
    assert [(r["round"], r["system"]) for r in rows] == [(0, "gnnsys"), (1, "gnnsys")]
    for r in rows:
        assert r["batches_per_s"] > 0 and r["edges_per_batch"] > 0
        assert r["nodes_per_batch"] >= 16  # at least the batch's endpoints
    assert summary["summary"] == "link_loaders" and summary["edges"] == 100
    lo, hi = summary["gnnsys_batches_per_s"]
    assert 0 < lo <= hi
    assert not any(k.startswith("gnnsys_over_") for k in summary)  # no peer, no ratio


def test_edge_seeds_are_distinct_and_fixed(bench):
    a, b = bench.edge_seeds(50, 20), bench.edge_seeds(50, 20)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 20
    assert bench.edge_seeds(5, 20).numel() == 5  # at most every edge


def test_mixed_libraries_are_refused(bench):
    with pytest.raises(SystemExit, match="different libraries"):
        bench.main(["--peer", "dgl", "--front", "pyg", "--graph", "tiny"])

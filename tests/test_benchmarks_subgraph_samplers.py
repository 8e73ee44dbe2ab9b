"""benchmarks/subgraph_samplers.py runs end to end on tiny graphs (gnnsys's two fronts, no peer),
summarises, and refuses settings the peers cannot run."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch, tmp_path):
    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path))
    monkeypatch.syspath_prepend(str(BENCH))
    import subgraph_samplers

    yield subgraph_samplers
    sys.modules.pop("subgraph_samplers", None)


@pytest.mark.parametrize(
    "graph, front, nodes_at_least",
    [("tiny", "dgl", 32), ("tiny", "pyg", 32), ("tiny-mag", "dgl", 32)],
)
def test_rows_and_summary(bench, capsys, graph, front, nodes_at_least):
    argv = ["--peer", "none", "--front", front, "--graph", graph, "--rounds", "2"]
    assert bench.main([*argv, "--batches", "2", "--batch-size", "32"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    rows, summary = lines[:-1], lines[-1]
    assert [(r["round"], r["system"]) for r in rows] == [(0, "gnnsys"), (1, "gnnsys")]
    for r in rows:
        assert r["batches_per_s"] > 0 and r["edges_per_batch"] > 0
        assert r["nodes_per_batch"] >= nodes_at_least  # at least the 32 seeds
    assert summary["summary"] == "subgraph_samplers" and summary["front"] == front
    lo, hi = summary["gnnsys_batches_per_s"]
    assert 0 < lo <= hi
    assert not any(k.startswith("gnnsys_over_") for k in summary)  # no peer, no ratio
    assert summary["command"].startswith("python benchmarks/subgraph_samplers.py --peer none")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--front", "pyg", "--graph", "tiny-mag"], "homogeneous only"),
        (["--front", "pyg", "--graph", "tiny", "--fanout", "5,3"], "one fanout for every hop"),
        (["--front", "dgl", "--peer", "pyg"], "different libraries"),
    ],
)
def test_settings_the_peers_cannot_run_are_refused(bench, argv, message):
    peer = [] if "--peer" in argv else ["--peer", "none"]
    with pytest.raises(SystemExit, match=message):
        bench.main([*peer, *argv, "--rounds", "1", "--batches", "1"])

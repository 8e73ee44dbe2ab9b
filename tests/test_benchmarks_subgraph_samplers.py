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
    "graph, front, sampler",
    [
        ("tiny", "dgl", "shadow"),
        ("tiny", "pyg", "shadow"),
        ("tiny-mag", "dgl", "shadow"),
        ("tiny", "dgl", "cluster"),
        ("tiny", "pyg", "cluster"),
        ("tiny", "dgl", "saint"),
        ("tiny", "pyg", "saint"),
    ],
)
def test_rows_and_summary(bench, capsys, graph, front, sampler):
    argv = ["--peer", "none", "--front", front, "--graph", graph, "--sampler", sampler]
    size = {"shadow": "32", "cluster": "2", "saint": "64"}[sampler]
    argv += ["--rounds", "2", "--batches", "2", "--batch-size", size, "--parts", "8"]
    assert bench.main(argv) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    rows, summary = lines[:-1], lines[-1]
    assert [(r["round"], r["system"]) for r in rows] == [(0, "gnnsys"), (1, "gnnsys")]
    for r in rows:
        assert r["sampler"] == sampler and r["batches_per_s"] > 0 and r["edges_per_batch"] > 0
        if sampler == "shadow":
            assert r["nodes_per_batch"] >= 32  # at least the seeds
        assert (r["parts"] == 8) == (sampler == "cluster")
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
        (["--front", "dgl", "--graph", "tiny-mag", "--sampler", "saint"], "homogeneous only"),
    ],
)
def test_settings_the_peers_cannot_run_are_refused(bench, argv, message):
    peer = [] if "--peer" in argv else ["--peer", "none"]
    with pytest.raises(SystemExit, match=message):
        bench.main([*peer, *argv, "--rounds", "1", "--batches", "1"])

"""benchmarks/dgl_front_ab.py: trees and workloads are checked, each (round, tree, workload)
runs in its own interpreter, and a tree that cannot run (no dgl here) is reported skipped."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch, tmp_path):
    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import dgl_front_ab

    yield dgl_front_ab
    sys.modules.pop("dgl_front_ab", None)


def test_unknown_workloads_and_trees_end_the_run(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--trees", str(ROOT), "--workloads", "edge"])
    assert "unknown workload 'edge'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--trees", "/nonexistent"])
    assert "has no gnnsys/ package" in capsys.readouterr().err


def test_a_tree_that_cannot_run_is_skipped_with_its_error(bench, capsys):
    pytest.importorskip("torch")
    try:
        import dgl  # noqa: F401

        pytest.skip("dgl imports here: the child would run")
    except ImportError:
        pass
    argv = ["--trees", str(ROOT), "--workloads", "node", "--graph", "tiny", "--rounds", "1"]
    assert bench.main([*argv, "--batches", "1", "--timeout", "300"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    row, summary = lines[0], lines[-1]
    assert row["skipped"] and "dgl" in row["reason"]
    assert summary["node_tree0_batches_per_s"] is None and summary["node_last_over_first"] is None

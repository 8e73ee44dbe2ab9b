"""benchmarks/labor_weighted.py: weighted LABOR's keep statistics beside DGL's (needs dgl)."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def test_rows_compare_kept_edges(capsys, monkeypatch):
    pytest.importorskip("dgl")
    monkeypatch.syspath_prepend(str(BENCH))
    import labor_weighted

    argv = ["--nodes", "60", "--edges", "400", "--draws", "3", "--importance-sampling", "0"]
    assert labor_weighted.main(argv) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    head, row = lines[0], lines[1]
    assert head["csc_order"] and row["importance_sampling"] == 0
    assert row["gnnsys_zero_weight_kept_per_batch"] == 0.0
    assert row["gnnsys_kept_per_dst"] > 0 and row["dgl_kept_per_dst"] > 0
    sys.modules.pop("labor_weighted", None)

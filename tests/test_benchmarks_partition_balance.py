"""benchmarks/partition_balance.py: a row per part count and system, the class balanced."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def test_rows_report_the_cut_and_the_balance(capsys, monkeypatch):
    pytest.importorskip("pymetis")
    monkeypatch.syspath_prepend(str(BENCH))
    import partition_balance

    assert partition_balance.main(["--graph", "tiny", "--parts", "4"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    head, rows = lines[0], {r["system"]: r for r in lines[1:]}
    assert head["graph"] == "tiny" and head["train_nodes"] > 0
    ours = rows["gnnsys"]
    assert ours["parts"] == 4 and 0 < ours["edge_cut"] <= head["num_edges"]
    share = head["train_nodes"] / 4
    assert ours["train_per_part"][1] <= max(-(-head["train_nodes"] // 4), int(1.03 * share))
    try:
        import dgl  # noqa: F401
    except ImportError:
        assert set(rows) == {"gnnsys", "gnnsys-plain"}
    else:  # DGL's own rows, its progress messages kept out of the JSON
        assert set(rows) == {"gnnsys", "gnnsys-plain", "dgl", "dgl-plain"}
    sys.modules.pop("partition_balance", None)

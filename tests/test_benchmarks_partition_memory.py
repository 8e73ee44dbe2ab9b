"""benchmarks/partition_memory.py: one JSON row per run, with the partition's own numbers."""

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def test_rows_report_memory_and_the_cut(capsys, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCH))
    import partition_memory

    argv = ["--graph", "tiny", "--parts", "3", "--workdir", str(tmp_path)]
    assert partition_memory.main(argv) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (row["graph"], row["parts"], row["method"], row["round"]) == ("tiny", 3, "random", 0)
    assert row["peak_rss_gb"] > 0 and row["seconds"] >= 0
    assert 0 < row["edge_cut"] <= row["num_edges"]
    assert (tmp_path / "out-tiny-3-random" / "partition.json").is_file()
    sys.modules.pop("partition_memory", None)

"""benchmarks/legacy_sampler.py: a header, a row per system and round, the ranges (and the
ratio where PyG's NeighborSampler runs); bad arguments are refused."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import legacy_sampler  # noqa: E402


def test_rows_on_a_tiny_graph(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path))
    argv = ["--graph", "tiny", "--sizes", "3,2", "--batch-size", "16", "--batches", "2",
            "--warmup", "1", "--rounds", "2"]  # fmt: skip
    assert legacy_sampler.main(argv) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rows[0]["graph"] == "tiny" and rows[0]["sizes"] == [3, 2]
    ours = [r for r in rows if r.get("system") == "gnnsys" and "round" in r]
    assert [r["round"] for r in ours] == [0, 1] and all(r["batches_per_s"] > 0 for r in ours)
    peers = [r for r in rows if r.get("system") == "pyg" and "round" in r]
    assert len(peers) == (2 if rows[0]["pyg_peer"] else 0)
    assert any("batches_per_s_range" in r for r in rows)


@pytest.mark.parametrize("argv", [["--batches", "0"], ["--rounds", "0"]])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit):
        legacy_sampler.main(argv)

"""benchmarks/hgt_batch_sizes.py: one line per node type and relation with both loaders' mean
batch sizes, then the largest relative difference (needs PyG's HGTLoader: torch-sparse)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_sizes_of_both_loaders_on_tiny_mag(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch_sparse", reason="PyG's HGTLoader needs torch-sparse")
    import hgt_batch_sizes

    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path))
    argv = ["--graph", "tiny-mag", "--num-samples", "8,8", "--batch-size", "4", "--batches", "3"]
    assert hgt_batch_sizes.main(argv) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["what"] for r in rows[:-1]} == {"nodes", "edges"}
    paper = next(r for r in rows if r.get("type") == "paper")
    assert paper["gnnsys_mean"] >= 4 and paper["pyg_mean"] >= 4
    assert rows[-1]["batches"] == 3 and rows[-1]["max_relative_difference"] >= 0

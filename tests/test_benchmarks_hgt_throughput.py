"""benchmarks/hgt_throughput.py: a header, a row per system and round with batches that hold
every sampled paper's features and labels, a skipped-peer row when PyG's environment is absent,
and the summary; bad arguments are refused."""

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import hgt_throughput  # noqa: E402
import loader_throughput  # noqa: E402


def test_rows_and_summary_on_tiny_mag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path))
    monkeypatch.setitem(loader_throughput.PEER_PYTHON, "pyg", tmp_path / "no-python")
    argv = ["--graph", "tiny-mag", "--num-samples", "16,16", "--batches", "2", "--warmup", "1",
            "--batch-size", "8", "--repeat", "2"]  # fmt: skip
    assert hgt_throughput.main(argv) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rows[0]["num_samples"] == "16,16" and rows[0]["batch_size"] == 8
    ours = [r for r in rows if r.get("api") == "gnnsys.loaders.pyg.HGTLoader"]
    assert [r["round"] for r in ours] == [0, 1]
    assert all(r["batches_per_s"] > 0 and r["sampled_nodes_per_batch"] >= 8 for r in ours)
    skipped = [r for r in rows if r.get("skipped")]
    assert len(skipped) == 2 and "peer not installed" in skipped[0]["reason"]
    assert rows[-1] == {"system": "gnnsys-pyg", "rounds": 2,
                        "batches_per_s_range": rows[-1]["batches_per_s_range"],
                        "median_batches_per_s": rows[-1]["median_batches_per_s"]}  # fmt: skip
    assert os.path.isdir(tmp_path / "bench" / "tiny-mag-seed0")


@pytest.mark.parametrize(
    "argv",
    [["--graph", "rmat20"], ["--batches", "0"], ["--repeat", "0"]],
)
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit):
        hgt_throughput.main(argv)

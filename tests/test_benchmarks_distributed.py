"""benchmarks/distributed.py on a gnnsys dataset folder (``--graph folder:DIR``): partitioned
from the mapped folder, two machines, every row and the summary reported."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "distributed.py"


def _run(tmp_path, *extra):
    """The benchmark on a papers-tiny folder, 2 random parts, 1 round of 2 batches:
    (its rows, its summary)."""
    from gnnsys.datasets.large import generate_large

    folder = tmp_path / "papers-tiny"
    generate_large("papers-tiny", folder)
    cmd = [sys.executable, str(BENCH), "--graph", f"folder:{folder}", "--parts", "2",
           "--method", "random", "--rounds", "1", "--batches", "2", "--warmup", "1",
           "--batch-size", "64", *extra, "--workdir", str(tmp_path / "work")]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = [json.loads(line) for line in p.stdout.strip().splitlines()]
    return rows[:-1], rows[-1]


@pytest.mark.slow  # two gloo processes importing torch: ~20 s on the 2-core box
def test_distributed_benchmark_on_a_dataset_folder(tmp_path):
    runs, summary = _run(tmp_path)
    assert [r["system"] for r in runs] == ["gnnsys"]  # no DistDGL on a dataset folder
    assert len(runs[0]["batches_per_s_per_machine"]) == 2
    assert all(v > 0 for v in runs[0]["batches_per_s_per_machine"])
    assert runs[0]["feature_bytes_per_batch"] > 0  # a random partition fetches remote rows
    assert summary["summary"] and "gnnsys_2_batches_per_s_per_machine" in summary
    assert (tmp_path / "work" / "gnnsys-papers-tiny-2-random" / "partition.json").is_file()


@pytest.mark.slow  # four gloo processes in turn: ~40 s on the 2-core box
def test_distributed_benchmark_times_temporal_against_disjoint(tmp_path):
    runs, summary = _run(tmp_path, "--lanes", "2", "--temporal")
    assert [r["system"] for r in runs] == ["gnnsys-disjoint", "gnnsys-temporal"]
    assert all(v > 0 for r in runs for v in r["batches_per_s_per_machine"])
    # every seed's time is the latest: the same edges are admitted, so batches of about the
    # same size (not the same picks: the temporal sampler's runs are in time order)
    a, b = runs[0]["input_nodes_per_batch"], runs[1]["input_nodes_per_batch"]
    assert abs(a - b) < 0.2 * a
    assert len(summary["temporal_over_disjoint_2"]) == 2

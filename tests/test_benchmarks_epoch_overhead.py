"""benchmarks/epoch_overhead.py: one round on the tiny workload prints a row per tree and a
ratio line, each valid JSON with the fields the README quotes."""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import epoch_overhead  # noqa: E402
import pytest  # noqa: E402


@pytest.mark.slow  # two processes importing torch and compiling the sampler: ~15 s here
def test_one_round_of_tiny_between_two_trees(capsys):
    assert epoch_overhead.main(["--trees", f"{ROOT},{ROOT}", "--workloads", "tiny",
                                "--rounds", "1", "--tiny-epochs", "3"]) == 0  # fmt: skip
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    rows, summary = lines[:2], lines[2:]
    for row in rows:
        assert row["workload"] == "tiny" and row["epochs"] == 3 and row["batches"] == 6
        assert row["ms_per_epoch"] > 0 and row["batches_per_s"] > 0 and row["cores_busy"] >= 0
    assert len(summary) == 1 and len(summary[0]["per_round"]) == 1

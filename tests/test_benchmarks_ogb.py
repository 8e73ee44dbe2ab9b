"""The OGB benchmark scripts run on their synthetic stand-in and say so."""

import json
import subprocess
import sys
from pathlib import Path

OGB = Path(__file__).resolve().parents[1] / "benchmarks" / "ogb"


def _run(script, *argv):
    out = subprocess.run([sys.executable, str(OGB / script), *argv], capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-1500:]
    assert "NOT comparable" in out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_arxiv_full_batch_on_standin():
    row = _run("ogbn_arxiv.py", "--standin", "tiny", "--epochs", "5")
    assert row["comparable"] is False and row["published_test_acc"] == "71.74 ± 0.29"
    assert row["dataset"] == "synthetic stand-in for ogbn-arxiv"


def test_products_sampled_on_standin(tmp_path):
    row = _run("ogbn_products.py", "--standin", "tiny", "--epochs", "1", "--out", str(tmp_path))
    assert row["comparable"] is False and row["published_test_acc"] == "78.70 ± 0.36"
    assert 0.0 <= float(row["ours_test_acc"].split()[0]) <= 100.0

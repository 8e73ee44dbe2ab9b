"""benchmarks/take_rows.py permutes a small table on disk in several ranges and checks it."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "take_rows.py"


def test_take_rows_benchmark_permutes_and_reports(tmp_path):
    cmd = [sys.executable, str(BENCH), "--rows", "5000", "--dim", "8", "--budget", "64K",
           "--dir", str(tmp_path), "--check", "5000"]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    row = json.loads(p.stdout.strip().splitlines()[-1])
    assert row["equal"] is True and row["rows_checked"] == 5000
    assert row["plan"]["ranges"] > 1 and row["table_bytes"] == 5000 * 8 * 2
    assert not any(tmp_path.iterdir())  # the files are removed unless --keep

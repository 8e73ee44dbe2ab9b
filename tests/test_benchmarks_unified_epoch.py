"""benchmarks/unified_epoch.py on the CPU (its smoke mode): every mode trains, the capped
unified modes carry their cap, and a bad cap is reported, not raised."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def test_modes_on_cpu():
    res = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "unified_epoch.py"), "--dataset", "tiny",
         "--device", "cpu", "--max-batches", "2", "--modes", "unified", "unified_p2", "unified_p0",
         "unified_px", "cpu_copy"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONPATH=ROOT),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {r["method"]: r for r in map(json.loads, res.stdout.splitlines())}
    assert rows["unified"]["epoch_seconds"] > 0 and rows["cpu_copy"]["epoch_seconds"] > 0
    assert rows["unified_p2"]["max_programs"] == 2 and rows["unified_p2"]["epoch_seconds"] > 0
    assert "must be >= 1" in rows["unified_p0"]["error"]
    assert "unknown mode" in rows["unified_px"]["error"]

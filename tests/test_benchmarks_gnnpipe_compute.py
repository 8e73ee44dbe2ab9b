"""benchmarks/gnnpipe_compute.py on the CPU: one rank's GNNPipe epochs, the compute seconds of
each epoch after the warm-up and their median; a single epoch is refused."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "benchmarks", "gnnpipe_compute.py")


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def test_compute_seconds_per_epoch():
    res = _run("--device", "cpu", "--dataset", "synthetic:tiny", "--layers", "4", "--chunks", "2",
               "--epochs", "3")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert rows[0]["bench"] == "gnnpipe_compute" and rows[0]["layers"] == 4
    assert rows[0]["threads"] == 1  # a pipe rank's torch threads
    epochs = [r for r in rows if "epoch" in r]
    assert [r["epoch"] for r in epochs] == [2, 3]
    assert all(0 < r["compute_s"] <= r["seconds"] for r in epochs)
    s = rows[-1]
    assert (
        s["summary"] and s["compute_range_s"][0] <= s["median_compute_s"] <= s["compute_range_s"][1]
    )


def test_one_epoch_is_refused():
    res = _run("--epochs", "1")
    assert res.returncode != 0 and "at least 2" in res.stderr


def test_threads_takes_only_one():
    # (it was passed on to `gnnsys train --mode pipe`, which refuses --threads: every run with
    # it failed; 1 is what a pipe rank uses, so recorded commands with --threads 1 run again)
    res = _run("--threads", "2")
    assert res.returncode != 0 and "only 1 is taken" in res.stderr
    ok = _run("--dataset", "synthetic:tiny", "--layers", "2", "--chunks", "2", "--epochs", "2",
              "--threads", "1")  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]

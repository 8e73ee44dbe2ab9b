"""benchmarks/bessel_gpu_probe.py, interpreted on CPU tensors: every step of the Triton
log-Bessel kernel agrees with its numba twin, so on a GPU the first step that does not is the
defect (and not the probe)."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def test_every_step_agrees_with_numba_when_interpreted():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT)
    res = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bessel_gpu_probe.py"), "--device",
         "cpu", "--n", "300"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    steps = [r for r in rows if "step" in r]
    assert len(steps) == 15 and rows[0]["device"] == "cpu"
    for r in steps:
        assert r["max_rel"] <= 1e-14, r


def test_cpu_device_needs_the_interpreter():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = ROOT
    res = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bessel_gpu_probe.py"), "--device",
         "cpu", "--steps", "two_sum"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode != 0 and "TRITON_INTERPRET=1" in res.stderr

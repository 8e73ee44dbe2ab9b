"""benchmarks/sampler_host_ops.py: it counts the Triton sampler's host operators per batch, for
both relabel modes, and the kernel relabel issues fewer launching operators than the torch one
(a count, not a timing: the point of that mode)."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_counts_both_relabel_modes():
    res = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "sampler_host_ops.py"), "--nodes",
         "2000", "--edges", "20000", "--hops", "5,3", "--batch", "64"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {r["relabel"]: r for r in map(json.loads, res.stdout.splitlines())}
    assert set(rows) == {"torch", "kernels"}
    torch_, kernels = rows["torch"], rows["kernels"]
    assert torch_["triton_launches"] == 4  # a count and a draw kernel a hop
    assert kernels["triton_launches"] == 4 + 2 + 3 * 2  # + the seeds' claims, 3 a hop
    assert kernels["launching_ops"] < torch_["launching_ops"]
    assert (torch_["batch_nodes"], torch_["batch_edges"]) == (
        kernels["batch_nodes"],
        kernels["batch_edges"],
    )

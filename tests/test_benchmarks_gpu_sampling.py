"""benchmarks/gpu_sampling.py without a GPU: it says so and exits cleanly, and its profiler
summary (run here on the CPU sampler) prints the wall time and the top operators."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from gnnsys.graph import Graph
from gnnsys.loaders import NeighborSampler

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "benchmarks", "gpu_sampling.py")


def _module():
    spec = importlib.util.spec_from_file_location("gpu_sampling", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_it_skips():
    res = subprocess.run([sys.executable, SCRIPT, "--graph", "tiny"], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0 and json.loads(res.stdout.splitlines()[-1]) == {
        "skipped": "no CUDA device"
    }


def test_profile_summary(capsys):
    mod = _module()
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, 500, (2, 5000), generator=g)
    s = NeighborSampler(Graph.from_edge_index(ei, 500), [5, 3])
    mod.profile(s, [torch.randint(0, 500, (64,), generator=g) for _ in range(3)], top=5)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["profile"] == "wall" and rows[0]["batches"] == 3
    cpu = [r for r in rows if r["profile"] == "cpu"]
    assert 1 <= len(cpu) <= 5 and all(r["calls_per_batch"] > 0 for r in cpu)

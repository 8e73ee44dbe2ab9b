"""benchmarks/sampler_serial.py: the in-process A/B's pieces (turn order; a tree's kernel module
loaded under another name samples the batches the package's own module does)."""

import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import sampler_serial  # noqa: E402

from gnnsys import _numba  # noqa: E402
from gnnsys.graph import Graph  # noqa: E402
from gnnsys.loaders import NeighborSampler, neighbor  # noqa: E402
from gnnsys.loaders.base import SampleKey  # noqa: E402


def test_alternate_takes_turns_and_times_every_call():
    calls = []

    def slow() -> None:
        calls.append("a")
        time.sleep(0.005)

    secs = sampler_serial.alternate({"a": slow, "b": lambda: calls.append("b")}, 4)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert [len(v) for v in secs.values()] == [4, 4]
    assert min(secs["a"]) >= 0.005  # every call of "a" timed, its sleep included


def test_a_loaded_kernel_module_samples_the_same_batches():
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, 200, (2, 3000), generator=g)
    sampler = NeighborSampler(Graph.from_edge_index(ei, 200), [5, 3])
    seeds = torch.arange(0, 200, 7)
    own = sampler.sample(seeds, SampleKey(3, 1, 2))
    loaded = sampler_serial.load_kernels(str(ROOT))
    assert loaded is not neighbor._kernels and loaded.__file__ != neighbor._kernels.__file__
    assert sampler_serial.load_kernels(str(ROOT)) is loaded  # the same source: one module
    assert loaded.sample_hops is not neighbor._kernels.sample_hops  # dispatchers of its own
    try:
        neighbor._kernels = loaded
        other = sampler.sample(seeds, SampleKey(3, 1, 2))
    finally:
        neighbor._kernels = sys.modules["gnnsys.loaders._kernels"]
    # the batch came from the loaded module's kernels (a variant made from its own source)
    assert any(key[0] is loaded.sample_hops.py_func for key in _numba._VARIANTS)
    for a, b in ((own.nodes, other.nodes), (own.row, other.row), (own.col, other.col),
                 (own.edge_ids, other.edge_ids)):  # fmt: skip
        assert torch.equal(a, b)


def test_the_disjoint_workload_runs_the_hash_table_path(monkeypatch):
    # rmat20-disjoint: PyG semantics, one tree per seed (the hash-table relabel map); a small
    # graph stands in for rmat20
    import loader_throughput
    import numpy as np

    g = np.random.default_rng(0)
    src, dst = g.integers(0, 300, 4000), g.integers(0, 300, 4000)
    arrays = {"x": np.zeros((300, 2), np.float32), "src": src, "dst": dst,
              "train_idx": np.arange(300)}  # fmt: skip
    monkeypatch.setattr(loader_throughput, "resolve_folder", lambda name: name)
    monkeypatch.setattr(loader_throughput, "load", lambda folder: arrays)
    assert "rmat20-disjoint" in sampler_serial.WORKLOADS
    assert "rmat20-disjoint" not in sampler_serial.DEFAULT_WORKLOADS  # (opt-in: a longer run)
    out = sampler_serial.make_sampler("rmat20-disjoint")(0, 0)
    assert out.batch is not None and out.batch.numel() == out.nodes.numel()
    assert out.batch[:300].tolist() == list(range(300))  # each seed the root of its own tree


def test_a_folder_workload_samples_the_mapped_folder(tmp_path):
    from gnnsys.datasets import save_folder, synthetic

    save_folder(synthetic("tiny", seed=0), tmp_path / "tiny", layout="csc")
    out = sampler_serial.make_sampler(f"folder:{tmp_path / 'tiny'}")(0, 0)
    assert out.layered and len(out.num_sampled_nodes) == 4  # DGL semantics, 3 hops
    with pytest.raises(SystemExit):  # a folder that is not there: a usage error
        sampler_serial.main(["--workloads", f"folder:{tmp_path / 'none'}"])

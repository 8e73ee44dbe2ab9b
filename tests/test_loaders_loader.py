"""The Loader engine: batching, order, determinism across threads, epochs, features and
labels, collate, error propagation, shutdown, a generic sampler, and input validation."""

import gc
import threading
import time

import numpy as np
import pytest
import torch

from gnnsys.features import FeatureStore
from gnnsys.graph import Graph
from gnnsys.loaders import Batch, Loader, NeighborSampler, SampledSubgraph


@pytest.fixture(scope="module")
def setup():
    g = torch.Generator().manual_seed(0)
    n, e = 500, 5000
    ei = torch.stack(
        [torch.randint(0, n, (e,), generator=g), torch.randint(0, n, (e,), generator=g)]
    )
    graph = Graph.from_edge_index(ei, n)
    x = torch.randn(n, 6, generator=g)
    y = torch.randint(0, 5, (n,), generator=g)
    return graph, FeatureStore(x=x, y=y), x, y


def seeds_of(loader, **kw):
    return [b.seeds.clone() for b in loader]


def test_batches_cover_seeds(setup):
    graph, store, _, _ = setup
    seeds = torch.arange(0, 500, 3)
    s = NeighborSampler(graph, [3])
    for shuffle in (False, True):
        loader = Loader(s, seeds, batch_size=16, shuffle=shuffle, seed=1)
        got = seeds_of(loader)
        assert len(got) == len(loader) == (seeds.numel() + 15) // 16
        cat = torch.cat(got)
        assert sorted(cat.tolist()) == seeds.tolist()
        if not shuffle:
            assert torch.equal(cat, seeds)
    loader = Loader(s, seeds, batch_size=16, drop_last=True)
    assert len(loader) == seeds.numel() // 16 == len(seeds_of(loader))
    assert all(b.numel() == 16 for b in seeds_of(loader))


def test_input_id_positions(setup):
    graph, _, _, _ = setup
    seeds = torch.tensor([40, 7, 300, 12, 99])
    for b in Loader(NeighborSampler(graph, [2]), seeds, batch_size=2, shuffle=True):
        assert torch.equal(seeds[b.input_id], b.seeds)


def test_features_and_labels(setup):
    graph, store, x, y = setup
    loader = Loader(NeighborSampler(graph, [4, 2]), torch.arange(100), batch_size=32,
                    features=store, labels="y")  # fmt: skip
    for b in loader:
        assert isinstance(b, Batch)
        assert torch.equal(b.x, x[b.subgraph.nodes])
        assert torch.equal(b.y, y[b.seeds])
        assert set(b.node_data) == {"x"} and b.batch_size == b.seeds.numel()
    loader = Loader(NeighborSampler(graph, [4]), torch.arange(10), batch_size=5,
                    features=store, labels="y", label_scope="nodes")  # fmt: skip
    b = next(iter(loader))
    assert torch.equal(b.y, y[b.subgraph.nodes])
    # A label tensor instead of a name, and features as a bare tensor.
    b = next(iter(Loader(NeighborSampler(graph, [2]), torch.arange(4), batch_size=4,
                         features=x, labels=y)))  # fmt: skip
    assert torch.equal(b.y, y[:4]) and torch.equal(b.x, x[b.subgraph.nodes])


class _TogetherTable:
    """A table the store reads together with its group (as a DistTable with its graph)."""

    calls = 0

    def __init__(self, rows):
        self.rows, self.shape, self.fetch_group = rows, tuple(rows.shape), "g"

    def __getitem__(self, ids):  # pragma: no cover - the loader reads through fetch_together
        raise AssertionError("read one table at a time")

    @staticmethod
    def fetch_together(tables, ids):
        _TogetherTable.calls += 1
        return [t.rows[i] for t, i in zip(tables, ids)]


def test_features_and_labels_of_a_batch_are_read_together(setup):
    """The fetch stage hands a batch's feature and label requests to its store at once
    (``fetch_many``): tables of one group share one read."""
    graph, _, x, y = setup
    store = FeatureStore(x=_TogetherTable(x), y=_TogetherTable(y))
    _TogetherTable.calls = 0
    loader = Loader(NeighborSampler(graph, [3]), torch.arange(40), batch_size=16,
                    features=store, labels="y", num_threads=2)  # fmt: skip
    batches = list(loader)
    assert _TogetherTable.calls == len(batches) == 3
    for b in batches:
        assert torch.equal(b.x, x[b.subgraph.nodes]) and torch.equal(b.y, y[b.seeds])


def test_input_sampler_orders_each_epoch(setup):
    graph, store, x, _ = setup
    seeds = torch.arange(100, 200)
    draws = iter([[5, 5, 99, 0, 7], [1, 2, 3]])

    class Epochs:  # a torch-Sampler-like object: a new draw per iter(), a length
        def __iter__(self):
            return iter(next(draws))

        def __len__(self):
            return 5

    loader = Loader(NeighborSampler(graph, [2]), seeds, batch_size=2, input_sampler=Epochs(),
                    features=store, feature_names=["x"])  # fmt: skip
    assert len(loader) == 3
    first = list(loader)
    assert [b.seeds.tolist() for b in first] == [[105, 105], [199, 100], [107]]
    assert [b.input_id.tolist() for b in first] == [[5, 5], [99, 0], [7]]
    assert torch.equal(first[1].x[:2], x[torch.tensor([199, 100])])  # rows follow the seeds
    assert [b.seeds.tolist() for b in loader] == [[101, 102], [103]]  # the second draw
    again = Loader(NeighborSampler(graph, [2]), seeds, batch_size=2, drop_last=True,
                   input_sampler=[3, 1, 4])  # fmt: skip
    assert len(again) == 1 and [b.seeds.tolist() for b in again] == [[103, 101]]
    with pytest.raises(ValueError, match="excludes shuffle=True"):
        Loader(NeighborSampler(graph, [2]), seeds, shuffle=True, input_sampler=[0])
    with pytest.raises(TypeError, match="input_sampler must be an iterable of positions"):
        Loader(NeighborSampler(graph, [2]), seeds, input_sampler=3)
    endless = Loader(NeighborSampler(graph, [2]), seeds, input_sampler=(i for i in [0, 1]))
    with pytest.raises(TypeError, match="needs an input_sampler with a length"):
        len(endless)
    with pytest.raises(ValueError, match="input_sampler's positions holds a negative id"):
        list(Loader(NeighborSampler(graph, [2]), seeds, input_sampler=[0, -1]))


def _fingerprint(loader):
    return [(b.seeds.tolist(), b.subgraph.nodes.tolist(), b.subgraph.edge_ids.tolist(),
             b.x.sum().item()) for b in loader]  # fmt: skip


def test_same_batches_whatever_threads_and_prefetch(setup):
    graph, store, _, _ = setup
    s = NeighborSampler(graph, [5, 3])
    common = dict(batch_size=20, shuffle=True, seed=5, features=store)
    ref = _fingerprint(Loader(s, torch.arange(200), num_threads=1, prefetch=0, **common))
    for threads, prefetch in ((1, 2), (2, 1), (2, 4)):
        got = _fingerprint(Loader(s, torch.arange(200), num_threads=threads, prefetch=prefetch,
                                  **common))  # fmt: skip
        assert got == ref, (threads, prefetch)


def test_a_table_read_from_disk_runs_more_batches_at_once(setup, tmp_path, monkeypatch):
    """A feature table mapped from a file bigger than memory (advised MADV_RANDOM) gets
    DISK_BOUND_WORKERS_PER_THREAD workers per thread by default, the same batches, and the
    threads the caller chose when it chose them."""
    from gnnsys import _mapped, graph_io
    from gnnsys.loaders import loader as loader_mod

    graph, _, x, y = setup
    np.save(tmp_path / "x.npy", x.numpy())
    mapped = torch.from_numpy(np.load(tmp_path / "x.npy", mmap_mode="c"))
    monkeypatch.setattr(_mapped, "_ranges", [])  # none left by other tests' maps
    s = NeighborSampler(graph, [5, 3])
    common = dict(batch_size=20, shuffle=True, seed=5, labels=y)
    ref = Loader(s, torch.arange(200), features=FeatureStore(x=mapped), **common)
    if loader_mod._threading_layer() == "workqueue":
        pytest.skip("numba's workqueue layer runs one worker whatever the tables")
    assert not ref.reads_from_disk()
    assert ref._threads_per_batch(1000)[0] == ref.num_threads
    monkeypatch.setattr(graph_io, "_available_bytes", lambda: 1000)  # "bigger than RAM"
    assert graph_io.advise_random(mapped) == "MADV_RANDOM"
    loader = Loader(s, torch.arange(200), features=FeatureStore(x=mapped), **common)
    assert loader.reads_from_disk()
    per = loader_mod.DISK_BOUND_WORKERS_PER_THREAD
    assert loader._threads_per_batch(1000) == (loader.num_threads * per, 1)
    assert loader._threads_per_batch(3)[0] == 3  # never more workers than batches
    chosen = Loader(s, torch.arange(200), features=FeatureStore(x=mapped), num_threads=2,
                    **common)  # fmt: skip
    assert chosen._threads_per_batch(1000)[0] == 2
    inline = Loader(s, torch.arange(200), features=FeatureStore(x=mapped), num_threads=1,
                    prefetch=0, **common)  # fmt: skip
    assert _fingerprint(loader) == _fingerprint(inline) == _fingerprint(ref)


def test_epochs(setup):
    graph, _, _, _ = setup
    loader = Loader(NeighborSampler(graph, [3]), torch.arange(60), batch_size=20, shuffle=True)
    e0 = [b.subgraph.edge_ids.tolist() for b in loader]
    assert loader.epoch == 1
    e1 = [b.subgraph.edge_ids.tolist() for b in loader]
    assert e0 != e1  # auto-increment: fresh shuffle and samples
    loader.set_epoch(0)
    assert [b.subgraph.edge_ids.tolist() for b in loader] == e0
    first = next(iter(loader))
    assert first.epoch == 1 and first.index == 0


def test_collate_runs_and_result_is_yielded(setup):
    graph, store, _, _ = setup
    loader = Loader(NeighborSampler(graph, [2]), torch.arange(30), batch_size=10,
                    features=store, collate=lambda b: (b.index, b.x.shape[0]))  # fmt: skip
    out = list(loader)
    assert [i for i, _ in out] == [0, 1, 2]


class FailingSampler:
    num_inputs = 100

    def __init__(self, fail_at):
        self.fail_at = fail_at

    def sample(self, seeds, key):
        if key.batch == self.fail_at:
            raise KeyError(f"boom at batch {key.batch}")
        nodes = seeds.clone()
        empty = torch.empty(0, dtype=torch.long)
        return SampledSubgraph(nodes, empty, empty, [seeds.numel()], [])


@pytest.mark.parametrize("prefetch", [0, 2])
def test_worker_errors_reach_the_consumer(prefetch):
    loader = Loader(FailingSampler(2), torch.arange(50), batch_size=10, prefetch=prefetch)
    it = iter(loader)
    next(it)
    next(it)
    with pytest.raises(KeyError, match="boom at batch 2"):
        next(it)


def test_worker_start_hook_runs_on_each_worker_and_its_error_fails_the_pass(setup):
    graph, store, _, _ = setup
    loader = Loader(NeighborSampler(graph, [3]), torch.arange(100), batch_size=10,
                    features=store, num_threads=2)  # fmt: skip
    started = []
    loader.worker_start = lambda w: started.append((w, threading.current_thread().name))
    assert len(list(loader)) == 10
    assert sorted(w for w, _ in started) == [0, 1]
    assert all(name != threading.current_thread().name for _, name in started)

    def fail(w):
        raise OSError(f"worker {w} could not start")

    loader.worker_start = fail
    with pytest.raises(OSError, match="could not start"):
        list(loader)
    loader.worker_start = None
    assert len(list(loader)) == 10  # the next pass runs again


def test_worker_threads_sets_each_workers_kernel_threads(setup):
    import numba

    from gnnsys.loaders.loader import _threading_layer

    if _threading_layer() == "workqueue":
        pytest.skip("numba's workqueue layer runs one worker (it is not thread-safe)")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads to tell 2 kernel threads from 1")
    graph, store, _, _ = setup
    loader = Loader(NeighborSampler(graph, [3]), torch.arange(100), batch_size=10, num_threads=2)
    assert loader._threads_per_batch(10) == (2, 1)
    loader.worker_threads = 2
    assert loader._threads_per_batch(10) == (2, 2)


def _loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("gnnsys-loader")]


def test_abandoned_iterator_stops_its_threads():
    class Slow(FailingSampler):
        def sample(self, seeds, key):
            time.sleep(0.01)
            return super().sample(seeds, key)

    # Threads of earlier tests' loaders may still be winding down: count after they are gone.
    deadline = time.time() + 10
    while _loader_threads() and time.time() < deadline:
        gc.collect()
        time.sleep(0.05)
    before = len(_loader_threads())
    it = iter(Loader(Slow(-1), torch.arange(100), batch_size=1, num_threads=2, prefetch=2))
    next(it)
    assert len(_loader_threads()) > before
    del it
    gc.collect()
    deadline = time.time() + 10
    while len(_loader_threads()) > before and time.time() < deadline:
        time.sleep(0.05)
    assert len(_loader_threads()) <= before


def test_generic_sampler_and_mask_seeds():
    loader = Loader(FailingSampler(-1), torch.arange(100) % 3 == 0, batch_size=7)
    got = torch.cat([b.seeds for b in loader])
    assert torch.equal(got, torch.arange(0, 100, 3))
    assert len(Loader(FailingSampler(-1), 10, batch_size=4)) == 3  # an int: arange(n)


def test_bad_arguments(setup):
    graph, store, _, _ = setup
    s = NeighborSampler(graph, [2])
    with pytest.raises(ValueError, match="mask has length 10, expected 500"):
        Loader(s, torch.zeros(10, dtype=torch.bool))
    with pytest.raises(ValueError, match="out of range"):
        Loader(s, torch.tensor([0, 500]))
    with pytest.raises(ValueError, match="integer"):
        Loader(s, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Loader(s, torch.arange(5), batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        Loader(s, torch.arange(5), batch_size=2.5)
    with pytest.raises(ValueError, match="prefetch"):
        Loader(s, torch.arange(5), prefetch=-1)
    with pytest.raises(ValueError, match="labels='z'"):
        Loader(s, torch.arange(5), features=store, labels="z")
    with pytest.raises(ValueError, match="feature_names"):
        Loader(s, torch.arange(5), features=store, feature_names=["w"])
    with pytest.raises(TypeError, match="collate"):
        Loader(s, torch.arange(5), collate=3)
    with pytest.raises(TypeError, match="sample"):
        Loader(object(), torch.arange(5))
    with pytest.raises(ValueError, match="label_scope"):
        Loader(s, torch.arange(5), label_scope="all")


def test_short_node_tables_are_refused_up_front(setup):
    # A table with fewer rows than nodes fails at once, not at the first batch that reaches
    # past its end (which the seeds here, 0..4, would never do).
    graph, _, x, y = setup
    s = NeighborSampler(graph, [2])
    with pytest.raises(ValueError, match="table 'x' has 499 rows but the graph has 500 nodes"):
        Loader(s, torch.arange(5), features=FeatureStore(x=x[:-1], y=y), labels="y")
    with pytest.raises(ValueError, match="table 'y' has 10 rows but the graph has 500 nodes"):
        Loader(s, torch.arange(5), features=FeatureStore(x=x, y=y[:10]), labels="y")
    typed = Graph.from_hetero({("a", "r", "b"): torch.tensor([[0, 1], [0, 2]])}, {"a": 2, "b": 3})
    store = FeatureStore({("b", "x"): torch.zeros(2, 4)})
    with pytest.raises(ValueError, match=r"has 2 rows but the graph has 3 nodes of type 'b'"):
        Loader(NeighborSampler(typed, [1]), torch.tensor([2]), features=store,
               feature_names=[("b", "x")])  # fmt: skip
    longer = FeatureStore(x=torch.cat([x, x[:3]]))  # extra rows are unread, not an error
    assert next(iter(Loader(s, torch.arange(5), features=longer))).x.shape[1] == 6


@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_device_without_a_gpu_is_refused_up_front(setup, monkeypatch, device):
    # The no-GPU behaviour, on any machine: is_available is patched (a GPU machine runs it too).
    graph, _, _, _ = setup
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device=.*cuda.* but CUDA is not available"):
        Loader(NeighborSampler(graph, [2]), torch.arange(5), device=device)


def test_num_workers_alias_and_repr(setup):
    graph, _, _, _ = setup
    loader = Loader(NeighborSampler(graph, [2]), torch.arange(5), num_workers=1)
    assert loader.num_threads == 1
    assert "Loader(NeighborSampler" in repr(loader)


def test_numpy_and_list_seeds(setup):
    graph, _, _, _ = setup
    s = NeighborSampler(graph, [2])
    a = [b.seeds.tolist() for b in Loader(s, np.array([3, 4, 5]), batch_size=2)]
    b = [b.seeds.tolist() for b in Loader(s, [3, 4, 5], batch_size=2)]
    assert a == b == [[3, 4], [5]]


@pytest.mark.gpu
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_batches_arrive_on_device(setup, device):
    # What device="cuda" means with a GPU: accepted, and every batch (sampled subgraph,
    # features, labels) arrives on it with the same content as a CPU loader's batch.
    graph, store, x, y = setup
    kw = dict(batch_size=16, features=store, labels="y", shuffle=True, seed=3)
    loader = Loader(NeighborSampler(graph, [3]), torch.arange(64), device=device, **kw)
    assert loader.device.type == "cuda"
    cpu = list(Loader(NeighborSampler(graph, [3]), torch.arange(64), **kw))
    got = list(loader)
    assert len(got) == len(cpu) == 4
    for b, c in zip(got, cpu):
        assert b.x.is_cuda and b.subgraph.row.is_cuda and b.y.is_cuda and b.seeds.is_cuda
        assert torch.equal(b.x.cpu(), x[b.subgraph.nodes.cpu()])
        assert torch.equal(b.y.cpu(), c.y) and torch.equal(b.seeds.cpu(), c.seeds)
        assert torch.equal(b.subgraph.nodes.cpu(), c.subgraph.nodes)


def test_typed_fetch_stage_gathers_node_edge_and_label_tables_per_type():
    from gnnsys.graph import Graph

    gen = torch.Generator().manual_seed(0)
    writes = torch.stack([torch.randint(0, 20, (90,), generator=gen),
                          torch.randint(0, 40, (90,), generator=gen)])  # fmt: skip
    ed = {("paper", "cites", "paper"): torch.randint(0, 40, (2, 150), generator=gen),
          ("author", "writes", "paper"): writes,
          ("paper", "rev_writes", "author"): writes.flip(0)}  # fmt: skip
    g = Graph.from_hetero(ed, {"paper": 40, "author": 20})
    px, ax = torch.randn(40, 5, generator=gen), torch.randn(20, 3, generator=gen)
    py = torch.arange(40) * 10
    cw = torch.randn(150, generator=gen)
    store = FeatureStore({("paper", "x"): px, ("author", "x"): ax, ("paper", "y"): py})
    loader = Loader(
        NeighborSampler(g, [3, 2]), torch.arange(0, 40, 3), batch_size=5, shuffle=True,
        features=store, labels=("paper", "y"), feature_names=[("paper", "x"), ("author", "x")],
        edge_features={(("paper", "cites", "paper"), "w"): cw}, seed=2,
    )  # fmt: skip
    off = g.type_offsets()
    batches = list(loader)
    assert len(batches) == 3
    for b in batches:
        sub = b.subgraph
        assert torch.equal(b.node_data[("paper", "x")], px[sub.type_nodes(0)])
        assert torch.equal(b.node_data[("author", "x")], ax[sub.type_nodes(1) - off[1]])
        assert b.x is b.node_data[("paper", "x")]
        assert torch.equal(b.y, py[b.seeds])  # the seeds are papers
        lo, _ = sub.edge_span(1, 0)
        _, hi = sub.edge_span(2, 0)
        assert torch.equal(b.edge_data[(("paper", "cites", "paper"), "w")], cw[sub.edge_ids[lo:hi]])
    # several label tables (one per node type): Batch.y is a dict by key, seeds of each type
    ay = torch.arange(20) * 3
    store[("author", "y")] = ay
    seeds = torch.tensor([1, 2, int(off[1]) + 4, int(off[1]) + 7])
    both = Loader(NeighborSampler(g, [2]), seeds, batch_size=4, features=store,
                  feature_names=[("paper", "x")], labels=[("paper", "y"), ("author", "y")])  # fmt: skip
    b = next(iter(both))
    assert set(b.y) == {("paper", "y"), ("author", "y")}
    assert torch.equal(b.y[("paper", "y")], py[torch.tensor([1, 2])])
    assert torch.equal(b.y[("author", "y")], ay[torch.tensor([4, 7])])
    with pytest.raises(ValueError, match="labels holds"):
        Loader(NeighborSampler(g, [2]), seeds, features=store, labels=[("paper", "z")])
    with pytest.raises(ValueError, match="name a node table as"):
        Loader(NeighborSampler(g, [2]), torch.arange(3), features={"x": px})
    with pytest.raises(ValueError, match="node type 'venue' is not in the graph"):
        Loader(NeighborSampler(g, [2]), torch.arange(3), features={("venue", "x"): px})


_EXIT_SCRIPT = """
import sys, time, torch
from gnnsys.datasets import synthetic
from gnnsys.loaders import Loader, NeighborSampler

class SlowToFree:
    def __call__(self, batch):
        return batch
    def __del__(self):  # runs on the thread that drops the last reference
        time.sleep(0.5)
        open(sys.argv[1], "w").write("freed")

loader = Loader(NeighborSampler(synthetic("tiny").graph, [5, 5]), torch.arange(512),
                batch_size=64, collate=SlowToFree())
it = iter(loader)
next(it)
del it, loader  # the run's worker threads hold the last references now
time.sleep(0.2)  # they stop and drop them: the collate is being freed on a worker thread
"""


def test_exit_waits_for_workers_still_freeing_a_finished_run(tmp_path):
    """A worker that dropped the last reference to its finished run frees it (the loader, its
    tensors) on its own thread; exiting meanwhile killed that thread mid-free, which inside a
    tensor's C++ dealloc aborted the process ("terminate called without an active exception",
    about 1 in 40 short scripts). Exit now joins every worker thread, not only those of runs
    still alive: the slow free here completes."""
    import os
    import subprocess
    import sys

    marker = tmp_path / "freed"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    proc = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, str(marker)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert marker.read_text() == "freed"


def test_seed_lists_follow_the_rules_of_tensors():
    from gnnsys.datasets import synthetic

    g = synthetic("tiny").graph
    sampler = NeighborSampler(g, [2])
    with pytest.raises(ValueError, match="integer ids"):  # was truncated to [0, 1]
        Loader(sampler, [0.9, 1.7])
    with pytest.raises(ValueError, match="seed mask has length 3"):  # was read as ids 1, 0, 1
        Loader(sampler, [True, False, True])
    assert Loader(sampler, [3, 1, 2]).seeds.tolist() == [3, 1, 2]
    assert Loader(sampler, (4, 0)).seeds.tolist() == [4, 0]
    mask = [False] * g.num_nodes
    mask[7] = True
    assert Loader(sampler, mask).seeds.tolist() == [7]


@pytest.mark.parametrize(
    "device, match",
    [("meta", "device must be a cpu or cuda device, got 'meta'"),
     ("foo", "device='foo' is not a valid device")],
)  # fmt: skip
def test_a_device_without_data_or_not_a_device_is_refused(device, match):
    # (meta was accepted: every batch came back with no data)
    from gnnsys.datasets import synthetic
    from gnnsys.loaders import NeighborSampler

    g = synthetic("tiny").graph
    with pytest.raises(ValueError, match=match):
        Loader(NeighborSampler(g, [2]), torch.tensor([0, 1]), device=device)
    with pytest.raises(ValueError, match=match):
        NeighborSampler(g, [2], device=device)


def test_input_sampler_positions_must_be_integers():
    # int() truncated 0.7 to position 0 without a word
    from gnnsys.datasets import synthetic
    from gnnsys.loaders import NeighborSampler

    s = NeighborSampler(synthetic("tiny").graph, [2])
    loader = Loader(s, torch.tensor([5, 9]), input_sampler=[0.7], num_threads=1)
    with pytest.raises(TypeError, match="input_sampler's positions must be integers, got 0.7"):
        next(iter(loader))
    loader = Loader(s, torch.tensor([5, 9]), input_sampler=[torch.tensor(1)], num_threads=1)
    assert next(iter(loader)).subgraph.nodes[0] == 9

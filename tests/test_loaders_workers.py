"""WorkerPool: a Loader's threads kept across epochs, handed back when the loader is freed,
never shared by two runs at once, and surviving a job that raises."""

import gc
import threading
import time

import pytest
import torch

from gnnsys.graph import Graph
from gnnsys.loaders import Loader, NeighborSampler, SampledSubgraph
from gnnsys.loaders._workers import WorkerPool


class RecordingSampler:
    """Seeds only; records the thread that sampled each batch."""

    num_inputs = 1000

    def __init__(self, delay=0.0):
        self.delay = delay
        self.threads = []
        self.lock = threading.Lock()

    def sample(self, seeds, key):
        with self.lock:
            self.threads.append(threading.get_ident())
        if self.delay:
            time.sleep(self.delay)
        empty = torch.empty(0, dtype=torch.long)
        return SampledSubgraph(seeds.clone(), empty, empty, [seeds.numel()], [])


def _wait_until(cond, seconds=10.0):
    """True once ``cond()`` is (called until then, never after), False after ``seconds``."""
    deadline = time.time() + seconds
    while not cond():
        if time.time() > deadline:
            return False
        gc.collect()
        time.sleep(0.02)
    return True


def _count_loader_thread_starts(monkeypatch):
    started = []
    real_start = threading.Thread.start

    def start(self):
        if self.name.startswith("gnnsys-loader"):
            started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    return started


def test_epochs_reuse_the_loaders_threads(monkeypatch):
    started = _count_loader_thread_starts(monkeypatch)
    sampler = RecordingSampler()
    loader = Loader(sampler, torch.arange(100), batch_size=10, num_threads=2)
    for _ in range(5):
        assert len(list(loader)) == 10
    # (thread ids alone could not tell: the OS reuses those of threads that exited)
    assert started == ["gnnsys-loader-0", "gnnsys-loader-1"]  # once, not once an epoch
    pool = loader._pool
    assert pool is not None and len(pool.threads()) == 2
    assert all(t.is_alive() for t in pool.threads())
    assert set(sampler.threads) <= {t.ident for t in pool.threads()}


def test_threads_exit_when_the_loader_is_freed():
    loader = Loader(RecordingSampler(), torch.arange(40), batch_size=10, num_threads=2)
    list(loader)
    threads = loader._pool.threads()
    assert threads and all(t.is_alive() for t in threads)
    del loader
    assert _wait_until(lambda: not any(t.is_alive() for t in threads))


def test_two_iterators_at_once_get_the_same_batches_as_one_after_the_other():
    edges = torch.randint(0, 200, (2, 2000), generator=torch.Generator().manual_seed(0))
    graph = Graph.from_edge_index(edges, 200)
    loader = Loader(NeighborSampler(graph, [4, 2]), torch.arange(120), batch_size=16,
                    shuffle=True, seed=3, num_threads=2)  # fmt: skip
    loader.set_epoch(0)
    a = [b.subgraph.edge_ids.tolist() for b in loader]
    b = [b.subgraph.edge_ids.tolist() for b in loader]
    loader.set_epoch(0)
    first, second = iter(loader), iter(loader)  # the second finds the pool busy
    got = list(zip(first, second))
    assert [x.subgraph.edge_ids.tolist() for x, _ in got] == a
    assert [y.subgraph.edge_ids.tolist() for _, y in got] == b


def test_an_epoch_left_early_does_not_hold_up_the_next():
    sampler = RecordingSampler(delay=0.005)
    loader = Loader(sampler, torch.arange(200), batch_size=10, num_threads=2)
    it = iter(loader)
    next(it)
    del it  # the abandoned run stops; its threads may still finish a batch
    want = [list(range(i, i + 10)) for i in range(0, 200, 10)]
    assert [b.seeds.tolist() for b in loader] == want
    assert [b.seeds.tolist() for b in loader] == want


def test_a_job_that_raises_leaves_its_thread_serving(monkeypatch):
    reported = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_type))
    pool = WorkerPool("gnnsys-test-pool")
    done = threading.Event()

    def boom():
        raise ValueError("boom")

    assert pool.start([boom])
    assert _wait_until(lambda: pool.start([done.set]))
    assert done.wait(5.0)
    assert reported == [ValueError]
    pool.close()
    assert _wait_until(lambda: not any(t.is_alive() for t in pool.threads()))


def test_a_busy_closed_or_forked_pool_refuses_new_jobs():
    pool = WorkerPool("gnnsys-test-pool")
    release = threading.Event()
    assert pool.start([lambda: release.wait(5.0)])
    assert not pool.start([lambda: None])  # busy
    pool.finishing()  # (said of jobs about to return: the next start waits for them)
    threading.Timer(0.05, release.set).start()
    assert pool.start([lambda: None])
    pool._pid = -1  # as a forked child sees it: the threads are the parent's
    assert not pool.start([lambda: None])
    pool._pid = __import__("os").getpid()
    pool.close()
    assert not pool.start([lambda: None])
    assert _wait_until(lambda: not any(t.is_alive() for t in pool.threads()))


@pytest.mark.parametrize("count", [1, 3])
def test_start_grows_the_pool_to_the_jobs_given(count):
    pool = WorkerPool("gnnsys-test-pool")
    seen = []
    lock = threading.Lock()

    def job():
        with lock:
            seen.append(threading.current_thread().name)

    assert pool.start([job] * count)
    assert _wait_until(lambda: len(seen) == count)
    assert sorted(seen) == [f"gnnsys-test-pool-{i}" for i in range(count)]
    assert [t.name for t in pool.threads(count)] == sorted(seen)
    pool.close()


def test_the_dgl_front_keeps_its_threads_across_epochs(monkeypatch):
    from gnnsys.loaders import dgl as dgl_front

    started = _count_loader_thread_starts(monkeypatch)
    edges = torch.randint(0, 300, (2, 3000), generator=torch.Generator().manual_seed(1))
    graph = Graph.from_edge_index(edges, 300)
    loader = dgl_front.DataLoader(graph, torch.arange(200), dgl_front.NeighborSampler([3, 2]),
                                  batch_size=20, shuffle=True, num_workers=2)  # fmt: skip
    epochs = [[out_nodes.tolist() for _, out_nodes, _ in loader] for _ in range(4)]
    assert all(len(e) == 10 for e in epochs) and epochs[0] != epochs[1]
    assert len(started) == 2, started  # one start per worker, not per epoch


def test_a_forked_child_iterates_on_threads_of_its_own():
    import os
    import signal

    loader = Loader(RecordingSampler(), torch.arange(40), batch_size=10, num_threads=2)
    list(loader)  # the parent's pool has started its threads
    pid = os.fork()
    if pid == 0:  # the child: the parent's threads did not come along
        code = 3
        try:
            firsts = [b.seeds.tolist()[0] for b in loader]
            code = 0 if firsts == [0, 10, 20, 30] and not loader._pool.forked() else 2
        finally:
            os._exit(code)
    deadline = time.time() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.time() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the forked child hung iterating the loader")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

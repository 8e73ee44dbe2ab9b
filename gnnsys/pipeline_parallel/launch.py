"""Entry point: start the ranks of a GNNPipe, hybrid or graph-parallel run and collect metrics.

``run`` partitions the graph once in the calling process, spawns one process per rank
(``spawn`` start method, gloo on CPU or NCCL on GPUs), and returns the merged metrics: loss and
accuracy per epoch, bytes per epoch by kind (summed over ranks), epoch seconds (slowest rank).
``mode="single"`` trains the same model in this process, for reference. With ``on_epoch``,
rank 0 reports each epoch's row as it ends, through the result queue, to a callback in the
calling process (progress lines, rows appended to a metrics file).

Failure handling: every blocking call in a rank has a timeout, and a rank that dies makes its
peers fail with a clear error (gloo notices the closed connection at once, the timeout catches
the rest). The launcher waits for every rank to report, declares a rank that exits without a
report dead, gives the others ``timeout`` seconds to report their own errors, then stops any
straggler and raises ``RankFailure`` naming what happened on each rank.

Under ``torch.distributed.run`` (torchrun), ``python -m gnnsys.pipeline_parallel.launch`` runs
one rank from the environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and rank 0 prints the
merged result as JSON (and its per-epoch rows to stderr as they end).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pickle
import queue as queue_mod
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from gnnsys._checks import check_choice
from gnnsys._machine import usable_cpus
from gnnsys.pipeline_parallel.config import (
    ModelConfig,
    Techniques,
    TrainConfig,
    check_int,
    coerce,
)
from gnnsys.pipeline_parallel.partition import METHODS, nested_partition, partition

MODES = ("single", "pipe", "hybrid", "graph")
BACKENDS = ("gloo", "nccl")


class RankFailure(RuntimeError):
    """A distributed run failed; ``errors`` maps each failed rank to what happened there.

    Example:
        >>> try:
        ...     run("pipe", ds, model, nproc=4)
        ... except RankFailure as e:
        ...     print(e.errors[1])   # "died without reporting (exit code -9)"
    """

    def __init__(self, errors: Dict[int, str]) -> None:
        self.errors = dict(sorted(errors.items()))
        lines = [f"rank {r}: {msg.strip().splitlines()[-1]}" for r, msg in self.errors.items()]
        super().__init__("distributed run failed:\n  " + "\n  ".join(lines))


@dataclass
class _Data:
    # What a rank needs of the dataset (picklable, tensors shared with the ranks).
    graph: Any
    x: torch.Tensor
    y: torch.Tensor
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor
    num_classes: int

    def __reduce__(self) -> Tuple[Any, ...]:
        # Features mapped from a dataset folder, unchanged, travel as the file's name: every
        # rank maps the same file (one page cache) instead of torch.multiprocessing copying
        # the rows into shared memory. A mapped graph pickles as its folder likewise.
        from gnnsys.graph_io import mapped_npy

        mapped = mapped_npy(self.x)
        x: Any = self.x if mapped is None else _MappedRows(*mapped)
        rest = (self.y, self.train_idx, self.val_idx, self.test_idx, self.num_classes)
        return (_rebuild_data, (self.graph, x, *rest))


@dataclass(frozen=True)
class _MappedRows:
    path: str
    hot_first: bool


def _rebuild_data(graph: Any, x: Any, *rest: Any) -> _Data:
    if isinstance(x, _MappedRows):
        from gnnsys.graph_io import reopen_npy

        x = reopen_npy(x.path, x.hot_first)
    return _Data(graph, x, *rest)


@dataclass
class _Job:
    mode: str
    data: _Data
    model: Dict[str, Any]
    train: Dict[str, Any]
    techniques: Dict[str, Any]
    stages: int
    groups: int
    chunks: int
    chunk_of: Optional[torch.Tensor]
    owner: Optional[torch.Tensor]
    backend: str


def run(
    mode: str,
    dataset: Any,
    model: Any = None,
    nproc: int = 1,
    epochs: Optional[int] = None,
    *,
    stages: Optional[int] = None,
    groups: Optional[int] = None,
    chunks: Optional[int] = None,
    train: Any = None,
    techniques: Any = None,
    partition_method: str = "auto",
    backend: str = "gloo",
    port: Optional[int] = None,
    on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Dict[str, Any]:
    """Train ``model`` on ``dataset`` with ``nproc`` ranks and return the merged metrics.

    Args:
        mode: "pipe" (GNNPipe, ``nproc`` stages), "hybrid" (``stages`` x ``groups`` grid),
            "graph" (graph parallelism, ``nproc`` parts) or "single" (this process).
        dataset: a ``gnnsys`` Dataset (graph, x, y, train/val/test idx, num_classes).
        model, train, techniques: ``ModelConfig`` / ``TrainConfig`` / ``Techniques`` or dicts.
        epochs: overrides ``train.epochs``.
        chunks: M chunks (pipe, hybrid; default 4, per group in hybrid).
        partition_method: "auto" (pymetis when installed, else BFS), "metis", "bfs", "random".
        backend: "gloo" (CPU) or "nccl" (one GPU per rank).
        on_epoch: called in this process with rank 0's row (epoch, loss, accuracies, its own
            seconds) as each epoch ends, while the ranks go on; "single" calls it per row once
            training is done. The returned rows are the merged ones.

    Returns a dict: ``mode``, ``nproc``, ``stages``, ``groups``, ``chunks``, ``partition``
    (method, edge cut, halo), ``layer_ranges``, ``epochs`` (per epoch: loss, train/val/test
    accuracy, seconds, ``bytes`` by kind summed over ranks), ``warm`` (bytes and seconds of the
    warm fill), ``stale_reads`` per epoch, ``max_stale_age`` and ``ranks`` (per-rank results).

    Example:
        >>> out = run("pipe", gnnsys.datasets.synthetic("mini"), {"kind": "gcnii",
        ...           "num_layers": 16}, nproc=4, epochs=5, chunks=8)
        >>> out["epochs"][-1]["bytes"]["activation"]
    """
    spec = dict(
        mode=mode,
        model=model,
        epochs=epochs,
        stages=stages,
        groups=groups,
        chunks=chunks,
        train=train,
        techniques=techniques,
        partition_method=partition_method,
    )
    if mode == "single":
        from gnnsys.pipeline_parallel.model import train_single

        job, _ = _make_job(_as_data(dataset), 1, **spec)
        out = train_single(job.data, job.model, job.train, job.techniques)
        if on_epoch is not None:
            for row in out["epochs"]:
                on_epoch(dict(row))
        return {"mode": "single", "nproc": 1, "epochs": out["epochs"], "record": out}
    each = None if on_epoch is None else (lambda _job, row: on_epoch(row))
    return run_many(dataset, [spec], nproc, backend=backend, port=port, on_epoch=each)[0]


def run_many(
    dataset: Any,
    runs: Sequence[Dict[str, Any]],
    nproc: int,
    *,
    backend: str = "gloo",
    port: Optional[int] = None,
    on_epoch: Optional[Callable[[int, Dict[str, Any]], None]] = None,
) -> List[Dict[str, Any]]:
    """Several distributed runs in one set of ranks: they start once and run ``runs`` in order.

    Each entry of ``runs`` holds ``run``'s keyword arguments (``mode``, ``model``, ``epochs``,
    ``stages``, ``groups``, ``chunks``, ``train``, ``techniques``, ``partition_method``); all
    share ``dataset``, ``nproc`` and ``backend``. Starting ranks costs seconds (each imports
    torch), so ablations and tests batch their runs here. ``on_epoch(i, row)`` gets rank 0's
    row of run ``i`` as each epoch ends.

    Example:
        >>> a, b = run_many(ds, [{"mode": "pipe"}, {"mode": "graph"}], nproc=4)
    """
    check_choice("backend", backend, BACKENDS)
    check_int("nproc", nproc, 1)
    if backend == "nccl":
        from gnnsys._checks import nccl_device

        nccl_device(0, nproc)  # ranks outnumbering GPUs fail here, before any spawn
    data = _as_data(dataset)
    jobs, infos = [], []
    for spec in runs:
        if spec.get("mode") == "single":
            raise ValueError("run_many runs distributed modes; call run('single', ...) instead")
        job, info = _make_job(data, nproc, backend=backend, **spec)
        jobs.append(job)
        infos.append(info)
    timeout = max(j.train["timeout"] for j in jobs)
    per_job = _spawn(jobs, nproc, timeout, port, on_epoch)
    outs = []
    for info, results in zip(infos, per_job):
        out = merge(results)
        out.update(info)
        outs.append(out)
    return outs


def calibrate(
    dataset: Any,
    mode: str,
    model: Any,
    nproc: int,
    *,
    chunks: Any = None,
    stages: Any = None,
    train: Any = None,
    techniques: Any = None,
    partition_method: str = "auto",
    epochs: int = 2,
) -> Dict[str, Any]:
    """Resolve ``chunks="auto"`` and ``stages="auto"`` (hybrid) by measuring and modeling.

    Short profiled runs (``epochs`` each, the last one replayed) on this machine feed the cost
    model (``cost_model``), which predicts the epoch on the run's network (``train.net_gbps``;
    none: a free one) for each candidate: chunks from runs at M = 4 and 16 (per-step overhead
    against the bubble; the smallest M within 5% of the best, since more chunks mean more stale
    reads), grids from one run per divisor of ``nproc`` up to the depth. Returns ``chunks``,
    ``stages``, ``groups`` and the predictions.

    Example:
        >>> calibrate(ds, "pipe", model, 4, chunks="auto")["chunks"]
    """
    from gnnsys.pipeline_parallel.cost_model import choose_chunks, choose_grid
    from gnnsys.pipeline_parallel.netmodel import net_model

    tcfg = coerce(TrainConfig, train, epochs=epochs, eval_every=0, profile=True)
    mcfg = coerce(ModelConfig, model)
    net = net_model(tcfg.net_gbps, tcfg.net_latency_us)
    cores = usable_cpus()
    base = dict(model=asdict(mcfg), train=asdict(tcfg), techniques=techniques)
    base["partition_method"] = partition_method
    out: Dict[str, Any] = {"chunks": chunks, "stages": stages}
    if stages == "auto":
        if mode != "hybrid":
            raise ValueError(f"stages='auto' applies to mode='hybrid', not {mode!r}")
        grids = [s for s in range(1, nproc + 1) if nproc % s == 0 and s <= mcfg.num_layers]
        m = 4 if chunks in (None, "auto") else int(chunks)
        specs = [{"mode": "hybrid", "stages": s, "groups": nproc // s, "chunks": m, **base}
                 for s in grids]  # fmt: skip
        pick = choose_grid(run_many(dataset, specs, nproc), net, cores=cores)
        out.update(stages=pick["stages"], groups=pick["groups"], grid_predicted=pick["predicted"])
    if chunks == "auto":
        if mode not in ("pipe", "hybrid"):
            raise ValueError(f"chunks='auto' applies to mode='pipe' or 'hybrid', not {mode!r}")
        grid = {} if mode == "pipe" else {"stages": out["stages"], "groups": out.get("groups")}
        specs = [{"mode": mode, "chunks": m, **grid, **base} for m in (4, 16)]
        a, b = run_many(dataset, specs, nproc)
        pick = choose_chunks(a, b, net, cores=cores)
        out.update(chunks=pick["chunks"], chunks_predicted=pick["predicted"])
    return out


def _make_job(
    data: _Data,
    nproc: int,
    *,
    mode: str,
    model: Any = None,
    epochs: Optional[int] = None,
    stages: Optional[int] = None,
    groups: Optional[int] = None,
    chunks: Optional[int] = None,
    train: Any = None,
    techniques: Any = None,
    partition_method: str = "auto",
    backend: str = "gloo",
) -> Tuple[_Job, Dict[str, Any]]:
    check_choice("mode", mode, MODES)
    check_choice("partition_method", partition_method, METHODS)
    mcfg = coerce(ModelConfig, model)
    tcfg = coerce(TrainConfig, train, **({"epochs": epochs} if epochs is not None else {}))
    tech = coerce(Techniques, techniques)
    if mode == "single":
        job = _Job(mode, data, asdict(mcfg), asdict(tcfg), asdict(tech), 1, 1, 1, None, None, "")
        return job, {}
    if backend == "nccl" and tcfg.net_gbps:
        raise ValueError(
            "net_gbps models a network for gloo runs on one machine; NCCL runs use their real "
            "network: drop net_gbps/net_latency_us or use backend='gloo'"
        )
    stages, groups, chunks = _grid(mode, nproc, stages, groups, chunks, mcfg.num_layers)
    n = data.graph.num_nodes
    if chunks > n:
        raise ValueError(f"chunks ({chunks}) must not exceed the number of nodes ({n})")
    chunk_of, owner, part_info = assign(
        mode, data.graph, groups, chunks, method=partition_method, seed=tcfg.seed
    )
    job = _Job(
        mode,
        data,
        asdict(mcfg),
        asdict(tcfg),
        asdict(tech),
        stages,
        groups,
        chunks,
        chunk_of,
        owner,
        backend,
    )
    info = {
        "mode": mode,
        "nproc": nproc,
        "stages": stages,
        "groups": groups,
        "chunks": chunks,
        "partition": part_info,
        "backend": backend,
        "model": asdict(mcfg),
        "train": asdict(tcfg),
        "techniques": asdict(tech),
        "assignment": {"chunk_of": chunk_of, "owner": owner},
    }
    return job, info


def assign(mode: str, graph: Any, groups: int, chunks: int, *, method: str = "auto", seed: int = 0):
    """(chunk_of, owner, partition summary) of a run: chunks for "pipe", parts for "graph",
    groups then chunks inside each group for "hybrid"; ``None`` where a mode has no such map.

    Example:
        >>> chunk_of, owner, info = assign("hybrid", graph, groups=2, chunks=4)
    """
    if mode == "pipe":
        p = partition(graph, chunks, method=method, seed=seed)
        return p.part, None, {"chunks": p.summary()}
    if mode == "graph":
        p = partition(graph, groups, method=method, seed=seed)
        return None, p.part, {"groups": p.summary()}
    chunk_of, owner, gp = nested_partition(graph, groups, chunks, method=method, seed=seed)
    return chunk_of, owner, {"groups": gp.summary()}


def merge(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Merge per-rank results: metrics from rank 0, bytes and messages summed, seconds from the
    slowest; when profiled, ``breakdown``, ``breakdown_cpu`` and ``steps`` of every rank, in
    rank order.

    Example:
        >>> merge(per_rank)["epochs"][0]["bytes"]   # {"activation": ..., "gradient": ...}
    """
    results = sorted(results, key=lambda r: r["rank"])
    rows = []
    for i, row in enumerate(results[0]["epochs"]):
        row = dict(row)
        row["seconds"] = max(r["epochs"][i]["seconds"] for r in results)
        row["bytes"] = _sum_bytes(results, row["epoch"])
        row["messages"] = _sum_bytes(results, row["epoch"], "messages")
        for key in ("breakdown", "breakdown_cpu", "steps"):
            if key in row:
                row[key] = [r["epochs"][i][key] for r in results]
        rows.append(row)
    out: Dict[str, Any] = {"epochs": rows, "ranks": results}
    out["warm"] = {
        "bytes": _sum_bytes(results, 0),
        "seconds": max(r.get("warm_seconds", 0.0) for r in results),
    }
    if "layer_ranges" in results[0]:
        out["layer_ranges"] = results[0]["layer_ranges"]
        stale: Dict[int, int] = {}
        for r in results:
            for e, k in r["stale_reads"].items():
                stale[e] = stale.get(e, 0) + k
        out["stale_reads"] = dict(sorted(stale.items()))
        out["max_stale_age"] = max(r["max_stale_age"] for r in results)
        out["max_fresh_age"] = max(r["max_fresh_age"] for r in results)
    return out


def _sum_bytes(results: List[Dict[str, Any]], epoch: int, key: str = "bytes") -> Dict[str, int]:
    total: Dict[str, int] = {}
    for r in results:
        for kind, b in r.get(key, {}).get(epoch, {}).items():
            total[kind] = total.get(kind, 0) + b
    return total


# ---------------------------------------------------------------------- ranks
def run_rank(
    job: _Job,
    rank: int,
    world: int,
    on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Dict[str, Any]:
    """Run one rank inside an initialised process group; returns its result dict.

    ``on_epoch`` (rank 0 passes one) gets this rank's row as each epoch ends.

    Example:
        >>> dist.init_process_group("gloo", ...); result = run_rank(job, rank, world)
    """
    from gnnsys._malloc import tune_malloc
    from gnnsys.pipeline_parallel.model import set_threads
    from gnnsys.pipeline_parallel.netmodel import net_model
    from gnnsys.pipeline_parallel.transport import Transport

    tcfg = TrainConfig(**job.train)
    set_threads(tcfg.threads)
    tune_malloc()
    device = torch.device("cpu")
    if job.backend == "nccl":
        device = _rank_gpu(rank, world)
        torch.cuda.set_device(device)
    # GNNSYS_P2P_BATCHED=1 runs NCCL's batched point-to-point path over gloo too (tests).
    batched = True if os.environ.get("GNNSYS_P2P_BATCHED") == "1" else None
    net = net_model(tcfg.net_gbps, tcfg.net_latency_us)
    transport = Transport(timeout=tcfg.timeout, batched=batched, net=net)
    kw = dict(model=job.model, train=job.train, techniques=job.techniques, device=device)
    if job.mode == "graph":
        from gnnsys.pipeline_parallel.graph_parallel import GraphParallelTrainer

        trainer = GraphParallelTrainer(job.data, job.owner, job.groups, transport, **kw)
    elif job.mode == "pipe":
        from gnnsys.pipeline_parallel.gnnpipe import PipeTrainer

        trainer = PipeTrainer(
            job.data, job.chunk_of, job.chunks, transport, stage=rank, num_stages=job.stages, **kw
        )
    else:
        from gnnsys.pipeline_parallel.hybrid import HybridTrainer

        trainer = HybridTrainer(
            job.data,
            job.chunk_of,
            job.chunks,
            transport,
            owner=job.owner,
            num_stages=job.stages,
            num_groups=job.groups,
            **kw,
        )
    try:
        return trainer.fit(on_epoch=on_epoch)
    finally:
        transport.close()


def _rank_gpu(rank: int, world: int) -> torch.device:
    """This rank's GPU under NCCL (torchrun's LOCAL_RANK / LOCAL_WORLD_SIZE when set; else
    every rank is on this machine): a clear error when ranks outnumber GPUs."""
    from gnnsys._checks import nccl_device

    local = int(os.environ.get("LOCAL_RANK", rank))
    return nccl_device(local, int(os.environ.get("LOCAL_WORLD_SIZE", world)))


def _init_group(backend: str, this_rank: int, num_ranks: int, **kwargs: Any) -> None:
    """``init_process_group``, bound to this rank's GPU under NCCL (``device_id``: the
    communicator is created eagerly on the right device instead of guessed at first use)."""
    import torch.distributed as dist

    if backend == "nccl":
        device = _rank_gpu(this_rank, num_ranks)
        torch.cuda.set_device(device)
        kwargs["device_id"] = device
    dist.init_process_group(backend, **kwargs)


def _rank_main(
    rank: int, world: int, port: int, jobs: List[_Job], results: Any, stream: bool = False,
    parent: Optional[int] = None,
) -> None:  # fmt: skip
    """One rank: join the group through the launcher's store on ``port`` (``rendezvous_store``),
    run the jobs, report."""
    import torch.distributed as dist

    from gnnsys._lifetime import die_with_parent, skip_exit_collection

    die_with_parent(parent)  # a launcher killed outright leaves no rank training on

    def reporter(index: int) -> Optional[Callable[[Dict[str, Any]], None]]:
        if not (stream and rank == 0):
            return None
        return lambda row: results.put(("epoch", rank, pickle.dumps((index, dict(row)))))

    try:
        timeout = datetime.timedelta(seconds=max(float(j.train["timeout"]) for j in jobs))
        store = dist.TCPStore("127.0.0.1", port, world, False, timeout=timeout)
        _init_group(
            jobs[0].backend, rank, world, store=store, rank=rank, world_size=world,
            timeout=timeout,
        )  # fmt: skip
        outs = [run_rank(job, rank, world, reporter(i)) for i, job in enumerate(jobs)]
        results.put(("ok", rank, pickle.dumps(outs)))
        results.close()
        results.join_thread()
        dist.destroy_process_group()
        skip_exit_collection()  # reported: the exit need not walk torch's objects
    except BaseException:  # report everything, including KeyboardInterrupt, then exit non-zero
        results.put(("error", rank, traceback.format_exc()))
        results.close()
        results.join_thread()  # the report must leave before the abrupt exit below
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)  # skip process-group teardown, which could block on a dead peer


def _spawn(
    jobs: List[_Job],
    nproc: int,
    timeout: float,
    port: Optional[int],
    on_epoch: Optional[Callable[[int, Dict[str, Any]], None]] = None,
) -> List[List[Dict[str, Any]]]:
    """Start ``nproc`` ranks that run ``jobs`` in order; returns per job the per-rank results.

    Rank 0's per-epoch rows go to ``on_epoch(job index, row)`` as they arrive.
    """
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    store = rendezvous_store(nproc, timeout, port or 0)  # held until the ranks are done
    procs = [
        ctx.Process(
            target=_rank_main,
            args=(r, nproc, store.port, jobs, results, on_epoch is not None, os.getpid()),
            daemon=True,
        )
        for r in range(nproc)
    ]
    for p in procs:
        p.start()
    done: Dict[int, List[Dict[str, Any]]] = {}
    errors: Dict[int, str] = {}
    deadline: Optional[float] = None
    try:
        while len(done) + len(errors) < nproc:
            _drain(results, done, errors, 0.2, on_epoch)
            for r, p in enumerate(procs):
                if r in done or r in errors or p.is_alive():
                    continue
                _drain(results, done, errors, 1.0, on_epoch)  # its report may still be in flight
                if r not in done and r not in errors:
                    errors[r] = f"died without reporting (exit code {p.exitcode})"
            if errors and deadline is None:
                deadline = time.monotonic() + timeout + 10.0
            if deadline is not None and time.monotonic() > deadline:
                for r in range(nproc):
                    if r not in done and r not in errors:
                        errors[r] = f"still running {timeout + 10.0:g}s after the first failure"
                break
    finally:
        for p in procs:
            p.join(timeout=5.0)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5.0)
    if errors:
        raise RankFailure(errors)
    return [[done[r][j] for r in range(nproc)] for j in range(len(jobs))]


def _drain(
    results: Any,
    done: Dict[int, Any],
    errors: Dict[int, str],
    wait: float,
    on_epoch: Optional[Callable[[int, Dict[str, Any]], None]] = None,
) -> None:
    """Take every message waiting on the queue (the first within ``wait`` seconds)."""
    try:
        message = results.get(timeout=wait)
    except queue_mod.Empty:
        return
    while True:
        status, rank, payload = message
        if status == "ok":
            done[rank] = pickle.loads(payload)
        elif status == "epoch":
            if on_epoch is not None:
                on_epoch(*pickle.loads(payload))
        else:
            errors[rank] = payload
        try:
            message = results.get_nowait()
        except queue_mod.Empty:
            return


def rendezvous_store(nproc: int, timeout: float, port: int = 0) -> Any:
    """A ``TCPStore`` served by the launcher on ``port`` (0: one the OS picks), listening
    before any rank starts; the ranks join it as clients. Picking a free port and leaving
    rank 0 to bind it seconds later (after its imports) lost the port to another process now
    and then under load ("EADDRINUSE", a fresh clone's ``make test`` in session 29); a port
    the caller names that is taken now fails here, before any rank starts.

    Example:
        >>> store = rendezvous_store(2, 60.0); store.port > 0
        True
    """
    import torch.distributed as dist

    wait = datetime.timedelta(seconds=max(float(timeout), 1.0))
    return dist.TCPStore("127.0.0.1", port, nproc, True, timeout=wait, wait_for_workers=False)


# ---------------------------------------------------------------------- checks
def _as_data(dataset: Any) -> _Data:
    from gnnsys.graph import Graph

    missing = [
        a
        for a in ("graph", "x", "y", "train_idx", "val_idx", "test_idx", "num_classes")
        if not hasattr(dataset, a)
    ]
    if missing:
        raise TypeError(f"dataset lacks {missing} (expected a gnnsys Dataset)")
    if not isinstance(dataset.graph, Graph):
        raise TypeError(f"dataset.graph must be a gnnsys.Graph, got {type(dataset.graph).__name__}")
    return _Data(
        dataset.graph,
        dataset.x,
        dataset.y,
        dataset.train_idx,
        dataset.val_idx,
        dataset.test_idx,
        int(dataset.num_classes),
    )


def _grid(mode, nproc, stages, groups, chunks, num_layers):
    if mode == "pipe":
        if groups not in (None, 1):
            raise ValueError(f"mode='pipe' has one group, got groups={groups}")
        stages, groups = stages or nproc, 1
    elif mode == "graph":
        if stages not in (None, 1):
            raise ValueError(f"mode='graph' has one stage, got stages={stages}")
        if chunks not in (None, 1):
            raise ValueError(f"mode='graph' has one chunk per part, got chunks={chunks}")
        stages, groups, chunks = 1, groups or nproc, 1
    else:
        if stages is None and groups is None:
            groups = 2 if nproc % 2 == 0 and nproc > 1 else 1
        if stages is None:
            stages = nproc // groups
        if groups is None:
            groups = nproc // stages
    for name, v in (("stages", stages), ("groups", groups)):
        check_int(name, v, 1)
    if stages * groups != nproc:
        raise ValueError(f"stages ({stages}) x groups ({groups}) must equal nproc ({nproc})")
    if stages > num_layers:
        raise ValueError(f"stages ({stages}) must not exceed num_layers ({num_layers})")
    chunks = 4 if chunks is None else chunks
    check_int("chunks", chunks, 1)
    return stages, groups, chunks


# ---------------------------------------------------------------------- torchrun
def main(argv: Optional[List[str]] = None) -> int:
    """One rank under torchrun (or all ranks with ``--nproc`` when RANK is not set).

    Example:
        torchrun --nproc-per-node 4 -m gnnsys.pipeline_parallel.launch --mode pipe \\
            --dataset mini --kind gcnii --layers 16 --chunks 8 --epochs 5
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=MODES, default="pipe")
    ap.add_argument("--dataset", default="tiny", help="a gnnsys.datasets.synthetic name")
    ap.add_argument("--kind", default="gcnii")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--layer-weight-decay", type=float, default=None)
    ap.add_argument("--chunks", type=int, default=None)
    ap.add_argument("--stages", type=int, default=None)
    ap.add_argument("--groups", type=int, default=None)
    ap.add_argument("--nproc", type=int, default=None, help="spawn locally instead of torchrun")
    ap.add_argument("--partition", default="auto", choices=METHODS)
    ap.add_argument("--backend", default="gloo", choices=BACKENDS)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from gnnsys import datasets

    ds = datasets.synthetic(args.dataset, seed=args.seed)
    model = {"kind": args.kind, "num_layers": args.layers, "hidden": args.hidden}
    model["dropout"] = args.dropout
    train = {"epochs": args.epochs, "lr": args.lr, "seed": args.seed}
    train.update(weight_decay=args.weight_decay, layer_weight_decay=args.layer_weight_decay)
    if "RANK" not in os.environ or args.nproc:
        out = run(
            args.mode,
            ds,
            model,
            args.nproc or 1,
            stages=args.stages,
            groups=args.groups,
            chunks=args.chunks,
            train=train,
            partition_method=args.partition,
            backend=args.backend,
            on_epoch=_progress,
        )
        for key in ("ranks", "record", "assignment"):
            out.pop(key, None)
        print(json.dumps(out, default=str))
        return 0
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    job, info = _make_job(
        _as_data(ds),
        world,
        mode=args.mode,
        model=model,
        stages=args.stages,
        groups=args.groups,
        chunks=args.chunks,
        train=train,
        partition_method=args.partition,
        backend=args.backend,
    )
    timeout = datetime.timedelta(seconds=float(job.train["timeout"]))
    _init_group(args.backend, rank, world, timeout=timeout)
    result = run_rank(job, rank, world, _progress if rank == 0 else None)
    gathered: List[Any] = [None] * world
    dist.all_gather_object(gathered, result)
    if rank == 0:
        out = merge(gathered)
        out.update(info)
        out.pop("ranks", None)
        out.pop("assignment", None)
        print(json.dumps(out, default=str))
    dist.destroy_process_group()
    return 0


def _progress(row: Dict[str, Any]) -> None:
    # stderr: stdout carries the one JSON result line.
    parts = [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()]
    print(", ".join(parts), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

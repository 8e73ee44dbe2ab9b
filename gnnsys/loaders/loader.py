"""The one Loader engine: batches seeds, samples, fetches features, prefetches, copies to device.

Read top to bottom, one batch goes through named stages (as DGL GraphBolt writes its pipeline):

    split seeds   -> shuffle with a seeded generator, cut into batches (``_Plan``)
    sample        -> ``sampler.sample(seeds, SampleKey(seed, epoch, batch))``
    fetch         -> ``FeatureStore.fetch`` of every node table for the sampled nodes (of its node
                     type when typed), every edge table for the sampled edges (of its edge
                     type), and the labels (pinned buffers when headed for a GPU)
    copy          -> to ``device`` on a side CUDA stream, overlapping the current training step
    collate       -> ``collate(batch)`` (the adapters build PyG ``Data`` / DGL blocks here)

Worker threads (not processes: the numba kernels release the GIL) run whole batches, so batch
i+1 is sampled while batch i gathers; the consumer receives batches in order through a bounded
window of ready batches. Every random draw is keyed by (seed, epoch, batch, node), so the
batches are identical whatever the number of threads. Errors raised in a worker re-raise in the
consumer; an abandoned iterator stops its pass. The threads are the loader's, kept across
its epochs (``_workers.WorkerPool``), and exit when the loader is freed.
"""

from __future__ import annotations

import atexit
import functools
import operator
import os
import threading
import weakref
from dataclasses import dataclass, field, replace
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

import numba
import numpy as np
import torch

from gnnsys import _hugepages, _mapped
from gnnsys._checks import check_ids, check_index, data_device
from gnnsys._malloc import tune_malloc
from gnnsys.features import FeatureStore
from gnnsys.loaders import _workers
from gnnsys.loaders.base import SampledSubgraph, SampleKey, Sampler
from gnnsys.unified_tensor import UnifiedTensor

LABEL_SCOPES = ("seeds", "nodes")
# Batches in flight per thread when a batch reads a map bigger than memory (``reads_from_disk``)
# and the caller did not choose ``num_threads``: while one batch's gather waits on the disk,
# another's sampling uses the core. Measured on the papers folder (28 GB of float16 features,
# 24 GiB box, 2 threads, batches of fresh seeds, interleaved): 2 workers 23.1 / 23.1 batches/s,
# 4 workers 30.0 / 31.3, 6 workers 29.7 / 31.8.
DISK_BOUND_WORKERS_PER_THREAD = 2


@dataclass
class Batch:
    """One mini-batch as the Loader yields it (before any ``collate``).

    Fields:
        subgraph: the sampler's ``SampledSubgraph`` (local ids; ``subgraph.nodes`` global ids).
        x: rows of the first node table (None without features).
        y: labels of the seeds (``label_scope="seeds"``) or of every node (``"nodes"``), of the
            label table's node type when typed; a dict by key when ``labels`` was a list.
        seeds: the ids handed to the sampler for this batch.
        input_id: positions of ``seeds`` in the Loader's seed list.
        index: batch number within the epoch; epoch: the epoch it belongs to.
        node_data: every fetched node table by key (``x`` is one of them); a typed key
            ``(node_type, name)`` holds the rows of that type's sampled nodes, in their order.
        edge_data: every fetched edge table by key, rows in the subgraph's edge order (a typed
            key ``(edge_type, name)``: that type's sampled edges).
    """

    subgraph: SampledSubgraph
    x: Optional[torch.Tensor]
    y: Optional[torch.Tensor]
    seeds: torch.Tensor
    input_id: torch.Tensor
    index: int = 0
    epoch: int = 0
    node_data: Dict[Any, torch.Tensor] = field(default_factory=dict)
    edge_data: Dict[Any, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return int(self.seeds.numel())

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``.

        Example:
            >>> batch = batch.to("cuda", non_blocking=True)
        """

        def mv(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return t.to(device, non_blocking=non_blocking) if t is not None else None

        data = {k: mv(v) for k, v in self.node_data.items()}
        x = None
        if self.x is not None:
            same = [k for k, v in self.node_data.items() if v is self.x]
            x = data[same[0]] if same else mv(self.x)
        return replace(
            self,
            subgraph=self.subgraph.to(device, non_blocking),
            x=x,
            y=mv(self.y),
            seeds=mv(self.seeds),
            input_id=mv(self.input_id),
            node_data=data,
            edge_data={k: mv(v) for k, v in self.edge_data.items()},
        )


@dataclass(frozen=True)
class _Table:
    """One table the fetch stage gathers: its store and key, and which rows a batch needs
    (``kind`` "node" or "edge"; ``type_index`` the node or edge type, None: untyped)."""

    store: FeatureStore
    key: Any
    kind: str
    type_index: Optional[int]


class Loader:
    """Iterate mini-batches: seeds -> sampler -> features/labels -> device -> collate.

    Args:
        sampler: anything with ``sample(seeds, SampleKey) -> SampledSubgraph`` (NeighborSampler,
            LinkSampler, a ChunkSampler...). If it has ``num_inputs``, seeds are validated
            against it once up front.
        seeds: 1-D integer ids (or a bool mask over ``num_inputs``) to batch; an int n means
            ``arange(n)``.
        batch_size, shuffle, drop_last: as torch's DataLoader; the shuffle is seeded.
        seed: the randomness seed (shuffle and every sampling draw).
        features: a ``FeatureStore`` (or a mapping / a single tensor, taken as table ``x``).
        labels: key of the label table in ``features``, a tensor of labels, or a list of keys
            (typed graphs: one label table per node type; ``Batch.y`` is then a dict by key).
        feature_names: node tables fetched for ``subgraph.nodes`` (default: ``x`` if present,
            else every table except the labels); ``Batch.x`` is the first. On a typed graph the
            keys are ``(node_type, name)`` and rows are ids within the type.
        edge_features: a ``FeatureStore`` of edge tables (rows = the graph's edge ids; keys
            ``(edge_type, name)`` on a typed graph), fetched for the sampled edges.
        edge_feature_names: which edge tables to fetch (default: all of ``edge_features``).
        seed_time: one time per seed for a ``TemporalNeighborSampler`` (default: the seeds'
            node times); batch b's seeds are bounded by their own times.
        input_sampler: positions into ``seeds`` drawn anew at each ``iter()`` (a torch
            ``Sampler``, e.g. PyG's ``ImbalancedSampler`` or a ``DistributedSampler``; as the
            ``sampler`` of torch's DataLoader), batched in its order; exclusive with shuffle.
        label_scope: ``"seeds"`` (labels of the batch's seeds) or ``"nodes"`` (of every node).
        device: where batches go; on CUDA the next batch is copied on a side stream from pinned
            buffers while the current one trains.
        num_threads: CPU threads for sampling and gathering (default: numba's thread count).
            Threads take whole batches, each kernel then runs on one core: robust on busy
            machines; with fewer batches than threads, each batch gets several cores. Left
            at the default, a loader that reads a map bigger than memory (``reads_from_disk``)
            runs ``DISK_BOUND_WORKERS_PER_THREAD`` batches per thread at once. A sampler with
            ``collective = True`` (``gnnsys.distributed``) gets one worker thread per lane:
            its batches are exchanges every rank runs in the same order.
        prefetch: ready batches kept ahead of the consumer (0: run everything in the caller).
        collate: ``collate(batch)`` runs in the worker; its result is what iteration yields.
        num_workers: accepted for PyG/torch compatibility; > 0 sets ``num_threads``.
        pin_memory: gather into pinned buffers (default: when ``device`` is a GPU).

    Example:
        >>> loader = Loader(NeighborSampler(graph, [15, 10]), train_idx, batch_size=1024,
        ...                 shuffle=True, features=FeatureStore(x=x, y=y), labels="y")
        >>> for batch in loader:
        ...     out = model(batch.x, batch.subgraph)
    """

    def __init__(
        self,
        sampler: Sampler,
        seeds: Any,
        *,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        features: Any = None,
        labels: Any = None,
        device: Union[str, torch.device, None] = None,
        num_threads: Optional[int] = None,
        prefetch: int = 2,
        collate: Optional[Callable[[Batch], Any]] = None,
        feature_names: Optional[Sequence[str]] = None,
        label_scope: str = "seeds",
        num_workers: Optional[int] = None,
        pin_memory: Optional[bool] = None,
        edge_features: Any = None,
        edge_feature_names: Optional[Sequence[Any]] = None,
        seed_time: Any = None,
        input_sampler: Optional[Iterable[int]] = None,
    ) -> None:
        if not callable(getattr(sampler, "sample", None)):
            raise TypeError(f"sampler must have a sample(seeds, key) method, got {sampler!r}")
        tune_malloc()  # per-batch buffers stay in the heap (see gnnsys/_malloc.py)
        self.sampler = sampler
        # CPUs of each worker thread (thread w: worker_cores[w % len]); None: left alone.
        # Set by a front that pins its workers (the DGL front's enable_cpu_affinity).
        self.worker_cores: Optional[List[Set[int]]] = None
        # Numba threads of each worker thread's kernels when set (the PyG front's
        # enable_multithreading); None: the loader's threads divided among its workers.
        self.worker_threads: Optional[int] = None
        # Called on each worker thread as it starts a pass, with the worker's index (the PyG
        # front's enable_memory_log); what it raises fails the pass.
        self.worker_start: Optional[Callable[[int], None]] = None
        self.seeds = _check_seeds(seeds, getattr(sampler, "num_inputs", None))
        self.seed_time = None
        if seed_time is not None:
            check = getattr(sampler, "check_seed_time", None)
            if check is None:
                raise TypeError(
                    f"seed_time needs a temporal sampler (TemporalNeighborSampler), got "
                    f"{type(sampler).__name__}"
                )
            self.seed_time = check(seed_time, int(self.seeds.numel()))
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.shuffle = bool(shuffle)
        if input_sampler is not None:
            if self.shuffle:  # torch's DataLoader: "sampler option is mutually exclusive ..."
                raise ValueError("input_sampler (a DataLoader's sampler) excludes shuffle=True")
            if not hasattr(input_sampler, "__iter__"):
                raise TypeError(
                    f"input_sampler must be an iterable of positions (a torch Sampler), got "
                    f"{type(input_sampler).__name__}"
                )
        self.input_sampler = input_sampler
        self.drop_last = bool(drop_last)
        self.seed = _check_int("seed", seed, None)
        self.prefetch = _check_int("prefetch", prefetch, 0)
        if collate is not None and not callable(collate):
            raise TypeError(f"collate must be callable, got {type(collate).__name__}")
        self.collate = collate
        if label_scope not in LABEL_SCOPES:
            raise ValueError(f"label_scope must be one of {LABEL_SCOPES}, got {label_scope!r}")
        self.label_scope = label_scope
        self.device = data_device(device) if device is not None else None
        on_gpu = self.device is not None and self.device.type == "cuda"
        if on_gpu and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available")
        # Pinned gathers only help (and only work) with a GPU present.
        self.pin_memory = (on_gpu if pin_memory is None else bool(pin_memory)) and (
            torch.cuda.is_available()
        )
        if num_workers is not None:
            _check_int("num_workers", num_workers, 0)
            if num_threads is None and num_workers > 0:
                num_threads = num_workers
        self._threads_chosen = num_threads is not None
        self.num_threads = (
            _check_int("num_threads", num_threads, 1)
            if num_threads is not None
            else numba.config.NUMBA_NUM_THREADS
        )
        label_keys = list(labels) if isinstance(labels, list) else None
        self.features, self.feature_names, self.label_store, self.label_name = _setup_features(
            features, labels if label_keys is None else None, feature_names, label_keys or ()
        )
        self._graph = getattr(sampler, "graph", None)
        self._offsets = self._graph.type_offsets() if self._graph is not None else None
        edge_store = _as_store(edge_features, "edge_features")
        if edge_feature_names is None:
            edge_feature_names = list(edge_store.keys())
        self.tables = [_table(self._graph, self.features, k, "node") for k in self.feature_names]
        self.tables += [_table(self._graph, edge_store, k, "edge") for k in edge_feature_names]
        if label_keys is not None:
            self.label_tables = [_table(self._graph, self.features, k, "node") for k in label_keys]
        elif self.label_store is not None:
            self.label_tables = [_table(self._graph, self.label_store, self.label_name, "node")]
        else:
            self.label_tables = []
        for table in self.tables + self.label_tables:
            _check_node_rows(self._graph, table)
            # (a torch-made table on 4 KiB pages: its random row reads miss the TLB)
            _hugepages.advise_huge(table.store[table.key])
        self._labels_by_key = label_keys is not None
        self._epoch = 0
        self._pool: Optional[_workers.WorkerPool] = None

    def _worker_pool(self) -> _workers.WorkerPool:
        """The worker threads kept across this loader's epochs (``_workers``), made on first
        use (unless ``run_on`` gave some); closed when the loader is freed."""
        self._pool = _workers.kept_for(self, self._pool)
        return self._pool

    def run_on(self, pool: _workers.WorkerPool) -> None:
        """Run this loader's batches on ``pool``'s threads (its owner closes it): a front end
        that makes a Loader per epoch (the DGL ``DataLoader``) keeps its threads this way."""
        self._pool = pool

    # ------------------------------------------------------------------ epochs
    def drop_tables(self, keys: Iterable[Any]) -> None:
        """Stop fetching the node or edge tables ``keys`` (a front whose data lost those
        attributes since: PyG's loaders then give batches without them)."""
        gone = set(keys)
        self.tables = [t for t in self.tables if t.key not in gone]
        self.feature_names = [k for k in self.feature_names if k not in gone]

    def __len__(self) -> int:
        n = int(self.seeds.numel())
        if self.input_sampler is not None:
            try:
                n = len(self.input_sampler)  # type: ignore[arg-type]
            except TypeError:
                raise TypeError("len() of a Loader needs an input_sampler with a length") from None
        return self._batch_count(n)

    def _batch_count(self, n: int) -> int:
        """Batches of ``n`` inputs (the last one partial unless ``drop_last``)."""
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size

    @property
    def epoch(self) -> int:
        """The epoch the next ``iter()`` will use."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next iteration (it feeds the shuffle and every SampleKey).

        Each ``iter()`` then increments it, so plain repeated loops see fresh samples.
        """
        self._epoch = _check_int("epoch", epoch, 0)

    def __iter__(self) -> _LoaderIter:
        epoch = self._epoch
        self._epoch += 1
        return _LoaderIter(self, epoch)

    def __repr__(self) -> str:
        return (
            f"Loader({type(self.sampler).__name__}, seeds={self.seeds.numel()}, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, batches={len(self)}, "
            f"threads={self.num_threads}, prefetch={self.prefetch})"
        )

    # ------------------------------------------------------------------ stages
    def plan(self, epoch: int) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """(seeds, input positions) of every batch of ``epoch``, in order."""
        n = int(self.seeds.numel())
        contiguous = False
        if self.input_sampler is not None:
            order = self._sampled_order(n)
        elif self.shuffle:
            gen = torch.Generator()
            gen.manual_seed(SampleKey(self.seed, epoch, -1).as_int())
            order = torch.randperm(n, generator=gen)
        else:
            order = torch.arange(n)
            contiguous = True
        out = []
        for b in range(self._batch_count(order.numel())):
            pos = order[b * self.batch_size : (b + 1) * self.batch_size]
            out.append((self.seeds[pos[0] : pos[-1] + 1] if contiguous else self.seeds[pos], pos))
        return out

    def _sampled_order(self, n: int) -> torch.Tensor:
        """This epoch's positions from ``input_sampler``, checked against the seeds."""
        order = []
        for i in self.input_sampler:  # type: ignore[union-attr]
            try:
                order.append(operator.index(i))  # (int() would truncate 0.7 to seed 0)
            except TypeError:
                raise TypeError(f"input_sampler's positions must be integers, got {i!r}") from None
        return check_index(
            "input_sampler's positions", torch.tensor(order, dtype=torch.long), n, device=None,
            unit="seeds",
        )  # fmt: skip

    def make_batch(self, index: int, epoch: int, seeds: torch.Tensor, pos: torch.Tensor) -> Batch:
        """Run the sample and fetch stages for one batch (in the calling thread)."""
        key = SampleKey(self.seed, epoch, index)
        if self.seed_time is not None:  # a temporal sampler: each seed's time, in batch order
            sub = self.sampler.sample(seeds, key, seed_time=self.seed_time[pos.numpy()])
        else:
            sub = self.sampler.sample(seeds, key)
        no_ids = sub.metadata.get("edge_types_without_ids", ())
        # a type made bidirectional: its edges have no ids (PyG drops it)
        tables = [
            t for t in self.tables if not (t.kind == "edge" and t.type_index in no_ids)
        ]  # fmt: skip
        seeds_only = self.label_scope == "seeds"
        rows = self._fetch_all(
            [(t, self._rows(t, sub)) for t in tables]
            + [(t, self._rows(t, sub, seeds_only)) for t in self.label_tables]
        )
        node_data: Dict[Any, torch.Tensor] = {}
        edge_data: Dict[Any, torch.Tensor] = {}
        for table, r in zip(tables, rows):
            (node_data if table.kind == "node" else edge_data)[table.key] = r
        x = node_data[self.feature_names[0]] if self.feature_names else None
        y = None
        labels = {t.key: r for t, r in zip(self.label_tables, rows[len(tables) :])}
        if self._labels_by_key:
            y = labels
        elif labels:
            y = next(iter(labels.values()))
        return Batch(sub, x, y, seeds, pos, index, epoch, node_data, edge_data)

    def _rows(self, table: _Table, sub: SampledSubgraph, seeds_only: bool = False) -> torch.Tensor:
        """The rows of ``table`` that batch ``sub`` needs (ids within the table's type)."""
        t = table.type_index
        if table.kind == "edge":
            if t is None:
                return sub.edge_ids
            lo, hi = sub.type_edge_range(t)
            return sub.edge_ids[lo:hi]
        if t is None:
            nodes = sub.nodes
            return nodes[: sub.num_seeds] if seeds_only else nodes
        nodes = sub.type_nodes(t)
        if seeds_only:
            counts = sub.type_num_sampled_nodes
            nodes = nodes[: int(counts[0, t])] if counts is not None else nodes[: sub.num_seeds]
        return nodes - self._offsets[t] if int(self._offsets[t]) else nodes

    def _fetch_all(self, requests: List[Tuple[_Table, torch.Tensor]]) -> List[torch.Tensor]:
        """The rows of each (table, ids) request, in order: the host-gathered requests of one
        store in one ``fetch_many`` (tables it can read together, e.g. a distributed store's,
        share one exchange), the others one by one."""
        out: List[Optional[torch.Tensor]] = [None] * len(requests)
        by_store: Dict[int, List[int]] = {}
        for i, (table, ids) in enumerate(requests):
            device = self._gather_device(table.store, table.key)
            if device is None:
                by_store.setdefault(id(table.store), []).append(i)
            else:
                out[i] = table.store.fetch(table.key, ids, device, pin_memory=self.pin_memory)
        for members in by_store.values():
            store = requests[members[0]][0].store
            got = store.fetch_many(
                [(requests[i][0].key, requests[i][1]) for i in members],
                pin_memory=self.pin_memory,
            )
            for i, rows in zip(members, got):
                out[i] = rows
        return out  # type: ignore[return-value]

    def _gather_device(self, store: FeatureStore, name: Any) -> Optional[torch.device]:
        """Where table ``name`` is gathered: on the GPU, zero-copy from host memory, when it is
        a ``UnifiedTensor`` and batches go to CUDA; otherwise on the host (None)."""
        if self.device is not None and self.device.type == "cuda":
            if isinstance(store[name], UnifiedTensor):
                return self.device
        return None

    def _threads_per_batch(self, num_batches: int) -> Tuple[int, int]:
        """(worker threads, numba threads per worker)."""
        total = self.num_threads
        if getattr(self.sampler, "collective", False):
            # A distributed sampler's exchanges are collectives: every rank must run a lane's
            # batches in the same order, so one worker per lane, batch b on lane b % lanes.
            lanes = max(1, int(getattr(self.sampler, "lanes", 1)))
            if _threading_layer() == "workqueue":  # one caller at a time: all lanes in turn
                lanes = 1
            return lanes, max(1, min(numba.config.NUMBA_NUM_THREADS, total // lanes))
        if _threading_layer() == "workqueue":  # not thread-safe: one caller at a time
            return 1, min(total, numba.config.NUMBA_NUM_THREADS)
        workers = total
        if not self._threads_chosen and self.reads_from_disk():
            workers = total * DISK_BOUND_WORKERS_PER_THREAD
        workers = max(1, min(workers, num_batches))
        per_worker = self.worker_threads or total // workers
        return workers, max(1, min(numba.config.NUMBA_NUM_THREADS, per_worker))

    def reads_from_disk(self) -> bool:
        """Whether a batch reads a map bigger than memory (``gnnsys._mapped``: a feature or
        label table, or the graph's CSC, advised ``MADV_RANDOM`` by ``advise_random``): its
        gathers and samples then wait on the disk part of the time."""
        arrays = [t.store[t.key] for t in self.tables + self.label_tables]
        arrays = [getattr(a, "_rows_np", a) for a in arrays]  # a UnifiedTensor's host rows
        if self._graph is not None:
            arrays += [getattr(self._graph, "indptr", None), getattr(self._graph, "indices", None)]
        return any(_mapped.reads_at_random(a) for a in arrays if a is not None)


class _LoaderIter:
    """One pass over a Loader. Holds no reference its worker threads need, so dropping it
    (``break`` out of a loop) lets its finalizer stop them."""

    def __init__(self, loader: Loader, epoch: int) -> None:
        self._loader = loader
        self.epoch = epoch
        plan = loader.plan(epoch)
        self._len = len(plan)
        self._run = _Run(loader, epoch, plan)
        self._finalizer = weakref.finalize(self, _Run.close, self._run)

    def __iter__(self) -> _LoaderIter:
        return self

    def __len__(self) -> int:
        return self._len

    def __next__(self) -> Any:
        return self._run.next()

    def close(self) -> None:
        """Stop the worker threads (also done when the iterator is garbage collected)."""
        self._finalizer()


class _Run:
    """The shared state of one pass: the plan, the worker threads and the ready window."""

    def __init__(self, loader: Loader, epoch: int, plan: List[Tuple[torch.Tensor, torch.Tensor]]):
        self.loader = loader
        self.epoch = epoch
        self.plan = plan
        self.cond = threading.Condition()
        self.results: Dict[int, Tuple[bool, Any, Any]] = {}
        self.next_task = 0
        self.consumed = 0
        self.stopped = False
        self.start_error: Optional[BaseException] = None  # a worker's, before its first batch
        self.threads: List[threading.Thread] = []
        self.pool: Optional[_workers.WorkerPool] = None  # the loader's kept threads, if they run it
        self.inline = loader.prefetch == 0
        if self.inline or not plan:
            return
        _ACTIVE.add(self)
        workers, per_worker = loader._threads_per_batch(len(plan))
        self.window = loader.prefetch + workers
        self.streams: List[Any] = [None] * workers
        if loader.device is not None and loader.device.type == "cuda":  # pragma: no cover - GPU
            self.streams = [torch.cuda.Stream(loader.device) for _ in range(workers)]
        lanes = workers if getattr(loader.sampler, "collective", False) else 0
        jobs = [
            functools.partial(self._job, w, per_worker, self._work_lane, self.streams[w], w, lanes)
            if lanes
            else functools.partial(self._job, w, per_worker, self._work, self.streams[w])
            for w in range(workers)
        ]
        self.live = workers  # jobs not yet returned (set before they start)
        pool = loader._worker_pool()
        if pool.start(jobs):  # the loader's threads, kept from its last epoch
            self.pool = pool
            self.threads = pool.threads(workers)
        else:  # they still serve another iterator of this loader: threads of this run's own
            for w, job in enumerate(jobs):
                t = threading.Thread(target=job, name=f"gnnsys-loader-run-{w}", daemon=True)
                t.start()
                self.threads.append(t)
        for t in self.threads:
            _THREADS.add(t)

    # ------------------------------------------------------------------ producer side
    def _produce(self, index: int, stream: Any) -> Tuple[Any, Any]:
        loader = self.loader
        seeds, pos = self.plan[index]
        collate = loader.collate if loader.collate is not None else _identity
        if stream is None:
            batch = loader.make_batch(index, self.epoch, seeds, pos)
            if loader.device is not None:
                batch = batch.to(loader.device)
            return collate(batch), None
        # pragma: no cover - needs a GPU. Zero-copy gathers, copies and collate are queued on
        # this worker's side stream; the consumer's stream waits on the event before using it.
        with torch.cuda.stream(stream):
            batch = loader.make_batch(index, self.epoch, seeds, pos)
            batch = batch.to(loader.device, non_blocking=True)
            out = collate(batch)
            event = torch.cuda.Event()
            event.record(stream)
        return out, event

    def _job(self, w: int, numba_threads: int, work: Callable[..., None], *args: Any) -> None:
        """``work(*args)`` on worker thread ``w`` with ``numba_threads`` for its kernels (and
        the CPUs ``Loader.worker_cores`` gives it, when set), counted in ``live`` until it
        returns."""
        try:
            try:
                if numba.get_num_threads() != numba_threads:  # (kept threads keep their setting)
                    numba.set_num_threads(numba_threads)
                cores = self.loader.worker_cores
                if cores:  # (pid 0: this thread alone; kept threads are set again each pass)
                    os.sched_setaffinity(0, cores[w % len(cores)])
                if self.loader.worker_start is not None:
                    self.loader.worker_start(w)
            except BaseException as err:  # re-raised in the consumer
                with self.cond:
                    self.start_error = err
                    self.cond.notify_all()
                return
            work(*args)
        finally:
            with self.cond:
                self.live -= 1
                self.cond.notify_all()

    def _work(self, stream: Any) -> None:
        while True:
            with self.cond:
                while (
                    not self.stopped
                    and self.next_task < len(self.plan)
                    and self.next_task - self.consumed >= self.window
                ):
                    self.cond.wait()
                if self.stopped or self.next_task >= len(self.plan):
                    return
                index = self.next_task
                self.next_task += 1
            if not self._deliver(index, stream):
                return

    def _deliver(self, index: int, stream: Any) -> bool:
        """Build batch ``index`` and hand it (or its error, re-raised in the consumer) to the
        ready window; False after an error: the worker stops."""
        try:
            out, event = self._produce(index, stream)
            res = (True, out, event)
        except BaseException as err:  # re-raised in the consumer
            res = (False, err, None)
        with self.cond:
            self.results[index] = res
            self.cond.notify_all()
        return res[0]

    def _work_lane(self, stream: Any, lane: int, lanes: int) -> None:
        """A collective sampler's worker: batches ``lane, lane + lanes, ...``, in order (the
        sampler sends batch b through its lane b % L; one worker may serve every lane)."""
        index = lane
        while index < len(self.plan):
            with self.cond:
                while not self.stopped and index - self.consumed >= self.window:
                    self.cond.wait()
                if self.stopped:
                    return
            if not self._deliver(index, stream):
                return
            index += lanes

    # ------------------------------------------------------------------ consumer side
    def next(self) -> Any:
        if self.consumed >= len(self.plan):
            if self.pool is not None:
                self.pool.finishing()  # (every batch is out: the jobs are returning)
            self.close()
            raise StopIteration
        if self.inline:
            index = self.consumed
            self.consumed += 1
            return self._produce(index, None)[0]
        with self.cond:
            while self.consumed not in self.results and self.start_error is None:
                if self.stopped:
                    raise StopIteration
                if self.live == 0:
                    raise RuntimeError("gnnsys loader threads exited without producing a batch")
                self.cond.wait(timeout=1.0)
            if self.start_error is not None:
                ok, out, event = False, self.start_error, None
            else:
                ok, out, event = self.results.pop(self.consumed)
                self.consumed += 1
            self.cond.notify_all()
        if not ok:
            self.close()
            raise out
        if event is not None:  # pragma: no cover - needs a GPU
            current = torch.cuda.current_stream(self.loader.device)
            current.wait_event(event)
            _record_stream(out, current)
        return out

    def close(self) -> None:
        with self.cond:
            self.stopped = True
            self.results.clear()
            self.cond.notify_all()


# Runs with live threads, and every worker thread: at exit the runs are stopped and the
# threads joined. A daemon thread still running when the interpreter finalizes aborts the
# process: inside a numba parallel kernel (its OpenMP runtime is torn down), or releasing the
# GIL in C++ code (a tensor's dealloc: Python ends the thread by a forced unwind through
# noexcept frames, "terminate called without an active exception"). The second happened in
# about 1 of 40 short scripts: a worker's own `del self._target` dropped the last reference
# to a finished run, which left _ACTIVE and was freed (with its batches) on that thread
# while the interpreter was already exiting; hence threads are tracked apart from runs.
_ACTIVE: weakref.WeakSet[_Run] = weakref.WeakSet()
_THREADS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for run in list(_ACTIVE):
        run.close()
    for t in _workers.close_all() + list(_THREADS):
        t.join(timeout=10.0)


def _identity(batch: Batch) -> Batch:
    return batch


def _record_stream(obj: Any, stream: Any) -> None:  # pragma: no cover - needs a GPU
    """Tell the caching allocator that tensors made on a side stream are used on ``stream``."""
    seen = set()

    def visit(o: Any) -> None:
        if id(o) in seen:
            return
        seen.add(id(o))
        if isinstance(o, torch.Tensor):
            if o.is_cuda:
                o.record_stream(stream)
        elif isinstance(o, dict):
            for v in o.values():
                visit(v)
        elif isinstance(o, (list, tuple)):
            for v in o:
                visit(v)
        elif hasattr(o, "__dict__"):
            for v in vars(o).values():
                visit(v)

    visit(obj)


# ---------------------------------------------------------------------- setup helpers
_LAYER: Optional[str] = None


def _threading_layer() -> str:
    """numba's threading layer ("omp", "tbb" or "workqueue"), initialising it if needed: by
    numba's own launcher, since running a parallel kernel for it compiles one on a cold start."""
    global _LAYER
    if _LAYER is None:
        try:
            from numba.np.ufunc.parallel import _launch_threads
        except ImportError:  # not in this numba: any parallel kernel starts the layer
            from gnnsys.loaders._kernels import column_cumsum

            column_cumsum(np.zeros(2, np.int64), np.zeros(1, np.float64), np.zeros(0, np.int8))
        else:
            _launch_threads()
        _LAYER = numba.threading_layer()
    return _LAYER


def _check_int(name: str, value: Any, lo: Optional[int]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    return int(value)


def _check_seeds(seeds: Any, num_inputs: Optional[int]) -> torch.Tensor:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 0:
            raise ValueError(f"seeds as a count must be >= 0, got {seeds}")
        if num_inputs is not None and seeds > num_inputs:
            raise ValueError(f"seeds={seeds} exceeds the sampler's {num_inputs} inputs")
        return torch.arange(int(seeds))
    if isinstance(seeds, np.ndarray):
        seeds = torch.from_numpy(np.ascontiguousarray(seeds))
    elif isinstance(seeds, (list, tuple, range)):
        # the rules of tensors: floats are refused, bools are a mask (a cast to int64
        # truncated 0.9 to 0 and read [True, False, True] as the ids 1, 0, 1)
        items = list(seeds)
        seeds = torch.as_tensor(items) if items else torch.empty(0, dtype=torch.int64)
    if not isinstance(seeds, torch.Tensor):
        raise TypeError(f"seeds must be a 1-D tensor of ids or a bool mask, got {type(seeds)}")
    if seeds.dtype == torch.bool:
        if seeds.dim() != 1:
            raise ValueError(f"a seed mask must be 1-D, got shape {tuple(seeds.shape)}")
        if num_inputs is not None and seeds.numel() != num_inputs:
            raise ValueError(
                f"seed mask has length {seeds.numel()}, expected {num_inputs} (one per input)"
            )
        return torch.nonzero(seeds.cpu()).flatten()
    return check_ids("seeds", seeds, num_inputs)


def _as_store(features: Any, what: str) -> FeatureStore:
    if features is None:
        return FeatureStore()
    if isinstance(features, FeatureStore):
        return features
    if isinstance(features, dict):
        return FeatureStore(features)
    if isinstance(features, (torch.Tensor, np.ndarray)) or hasattr(features, "__getitem__"):
        return FeatureStore(x=features)
    raise TypeError(f"{what} must be a FeatureStore, got {type(features).__name__}")


def _table(graph: Any, store: FeatureStore, key: Any, kind: str) -> _Table:
    """Resolve a table key against the graph's types: a typed key ``(type, name)`` names a
    node type (``kind="node"``) or an edge type; a plain name is untyped."""
    typed = graph is not None and getattr(graph, "is_hetero", False)
    if isinstance(key, tuple):
        if not typed:
            raise ValueError(f"table key {key!r} is typed but the graph has no types")
        try:
            if kind == "node":
                index = graph.node_type_id(key[0])
            else:
                index = graph.edge_type_id(key[0])
        except ValueError as err:
            raise ValueError(f"table {key!r}: {err}") from None
        return _Table(store, key, kind, index)
    if typed and (graph.num_node_types > 1 if kind == "node" else graph.num_edge_types > 1):
        what = "(node_type, name)" if kind == "node" else "(edge_type, name)"
        raise ValueError(f"table {key!r}: on a typed graph name a {kind} table as {what}")
    return _Table(store, key, kind, 0 if typed else None)


def _check_node_rows(graph: Any, table: _Table) -> None:
    """A node table of a ``Graph`` needs a row per node of its type (node ids index it): a
    shorter one would fail mid-epoch, at the first batch that reaches past its end."""
    from gnnsys.graph import Graph

    if table.kind != "node" or not isinstance(graph, Graph):
        return  # (edge ids need not be 0..E-1; a DistGraph's tables hold their part)
    shape = getattr(table.store[table.key], "shape", None)
    if not shape:
        return
    t = 0 if table.type_index is None else table.type_index  # (an untyped graph: one type)
    need = graph.num_nodes_dict[graph.node_types[t]]
    if int(shape[0]) < need:
        of = f" of type {graph.node_types[t]!r}" if table.type_index is not None else ""
        raise ValueError(
            f"table {table.key!r} has {int(shape[0])} rows but the graph has {need} nodes{of}: "
            "a node table needs one row per node"
        )


def _setup_features(
    features: Any,
    labels: Any,
    feature_names: Optional[Sequence[Any]],
    label_keys: Sequence[Any] = (),
) -> Tuple[FeatureStore, List[Any], Optional[FeatureStore], Optional[Any]]:
    store = _as_store(features, "features")
    for key in label_keys:
        if key not in store:
            raise ValueError(f"labels holds {key!r}, not a table of the features ({store.keys()})")
    label_store: Optional[FeatureStore] = None
    label_name: Optional[Any] = None
    if isinstance(labels, (str, tuple)):
        if labels not in store:
            raise ValueError(f"labels={labels!r} names no table of the features ({store.keys()})")
        label_store, label_name = store, labels
    elif labels is not None:
        label_store, label_name = FeatureStore(y=labels), "y"
    if feature_names is None:
        skip = {label_name, *label_keys}
        names = ["x"] if "x" in store and "x" not in skip else None
        if names is None:
            names = [k for k in store.keys() if k not in skip]
    else:
        if isinstance(feature_names, str):
            feature_names = [feature_names]
        names = list(feature_names)
        for n in names:
            if n not in store:
                raise ValueError(f"feature_names holds {n!r}, not a table of {store.keys()}")
    return store, names, label_store, label_name

"""``gnnsys train --mode dist``: mini-batch training where each machine holds one part.

N machines x K processes (N = the partition's parts; rank r is on machine r // K, as torchrun
numbers ranks node by node): the ranks of machine m all serve part m (its files are memory-mapped,
so the K processes share one copy in the page cache), and the processes with the same local rank
form one exchange group of N ranks, one per part, in which they sample and fetch. The model is
DDP over every rank. Seeds are dealt exactly as ``--mode ddp`` deals them (one shared shuffle
of the training nodes, strided over ranks), so with the same seed the run trains on the batches
one machine's ``--mode ddp --nproc N*K`` trains on. A homogeneous partition trains GraphSAGE
(``DistTask``), a typed one the trainer's HeteroSAGE through its PyG loader over the part's PyG
stores (``DistHeteroTask``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Tuple

import numpy as np
import torch
import torch.distributed as dist

from gnnsys._machine import usable_cpus
from gnnsys.distributed.exchange import EXCHANGE_BACKEND, Exchange
from gnnsys.distributed.features import dist_feature_store
from gnnsys.distributed.graph import DistGraph, DistNeighborSampler
from gnnsys.trainer import HeteroTask

DIST_MODELS = ("sage",)
DIST_TIMEOUT_S = 120.0  # an exchange waits this long for a stalled machine, then fails
DIST_LANES = 2  # batches sampled ahead at once (each its own process group) while one trains


def exchange_groups(per_machine: int, world: int, timeout_s: float, lanes: int = 1) -> list:
    """This rank's Exchanges (one per lane): ranks ``k, k + K, k + 2K, ...`` (K =
    ``per_machine``) form group k, one rank per machine in machine order. Every rank creates
    every group, in the same order, as torch.distributed requires."""
    from datetime import timedelta

    mine = []
    k_mine = dist.get_rank() % per_machine
    for _ in range(lanes):
        for k in range(per_machine):
            g = dist.new_group(list(range(k, world, per_machine)), backend=EXCHANGE_BACKEND,
                               timeout=timedelta(seconds=timeout_s))  # fmt: skip
            if k == k_mine:
                mine.append(Exchange(g))
    return mine


def only_own_part_open(part_dir: Path, part: int) -> List[str]:
    """Files of other parts' folders this process has open or mapped (Linux ``/proc``); empty
    when it holds only its own part, as it must."""
    root = str(part_dir.resolve())
    own = f"part-{part:04d}"
    seen = set()
    try:
        with open("/proc/self/maps") as f:
            seen.update(line.split(maxsplit=5)[-1].strip() for line in f if root in line)
        for fd in os.listdir("/proc/self/fd"):
            try:
                seen.add(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                continue
    except OSError:  # not Linux: nothing to check
        return []
    return sorted(
        p for p in seen if p.startswith(root + "/part-") and not p.startswith(f"{root}/{own}/")
    )


class _PartTask:
    """What both ``--mode dist`` tasks share: this rank's part of ``--part-dir`` opened over
    its exchange lanes, the split's ids gathered from every part, ``--mode ddp``'s seeds, a
    sampled evaluation that every rank shares, and the isolation check. Subclasses build the
    model and define ``loader(seeds, epoch)`` and ``step(model, batch)``."""

    collective_eval = True

    def open_part(self, args: argparse.Namespace, device: torch.device, rank: int,
                  world: int) -> Dict[str, Any]:  # fmt: skip
        """Open this rank's part (collective: every rank calls it); returns partition.json."""
        from gnnsys.distributed.partition import PartitionBook, check_parts

        if args.model not in DIST_MODELS:
            raise ValueError(
                f"--mode dist trains --model {'|'.join(DIST_MODELS)}: {args.model}'s normalised "
                "edge weights need the whole graph"
            )
        self.part_dir = Path(args.part_dir)
        meta = check_parts(self.part_dir, PartitionBook.open(self.part_dir).num_parts)
        machines = int(meta["num_parts"])
        if world % machines:
            raise ValueError(
                f"{world} ranks do not split evenly over the {machines} parts of "
                f"{self.part_dir} (one machine per part, the same processes on each)"
            )
        lanes = exchange_groups(world // machines, world, DIST_TIMEOUT_S, DIST_LANES)
        self.exchange = lanes[0]
        self.graph = DistGraph.open(self.part_dir, exchange=lanes)
        part = self.graph.local
        self.meta, self.machines = meta, machines
        self.train_idx = _all_ids(part.train, self.exchange)
        self.val_idx = _all_ids(part.val, self.exchange)
        self.test_idx = _all_ids(part.test, self.exchange)
        self.args, self.device = args, device
        self.rank, self.world = rank, world
        # sampling threads: --threads, else the CPUs this process may use shared by its ranks
        local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        self.threads = args.threads or max(1, usable_cpus() // local)
        return meta

    def cache_rows(self) -> int:
        """``--halo-cache`` as a row count: 'halo' is at least one row (every rank caches or
        none, a collective), nothing on one machine."""
        cache = getattr(self.args, "halo_cache", 0)
        if cache == "halo":
            return max(1, int(self.graph.local.halo.shape[0])) if self.machines > 1 else 0
        return int(cache)

    def describe(self) -> Tuple[int, int]:
        """(nodes, edges) of the whole graph, from the partition's metadata."""
        return int(self.meta["num_nodes"]), int(self.meta["num_edges"])

    def batches(self, epoch: int, rank: int, world: int) -> Iterable[Any]:
        """This rank's batches of ``epoch``: ``--mode ddp``'s strided shard of the shuffle."""
        from gnnsys.trainer import _epoch_shard

        seeds = _epoch_shard(self.train_idx, epoch, self.args.seed, rank, world)
        if self.args.max_batches:  # the same cut on every rank: the loader runs to its end
            seeds = seeds[: self.args.max_batches * self.args.batch_size]
        return self.loader(seeds, epoch)

    @torch.no_grad()
    def evaluate_accuracy(self, model: Any) -> Dict[str, float]:
        """val_acc and test_acc over every rank's share of the val/test nodes, sampled with the
        training fanout (collective: every rank calls it). Shares are padded to one length
        with a repeated node that is not counted."""
        model.eval()
        counts = torch.zeros(4, dtype=torch.float64)  # val right, val seen, test right, seen
        for j, ids in enumerate((self.val_idx, self.test_idx)):
            share = ids[self.rank :: self.world]
            length = -(-ids.numel() // self.world)
            if length == 0:
                continue
            real = share.numel()
            pad = share[:1].repeat(length - real) if real else ids[:1].repeat(length)
            seen = 0
            for batch in self.loader(torch.cat([share, pad]), 0):
                logits, y = self.step(model, batch)
                keep = min(max(real - seen, 0), y.numel())
                counts[2 * j] += float((logits[:keep].argmax(-1).cpu() == y[:keep].cpu()).sum())
                counts[2 * j + 1] += keep
                seen += y.numel()
        model.train()
        counts = counts.to(self.device)  # the default group's device (NCCL: the GPU)
        dist.all_reduce(counts)
        c = counts.tolist()
        return {
            "val_acc": c[0] / c[1] if c[1] else float("nan"),
            "test_acc": c[2] / c[3] if c[3] else float("nan"),
        }

    def check_isolation(self) -> None:
        """Fail if this process opened another part's files (each machine holds one part)."""
        other = only_own_part_open(self.part_dir, self.graph.part)
        if other:
            raise RuntimeError(
                f"rank {self.rank} (part {self.graph.part}) has other parts' files open: "
                f"{other[:3]}"
            )


class DistTask(_PartTask):
    """The ``--mode dist`` counterpart of the trainer's ``NodeTask`` (homogeneous partitions):
    GraphSAGE (``GNNStack``) on DGL-semantics batches of a ``DistNeighborSampler``, features
    and labels from ``DistTable``s, evaluated by sampling the val/test nodes (every rank a
    share).

    Example:
        >>> task = DistTask(args, torch.device("cpu"), rank, world)
    """

    def __init__(self, args: argparse.Namespace, device: torch.device, rank: int, world: int):
        from gnnsys.nn.models import GNNStack

        meta = self.open_part(args, device, rank, world)
        if meta.get("node_types") is not None:
            raise ValueError(f"{self.part_dir} holds a typed graph: train it with DistHeteroTask")
        self.num_classes = int(meta["num_classes"])
        self.model = GNNStack("sage", int(meta["feature_dim"]), args.hidden, self.num_classes,
                              args.layers, dropout=args.dropout, norm="both",
                              init="pyg").to(device)  # fmt: skip
        self.sampler = DistNeighborSampler(self.graph, args.fanout, semantics="dgl")
        cache = self.cache_rows()
        self.features = dist_feature_store(self.graph, x=self.graph.ndata["x"],
                                           y=self.graph.ndata["y"],
                                           cache={"x": cache} if cache else None)  # fmt: skip
        self.name = f"sage x{args.layers}, part {self.graph.part} of {self.machines}"
        if cache:
            self.name += f", halo cache {cache} rows"

    def loader(self, seeds: torch.Tensor, epoch: int) -> Any:
        """One epoch's Loader over this rank's seeds: one worker per lane samples ahead while
        the model trains. Every rank iterates it to the end (``batches`` cuts the seeds to
        ``--max-batches`` instead of stopping early), so no exchange is left half-run."""
        from gnnsys.loaders import Loader

        loader = Loader(self.sampler, seeds, batch_size=self.args.batch_size, shuffle=False,
                        seed=self.args.seed, features=self.features, labels="y",
                        feature_names=["x"], prefetch=2, num_threads=self.threads,
                        device=self.device if self.device.type == "cuda" else None)  # fmt: skip
        loader.set_epoch(epoch)
        return loader

    def step(self, model: Any, batch: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) of the batch's seeds."""
        from gnnsys.nn.models import layer_adjacencies

        return model(layer_adjacencies(batch.subgraph), batch.x.float()), batch.y


class DistHeteroTask(_PartTask, HeteroTask):
    """``--mode dist`` over a typed partition: the trainer's ``HeteroTask`` (HeteroSAGE, its
    PyG ``NeighborLoader`` and step) reading this part's PyG stores (``DistGraphStore``,
    ``DistFeatureStore`` of the per-type ``x`` and ``y`` ``DistTable``s), so batches are those
    of ``--mode ddp`` on one machine; seeds are the target type's, as there.

    Example:
        >>> task = DistHeteroTask(args, torch.device("cpu"), rank, world)
    """

    def __init__(self, args: argparse.Namespace, device: torch.device, rank: int, world: int):
        from gnnsys.distributed.features import DistTable
        from gnnsys.distributed.pyg import DistFeatureStore, DistGraphStore

        meta = self.open_part(args, device, rank, world)
        g = self.graph
        target, tables = meta.get("target"), meta["tables"]
        if not g.is_hetero or target is None or "x" not in tables or "num_classes" not in meta:
            raise ValueError(
                f"{self.part_dir} is not a partition of a heterogeneous dataset (a typed graph "
                "with a target node type, x and num_classes): --mode dist trains HeteroSAGE on "
                "those"
            )
        cache = self.cache_rows()
        store = {}
        for key, table in g.ndata.items():
            if key[1] == "x" and cache:  # other parts' hot rows of every featured type
                table = DistTable(g, table.rows, "x", cache_rows=cache, ntype=key[0])
            if key[1] in ("x", "y"):
                store[key] = table
        off = np.asarray(g.node_type_offset, np.int64)
        counts = {t: int(off[i + 1] - off[i]) for i, t in enumerate(g.node_types)}
        in_dims = {t: int(np.prod(tables["x"][t]["shape"])) for t in g.node_types
                   if t in tables["x"]}  # fmt: skip
        metadata = (list(g.node_types), [tuple(e) for e in g.edge_types])
        data = (DistFeatureStore(store), DistGraphStore(g))
        self.setup(args, device, data, metadata, counts, in_dims, int(meta["num_classes"]),
                   target)  # fmt: skip
        # the split's ids are global (fused) ids; the loader takes ids within the target type
        t0 = int(off[g.node_types.index(target)])
        self.train_idx, self.val_idx, self.test_idx = (
            ids - t0 for ids in (self.train_idx, self.val_idx, self.test_idx)
        )
        self.name += f", part {g.part} of {self.machines}"
        if cache:
            self.name += f", halo cache {cache} rows"


def dist_task(args: argparse.Namespace, device: torch.device, rank: int, world: int) -> _PartTask:
    """The ``--mode dist`` task of ``--part-dir``: ``DistHeteroTask`` for a typed partition,
    ``DistTask`` otherwise.

    Example:
        >>> task = dist_task(args, torch.device("cpu"), rank, world)
    """
    from gnnsys.distributed.partition import read_meta

    typed = read_meta(args.part_dir).get("node_types") is not None
    return (DistHeteroTask if typed else DistTask)(args, device, rank, world)


def _all_ids(mine: np.ndarray, ex: Exchange) -> torch.Tensor:
    """Every part's ids (each part sends its own), sorted: the same tensor on every rank."""
    got: List[Any] = [None] * ex.size
    dist.all_gather_object(got, np.asarray(mine, np.int64), group=ex.group)
    return (
        torch.from_numpy(np.sort(np.concatenate(got))) if got else torch.zeros(0, dtype=torch.int64)
    )

"""Mini-batch and data-parallel training behind ``gnnsys train``.

One process (``--mode minibatch``) or one rank of ``torch.distributed.run`` (``--mode ddp``):
each rank trains on a disjoint strided shard of the shuffled training seeds every epoch through
the native gnnsys ``Loader``: ``NeighborSampler(semantics="dgl")`` batches, each layer's
adjacency taken straight from the kernel's per-hop CSC (``gnnsys.nn.layer_adjacencies``), the
shared model stack ``gnnsys.nn.GNNStack``. Gradients are averaged by
``DistributedDataParallel``, and rank 0 writes ``config.json``, ``metrics.jsonl``,
``curves.png`` and atomic checkpoints to ``--out``. Evaluation is layer-wise full-neighbour
inference in batches (every node's exact logits, one layer at a time).

Heterogeneous datasets (``synthetic:tiny-mag|mini-mag|mag``, ``ogbn-mag``) train
``gnnsys.models.HeteroSAGE`` (PyG ``to_hetero`` GraphSAGE) on the gnnsys PyG
``NeighborLoader`` over ``HeteroData`` (in ``--mode ddp`` each rank a strided shard of the
target type's training nodes, as above), evaluated full batch over the whole graph, with the
same outputs.

Crash safety: a checkpoint (written atomically) carries the metrics rows it covers and is
written before its epoch's row appears in ``metrics.jsonl``, so ``--resume`` after a kill at
any moment continues from the last checkpoint with the rows it had.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from gnnsys.checkpoint import (
    atomic_write_bytes,
    atomic_write_with,
    json_finite,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)

if TYPE_CHECKING:
    from gnnsys.datasets import Dataset, HeteroDataset

# Config keys that must match for --resume to continue a run.
RESUME_KEYS = (
    "dataset", "model", "layers", "hidden", "fanout", "sampler", "seed", "feature_dtype",
    # the optimizer's settings: a resumed optimizer state would keep the old ones (mini-batch)
    # or take the new ones (full-graph) without a word; either way the run is not the one asked
    "lr", "weight_decay", "layer_weight_decay", "lr_schedule",
)  # fmt: skip
# runs made before the key existed
_RESUME_DEFAULTS = {"sampler": "neighbor", "lr_schedule": "constant", "mode": "minibatch"}
# Modes whose runs keep one checkpoint.pt (the others: one file per rank under checkpoint/).
_SINGLE_CHECKPOINT_MODES = ("minibatch", "ddp", "dist")
# A full-graph run's layout: its checkpoint holds one file per rank of this layout.
_LAYOUT_KEYS = ("mode", "nproc", "chunks", "pipe_stages")
EVAL_BATCH = 4096
CHECKPOINT_KEYS = ("model", "optimizer", "rng", "epoch")


class TrainError(RuntimeError):
    """A run that cannot go on (bad checkpoint, missing dataset); the message says why."""


# ---------------------------------------------------------------------- data
def load_dataset(args: argparse.Namespace) -> Union[Dataset, HeteroDataset]:
    """The Dataset named by ``--dataset``: ``synthetic:NAME`` (a ``HeteroDataset`` for the
    ``*-mag`` names), an offline OGB folder (``ogbn-mag``: a ``HeteroDataset``),
    ``folder:DIR`` (the folder format ``gnnsys data`` writes) or ``pyg:FILE`` (a
    ``torch.save``d PyG ``Data``).

    Folders and files without a split get a seeded random 60/20/20 split of the labelled nodes
    (seed ``--seed``); ``meta["split"]`` says which split was used. A missing or malformed
    dataset raises ``TrainError`` naming the file.
    """
    from gnnsys import datasets

    spec = args.dataset
    if spec.startswith("synthetic:"):
        return datasets.synthetic(spec.split(":", 1)[1], seed=args.seed)
    try:  # files the user gave: what is wrong with them is a message, not a traceback
        if spec.startswith("folder:"):
            return datasets.load_folder(spec.split(":", 1)[1], split_seed=args.seed)
        if spec.startswith("pyg:"):
            return load_pyg_file(spec.split(":", 1)[1], split_seed=args.seed)
        order = getattr(args, "ogb_node_order", None)  # train's flag; other commands: default
        return datasets.ogb(spec, args.root, node_order=order)
    except (OSError, ValueError, TypeError, IndexError, KeyError) as err:
        raise TrainError(f"--dataset {spec}: {err}") from None


def check_training_split(ds: Union[Dataset, HeteroDataset], spec: str) -> None:
    """A dataset to train on has training nodes, and each has a label: an empty split trained
    nothing and reported success; an unlabelled (-1) training node failed mid-epoch inside
    the loss. Raises ``TrainError`` naming the dataset.

    Example:
        >>> check_training_split(gnnsys.datasets.synthetic("tiny"), "synthetic:tiny")
    """
    train, y = ds.train_idx, ds.y
    if train.numel() == 0:
        raise TrainError(f"--dataset {spec}: the training split is empty (train_idx holds no ids)")
    unlabelled = train[y[train] < 0]
    if unlabelled.numel():
        raise TrainError(
            f"--dataset {spec}: {unlabelled.numel()} training node(s) have no label (y = -1), "
            f"e.g. node {int(unlabelled[0])}: drop them from train_idx"
        )


def load_pyg_file(path: str, *, split_seed: Optional[int] = None) -> Dataset:
    """A Dataset from a ``torch.save``d PyG ``Data`` (or its ``to_dict()``) holding x, y and
    edge_index, with ``train_mask``/``val_mask``/``test_mask`` when present.

    The file is a pickle, loaded with ``weights_only=False`` (a ``Data`` object needs it):
    only point this at files you trust.

    Example:
        >>> torch.save(data, "graph.pt"); ds = load_pyg_file("graph.pt", split_seed=0)
    """
    from gnnsys.checkpoint import TORCH_LOAD_ERRORS, load_error_text
    from gnnsys.datasets.dataset import Dataset

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"no file at {str(file)!r} (expected a torch.save'd PyG Data)")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=False)
    except TORCH_LOAD_ERRORS as err:
        raise ValueError(
            f"{file} is not a readable torch.save file ({load_error_text(err)})"
        ) from None
    try:
        return Dataset.from_pyg(obj, name=file.stem, split_seed=split_seed)
    except (ValueError, TypeError, KeyError) as err:
        raise type(err)(f"{file}: {err}") from None


def _features(ds, args: argparse.Namespace, device: torch.device) -> Any:
    x = ds.x
    dtype = torch.bfloat16 if args.feature_dtype == "bfloat16" else None
    if args.features == "unified":
        import gnnsys
        from gnnsys.datasets.outofcore import parse_bytes
        from gnnsys.graph_io import advise_random

        size = getattr(args, "feature_cache", "0")
        cache = parse_bytes(size) if size != "0" else None
        where = "cpu" if device.type != "cuda" else device
        order = ds.graph if cache else None
        x_file = ds.meta.get("x_file")
        if x_file is None:
            return gnnsys.unified(x, storage_dtype=dtype, cache=cache, cache_order=order,
                                  cache_device=where)  # fmt: skip
        if dtype is not None:
            raise TrainError(f"--feature-dtype {args.feature_dtype}: the features are mapped "
                             f"from {x_file} and keep its dtype ({x.dtype})")  # fmt: skip
        table = gnnsys.unified.from_file(x_file, cache=cache, cache_order=order,
                                         cache_device=where)  # fmt: skip
        # rows are read at random; a hot-first folder's leading rows ahead (see advise_random)
        advise_random(table._rows_np, hot_first=ds.meta.get("node_order") == "degree")
        return table
    if dtype is not None:
        x = x.to(dtype)
    if args.features == "gpu":
        x = x.to(device)
    return x


# ---------------------------------------------------------------------- distributed
def _dist_init(args: argparse.Namespace) -> tuple:
    if "RANK" not in os.environ:
        return 0, 1
    from datetime import timedelta

    import torch.distributed as dist

    backend = "nccl" if args.device == "cuda" else "gloo"
    kwargs: Dict[str, Any] = {}
    if backend == "nccl":
        from gnnsys._checks import nccl_device

        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", 1)))
        device = nccl_device(int(os.environ.get("LOCAL_RANK", 0)), local_world)
        torch.cuda.set_device(device)
        kwargs["device_id"] = device  # the communicator binds to this GPU at init
    dist.init_process_group(backend, timeout=timedelta(seconds=120), **kwargs)
    return dist.get_rank(), dist.get_world_size()


def _epoch_shard(train_idx: torch.Tensor, epoch: int, seed: int, rank: int, world: int):
    """This rank's seeds for ``epoch``: one shared shuffle, dealt out strided (rank r takes
    ``perm[r::world]``) and cut to equal lengths.

    Striding makes the union of the ranks' k-th batches (``B`` seeds each) exactly the k-th
    batch of one process with batch size ``world * B``: with deterministic sampling and mean
    losses, DDP's averaged gradients are then the one-process gradients.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = train_idx[torch.randperm(train_idx.numel(), generator=g)]
    per_rank = perm.numel() // world
    return perm[: per_rank * world][rank::world]


# ---------------------------------------------------------------------- what a run trains
class NodeTask:
    """A homogeneous run: ``GNNStack`` on DGL-semantics batches of the native ``Loader``.

    Each batch's layer adjacencies come straight from the kernel's per-hop CSC
    (``layer_adjacencies``); GCN and GCNII read the weights ``prepare_graph`` normalised on the
    whole graph, rescaled per destination by ``degree / sampled`` (exact under fanout -1);
    GAT reads the graph with self loops. Weights start as PyG's layers start (``init="pyg"``).

    Example:
        >>> task = NodeTask(args, ds, torch.device("cpu"))
        >>> logits, target = task.step(task.model, next(iter(task.batches(1, 0, 1))))
    """

    def __init__(self, args: argparse.Namespace, ds: Any, device: torch.device) -> None:
        from gnnsys.features import FeatureStore
        from gnnsys.loaders import LaborSampler, NeighborSampler
        from gnnsys.nn.models import GNNStack

        norm = "none" if args.model in ("gcn", "gcnii") else "both"
        # PyG's initialisation (the trainer trained PyG layers before): DGL's starts with far
        # larger logits on unnormalised features and ended 1 point lower on the demo (see
        # GNNStack's init).
        self.model = GNNStack(args.model, ds.x.shape[1], args.hidden, ds.num_classes, args.layers,
                              dropout=args.dropout, norm=norm, init="pyg").to(device)  # fmt: skip
        self.name = f"{args.model} x{args.layers}"
        self.graph = self.model.prepare_graph(ds.graph)
        weighted = self.graph.edge_weight is not None and norm == "none"
        self.edge_weight = self.graph.edge_weight if weighted else None
        self._weight_dev = self.edge_weight.to(device) if weighted else None
        self._degrees_dev = self.graph.in_degrees().to(device) if weighted else None
        make = LaborSampler if getattr(args, "sampler", "neighbor") == "labor" else NeighborSampler
        self.sampler = make(self.graph, args.fanout, semantics="dgl")
        self.x = _features(ds, args, device)
        self.features = FeatureStore(x=self.x)
        self.y, self.train_idx = ds.y, ds.train_idx
        self.val_idx, self.test_idx = ds.val_idx, ds.test_idx
        self.args, self.device = args, device

    def loader(self, seeds: torch.Tensor, epoch: int) -> Any:
        """The Loader of one epoch's seeds (in the given order), features gathered for the
        device: a unified table headed for CUDA is gathered there, zero-copy."""
        from gnnsys.loaders import Loader

        loader = Loader(
            self.sampler,
            seeds,
            batch_size=self.args.batch_size,
            shuffle=False,
            seed=self.args.seed,
            features=self.features,
            labels=self.y,
            device=self.device if self.device.type == "cuda" else None,
            num_threads=self.args.threads,
        )
        loader.set_epoch(epoch)
        return loader

    def batches(self, epoch: int, rank: int, world: int) -> Iterable[Any]:
        """This rank's batches of ``epoch`` (its strided shard of the shuffled seeds)."""
        return self.loader(_epoch_shard(self.train_idx, epoch, self.args.seed, rank, world), epoch)

    def step(self, model: Any, batch: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) of the batch's seeds."""
        from gnnsys.nn.models import layer_adjacencies

        adjs = layer_adjacencies(
            batch.subgraph, edge_weight=self._weight_dev, degrees=self._degrees_dev
        )
        logits = model(adjs, batch.x.float())
        return logits, batch.y

    def evaluate(self, model: Any) -> Any:
        """Logits of every node (layer-wise, full neighbourhoods); with ``--eval sampled``
        those of the val and test nodes only, sampled with the training fanout."""
        if getattr(self.args, "eval", "full") == "sampled":
            return self._sampled_logits(model)
        return layerwise_inference(model, self.graph, self.x, self.device, self.args.threads,
                                   edge_weight=self.edge_weight)  # fmt: skip

    @torch.no_grad()
    def _sampled_logits(self, model: Any) -> PartialLogits:
        # Seeds in id order, so the rows come back sorted for PartialLogits' lookup. The
        # loader's epoch 0 is never a training epoch (those count from 1): a fixed sample.
        ids = torch.cat([self.val_idx, self.test_idx]).unique()
        model.eval()
        out = [self.step(model, batch)[0].float().cpu() for batch in self.loader(ids, 0)]
        model.train()
        return PartialLogits(ids, torch.cat(out) if out else torch.zeros(0, 1))


class HeteroTask:
    """A heterogeneous run: ``HeteroSAGE`` on the gnnsys PyG ``NeighborLoader`` over
    ``HeteroData`` (the fanout on every edge type, seeds the target type's training nodes,
    sharded over DDP ranks as ``NodeTask``'s), evaluated full batch over the whole graph.
    ``--mode dist`` runs the same loader and step over a typed partition's PyG stores
    (``gnnsys.distributed.task.DistHeteroTask``).

    Example:
        >>> task = HeteroTask(args, gnnsys.datasets.synthetic("tiny-mag"), torch.device("cpu"))
    """

    # Output layers of the non-target types get no gradient: DDP must not wait for them
    # (``step`` asks the model for the target's logits alone, so DDP finds them unused).
    ddp_options: Dict[str, Any] = {"find_unused_parameters": True}

    def __init__(self, args: argparse.Namespace, ds: Any, device: torch.device) -> None:
        data = ds.to_pyg()
        if args.feature_dtype == "bfloat16":  # stored in bf16, upcast by the model
            for t in ds.x_dict:
                data[t].x = data[t].x.to(torch.bfloat16)
        in_dims = {t: int(ds.x_dict[t].shape[1]) for t in data.node_types if t in ds.x_dict}
        self.setup(args, device, data, data.metadata(), ds.num_nodes_dict, in_dims,
                   ds.num_classes, ds.target)  # fmt: skip
        self.y, self.train_idx = ds.y, ds.train_idx
        self.val_idx, self.test_idx = ds.val_idx, ds.test_idx
        self.threads = args.threads or 0
        self._whole: Optional[Tuple[Any, Any, Any]] = None

    def setup(
        self,
        args: argparse.Namespace,
        device: torch.device,
        data: Any,
        metadata: Tuple[List[str], List[Tuple[str, str, str]]],
        num_nodes_dict: Dict[str, int],
        in_dims: Dict[str, int],
        num_classes: int,
        target: str,
    ) -> None:
        """The model and what ``loader`` reads: ``data`` is a ``HeteroData`` or a
        ``(FeatureStore, GraphStore)`` pair; ``in_dims`` in node type order (the model's
        parameters are created in that order, so every source of one graph builds the same)."""
        from gnnsys.models import HeteroSAGE

        self.data, self.target = data, target
        self.model = HeteroSAGE(metadata, num_nodes_dict, in_dims, args.hidden, num_classes,
                                num_layers=args.layers, dropout=args.dropout).to(device)  # fmt: skip
        self.name = f"HeteroSAGE x{args.layers} (to_hetero GraphSAGE)"
        self.args, self.device = args, device

    def loader(self, seeds: torch.Tensor, epoch: int) -> Any:
        """The ``NeighborLoader`` of one epoch's seeds (target-type ids, in the given order)."""
        from gnnsys.loaders.pyg import NeighborLoader

        loader = NeighborLoader(
            self.data,
            list(self.args.fanout),
            input_nodes=(self.target, seeds),
            batch_size=self.args.batch_size,
            shuffle=False,
            seed=self.args.seed,
            num_workers=self.threads,
            device=self.device if self.device.type == "cuda" else None,
        )
        loader.set_epoch(epoch)
        return loader

    def batches(self, epoch: int, rank: int, world: int) -> Iterable[Any]:
        """This rank's batches of ``epoch`` (its strided shard of the shuffled seeds)."""
        return self.loader(_epoch_shard(self.train_idx, epoch, self.args.seed, rank, world), epoch)

    def step(self, model: Any, batch: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) of the batch's target seeds."""
        t = self.target
        bs = batch[t].batch_size
        logits = model(batch.x_dict, batch.edge_index_dict, batch.n_id_dict, out_type=t)[t][:bs]
        return logits, batch[t].y[:bs]

    @torch.no_grad()
    def evaluate(self, model: Any) -> torch.Tensor:
        """Logits of every target node: one full-batch forward over the whole graph."""
        model.eval()
        if self._whole is None:
            d, dev = self.data, self.device
            self._whole = (
                {t: x.to(dev) for t, x in d.x_dict.items()},
                {et: ei.to(dev) for et, ei in d.edge_index_dict.items()},
                {t: torch.arange(d[t].num_nodes, device=dev) for t in d.node_types},
            )
        return model(*self._whole)[self.target].float().cpu()


def make_task(args: argparse.Namespace, ds: Any, device: torch.device) -> Any:
    """``HeteroTask`` for a ``HeteroDataset``, ``NodeTask`` otherwise."""
    from gnnsys.datasets.hetero import HeteroDataset

    if isinstance(ds, HeteroDataset):
        return HeteroTask(args, ds, device)
    return NodeTask(args, ds, device)


# ---------------------------------------------------------------------- eval
@torch.no_grad()
def layerwise_inference(
    model: Any,
    graph: Any,
    x: Any,
    device: torch.device,
    threads: Optional[int] = None,
    *,
    edge_weight: Optional[torch.Tensor] = None,
    batch_size: int = EVAL_BATCH,
) -> torch.Tensor:
    """Logits of every node of ``graph``, one layer at a time over full neighbourhoods, in
    batches of ``batch_size`` destinations (never one whole-graph forward that may not fit).

    ``graph`` is what the layers read (``model.prepare_graph(g)``); ``edge_weight`` its
    per-edge weights (GCN/GCNII with ``norm="none"``). Each batch's block is the kernel's CSC of
    a one-hop full-neighbour sample; layer outputs are kept on the CPU.

    Example:
        >>> logits = layerwise_inference(model, model.prepare_graph(g), x, torch.device("cpu"))
    """
    from gnnsys.loaders import FullNeighborSampler, Loader
    from gnnsys.nn.models import Adjacency

    core = model.module if hasattr(model, "module") else model
    core.eval()
    n = graph.num_nodes
    loader = Loader(FullNeighborSampler(graph, 1, semantics="dgl"), n, batch_size=batch_size,
                    shuffle=False, num_threads=threads)  # fmt: skip

    def batched(fn, h: Any) -> torch.Tensor:
        out: Optional[torch.Tensor] = None
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            o = fn(_rows(h, torch.arange(lo, hi), device)).cpu()
            if out is None:
                out = torch.empty(n, o.shape[1], dtype=o.dtype)
            out[lo:hi] = o
        assert out is not None
        return out

    h = batched(core.embed, x)
    h0 = h if core.uses_h0 else None
    for i in range(core.num_layers):
        out: Optional[torch.Tensor] = None
        for batch in loader:
            sub = batch.subgraph
            blk = sub.block(1)
            nodes, nd = sub.nodes, blk.num_dst
            w = edge_weight[blk.edge_ids].to(device) if edge_weight is not None else None
            adj = Adjacency(blk.indptr.to(device), blk.indices.to(device), nodes.numel(), nd, w)
            dst0 = h0[nodes[:nd]].to(device) if h0 is not None else None
            o = core.layer(i, adj, h[nodes].to(device), dst0).cpu()
            if out is None:
                out = torch.empty(n, o.shape[1], dtype=o.dtype)
            out[nodes[:nd]] = o
        assert out is not None
        h = out
    return batched(core.head, h)


def _rows(x: Any, ids: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x[ids.to(x.device) if isinstance(x, torch.Tensor) else ids].to(device).float()


class PartialLogits:
    """Logits of some nodes (``ids``, sorted), indexed by global node ids like a full
    [N, C] tensor: what ``--eval sampled`` returns instead of every node's row."""

    def __init__(self, ids: torch.Tensor, logits: torch.Tensor) -> None:
        self.ids, self.logits = ids, logits

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.searchsorted(self.ids, idx)
        if idx.numel() and (
            int(pos.max()) >= self.ids.numel() or not bool((self.ids[pos] == idx).all())
        ):
            raise KeyError("asked for the logits of a node that was not evaluated")
        return self.logits[pos]


def _accuracy(logits: Any, y: torch.Tensor, idx: torch.Tensor, dataset: str) -> float:
    """Accuracy on ``idx``; through ``ogb.nodeproppred.Evaluator`` for OGB datasets."""
    if idx.numel() == 0:
        return float("nan")
    pred, true = logits[idx].argmax(-1), y[idx]
    if dataset.startswith("ogbn-"):
        try:
            from ogb.nodeproppred import Evaluator
        except ImportError:
            pass
        else:
            result = Evaluator(dataset).eval(
                {"y_true": true.view(-1, 1).numpy(), "y_pred": pred.view(-1, 1).numpy()}
            )
            return float(result["acc"])
    return float((pred == true).float().mean())


# ---------------------------------------------------------------------- outputs
def _peak_memory_mb(device: torch.device) -> float:
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mb = rss_kb / 1024
    if device.type == "cuda":
        mb = max(mb, torch.cuda.max_memory_allocated(device) / 2**20)
    return round(mb, 1)


def read_metrics(path: Path) -> List[Dict[str, Any]]:
    """Parse ``metrics.jsonl`` (a torn last line from a crash is dropped)."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def write_metrics(path: Path, rows: List[Dict[str, Any]]) -> None:
    """``metrics.jsonl``, strict JSON: a NaN (an accuracy over an empty split) is written null."""
    text = "".join(json.dumps(json_finite(r), allow_nan=False) + "\n" for r in rows)
    atomic_write_bytes(path, text.encode())


def plot_curves(path: Path, rows: List[Dict[str, Any]]) -> None:
    """``curves.png``: loss and accuracies per epoch."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, [r["loss"] for r in rows], marker="o")
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    for key in ("train_acc", "val_acc", "test_acc"):
        pts = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            b.plot(*zip(*pts), marker="o", label=key)
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    b.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _config(args: argparse.Namespace) -> Dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in ("fn", "parser", "_worker")}


def _check_resume(
    old: Dict[str, Any], config: Dict[str, Any], label: str = "checkpoint", source: str = "",
    keys: Sequence[str] = RESUME_KEYS,
) -> None:  # fmt: skip
    diff = [k for k in keys if old.get(k, _RESUME_DEFAULTS.get(k)) != config.get(k)]
    if diff:
        detail = ", ".join(f"{k}: {label} {old.get(k)!r} vs now {config.get(k)!r}" for k in diff)
        raise TrainError(f"--resume: the {source or label} was made with another config ({detail})")


def _resume_state(
    out: Path, config: Dict[str, Any], keys: Sequence[str] = RESUME_KEYS
) -> Optional[Dict[str, Any]]:
    """The checkpoint.pt to continue from, or None when ``out`` has none (a run killed before
    its first checkpoint, or a full-graph run, whose checkpoints are per rank): then the
    previous run's config.json must agree with this one on ``keys``."""
    _check_resume_mode(out, config)
    path = out / "checkpoint.pt"
    if path.exists() and not path.is_file():  # would start over and rewrite metrics.jsonl
        raise TrainError(
            f"--resume: {path} is not a file; move it away, then resume or start again"
        )
    if not path.is_file():
        old = out / "config.json"
        if old.is_file():
            try:
                previous = json.loads(old.read_text())
            except ValueError:
                previous = None
            if isinstance(previous, dict):
                _check_resume(previous, config, "config.json", f"run in {out}", keys)
        return None
    ckpt = load_checkpoint(path)
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise TrainError(
            f"--resume: {path} lacks {', '.join(missing)} (not written by gnnsys train); "
            "delete it or start without --resume"
        )
    _check_checkpoint_fields(ckpt, path)
    _check_resume(ckpt.get("config", {}), config, keys=keys)
    return ckpt


def _check_epochs_left(done: int, epochs: int, out: Path) -> None:
    """A --resume whose --epochs the checkpoint has already reached has nothing to train."""
    if done >= epochs:
        raise TrainError(
            f"--resume: the checkpoint in {out} is at epoch {done} already; pass --epochs "
            f"above {done} to train further"
        )


def _check_rank_files(folder: Path, epoch: int, world: int) -> None:
    """Every rank's file of the committed ``epoch`` is there and a complete torch.save zip (its
    central directory at the end is read, not the data): a deleted, emptied, truncated or
    overwritten file is one line naming it, before any rank starts."""
    import zipfile

    from gnnsys.pipeline_parallel.checkpoint import rank_file

    for rank in range(world):
        path = rank_file(folder, epoch, rank)
        if not path.is_file():
            raise TrainError(
                f"--resume: {path} is missing (the checkpoint of epoch {epoch} has one file per "
                "rank); restore it or start again without --resume"
            )
        if not zipfile.is_zipfile(path):
            raise TrainError(
                f"--resume: {path} is damaged (empty, truncated or not a checkpoint); restore "
                "it or start again without --resume"
            )


def _check_resume_mode(out: Path, config: Dict[str, Any]) -> None:
    """A --resume in a mode that keeps its checkpoints elsewhere than the run in ``out`` did
    (one checkpoint.pt vs one file per rank) would find none and start over, replacing that
    run's metrics: a ``TrainError`` naming the run's mode instead."""
    old = out / "config.json"
    try:
        previous = json.loads(old.read_text()) if old.is_file() else None
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict):
        return
    was = previous.get("mode", _RESUME_DEFAULTS["mode"])
    now = config.get("mode")
    if (was in _SINGLE_CHECKPOINT_MODES) != (now in _SINGLE_CHECKPOINT_MODES):
        raise TrainError(
            f"--resume: the run in {out} is a --mode {was} run; resume it with --mode {was} "
            f"(or start a new run in another --out)"
        )


def _forget_checkpoints(out: Path) -> None:
    """A fresh run (no --resume) into ``out``: remove an earlier run's checkpoints there
    (``checkpoint.pt`` of mini-batch/DDP runs; ``checkpoint/`` manifest and rank files of
    full-graph runs), as its config.json and metrics.jsonl are replaced: a later --resume must
    not continue the earlier run's weights under this run's rows. Says so when it removes one.
    The manifest goes first: a kill midway leaves no checkpoint, never a partial one."""
    from gnnsys.pipeline_parallel.checkpoint import MANIFEST, RANK_FILES

    removed = []
    single = out / "checkpoint.pt"
    if single.is_file():
        single.unlink()
        removed.append(str(single))
    folder = out / "checkpoint"
    if folder.is_dir():
        manifest = folder / MANIFEST
        if manifest.is_file():
            manifest.unlink()
            removed.append(str(manifest))
        for path in folder.glob(RANK_FILES):
            path.unlink(missing_ok=True)
    if removed:
        print(f"starting afresh: removed the earlier run's checkpoint ({', '.join(removed)}); "
              "--resume continues a run", flush=True)  # fmt: skip


def _check_checkpoint_fields(ckpt: Dict[str, Any], path: Path) -> None:
    """The fields a resume reads have the types ``gnnsys train`` writes (a hand-edited or
    foreign file is a ``TrainError`` naming the field, not a traceback mid-resume)."""
    wanted = {
        "model": (dict, "a state dict"),
        "optimizer": (dict, "an optimizer state dict"),
        "rng": (dict, "a dict of RNG states"),
        "config": (dict, "a dict"),
    }
    problems = [
        f"{key} is a {type(ckpt[key]).__name__}, not {what}"
        for key, (kind, what) in wanted.items()
        if key in ckpt and not isinstance(ckpt[key], kind)
    ]
    epoch = ckpt.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        problems.append(f"epoch is {epoch!r}, not an int >= 1")
    rows = ckpt.get("rows")
    if rows is not None and not (
        isinstance(rows, list)
        and all(isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in rows)
    ):
        problems.append("rows is not a list of metrics rows (dicts with an int epoch)")
    rng = ckpt.get("rng")
    if isinstance(rng, dict):
        missing = [k for k in ("python", "numpy", "torch") if k not in rng]
        if missing:
            problems.append(f"rng lacks {', '.join(missing)}")
    if problems:
        raise TrainError(
            f"--resume: {path} is not a checkpoint gnnsys train wrote ({'; '.join(problems)}); "
            "delete it or start without --resume"
        )


# ---------------------------------------------------------------------- train
def train(
    args: argparse.Namespace, dataset: Optional[Union[Dataset, HeteroDataset]] = None
) -> List[Dict[str, Any]]:
    """Run ``gnnsys train``; returns the metrics rows (rank 0 also writes them to --out).

    ``dataset`` replaces loading ``--dataset`` (the benchmark scripts check it first).
    """
    out = Path(args.out)
    config = _config(args)
    # A --resume that cannot go on (corrupt checkpoint, other config) fails before the data loads.
    ckpt = _resume_state(out, config) if args.resume else None
    if ckpt is not None:
        _check_epochs_left(ckpt["epoch"], args.epochs, out)

    from gnnsys.pipeline_parallel.config import cosine_lr

    rank, world = _dist_init(args)
    device = torch.device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    is_main = rank == 0

    if args.mode == "dist":  # each rank reads its own part, never the whole dataset
        from gnnsys.distributed.task import dist_task

        ds = None
        task: Any = dist_task(args, device, rank, world)
    else:
        ds = load_dataset(args) if dataset is None else dataset
        check_training_split(ds, args.dataset)
        task = make_task(args, ds, device)
    model = task.model
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    start_epoch, rows = 1, []
    resume_note = None
    if args.resume:
        if ckpt is None:
            resume_note = f"--resume: no checkpoint in {out} yet, starting again from epoch 1"
        else:
            _load_state(model, opt, ckpt, out / "checkpoint.pt")
            start_epoch = ckpt["epoch"] + 1
            rows = ckpt.get("rows")
            if rows is None:  # a checkpoint from before rows were kept in it
                rows = [r for r in read_metrics(out / "metrics.jsonl") if r["epoch"] < start_epoch]
            resume_note = (
                f"--resume: continuing from {out / 'checkpoint.pt'} (epoch {ckpt['epoch']})"
            )
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, **getattr(task, "ddp_options", {}))
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not args.resume:
            _forget_checkpoints(out)
        atomic_write_bytes(out / "config.json", json.dumps(config, indent=2).encode())
        write_metrics(out / "metrics.jsonl", rows)
        if resume_note:
            print(resume_note, flush=True)
        _print_header(args, ds, world, start_epoch, task.name, task)

    for epoch in range(start_epoch, args.epochs + 1):
        if args.lr_schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = cosine_lr(args.lr, epoch - 1, args.epochs)
        batches = task.batches(epoch, rank, world)
        row = _train_epoch(model, opt, batches, task.step, device, epoch, args, is_main, world)
        row["lr"] = opt.param_groups[0]["lr"]
        if epoch % args.eval_every == 0 or epoch == args.epochs:
            if getattr(task, "collective_eval", False):  # every rank evaluates a share
                row.update(task.evaluate_accuracy(model.module if world > 1 else model))
            elif is_main:
                logits = task.evaluate(model.module if world > 1 else model)
                row["val_acc"] = _accuracy(logits, task.y, task.val_idx, args.dataset)
                row["test_acc"] = _accuracy(logits, task.y, task.test_idx, args.dataset)
        row["peak_memory_mb"] = _peak_memory_mb(device)
        if world > 1:
            torch.distributed.barrier()
        if is_main:
            # The checkpoint (with the rows it covers) first, then the row: a row is never
            # visible in metrics.jsonl before a checkpoint that a --resume can continue from.
            if args.checkpoint_every and (
                epoch % args.checkpoint_every == 0 or epoch == args.epochs
            ):
                core = model.module if world > 1 else model
                save_checkpoint(
                    out / "checkpoint.pt",
                    {
                        "model": core.state_dict(),
                        "optimizer": opt.state_dict(),
                        "epoch": epoch,
                        "config": config,
                        "rows": [*rows, row],
                    },
                )
            rows.append(row)
            write_metrics(out / "metrics.jsonl", rows)
            print(_format_row(row), flush=True)
    if hasattr(task, "check_isolation"):
        task.check_isolation()  # --mode dist: this rank never opened another part's files
    if is_main and rows:
        plot_curves(out / "curves.png", rows)
        print_summary(rows)
        print_outputs(out)
    if world > 1:
        _release_ddp()
        del model  # the Reducer frees the process group now, with gloo's thread idle
    return rows


def _load_state(model: Any, opt: Any, ckpt: Dict[str, Any], path: Path) -> None:
    """Restore the model, optimizer and RNG states of a checkpoint; one of another model layout
    (another gnnsys version) is a ``TrainError`` naming the file, not a traceback."""
    try:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        restore_rng(ckpt["rng"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        detail = (str(err).splitlines() or [""])[0]
        raise TrainError(
            f"--resume: {path} holds a state this version cannot load ({detail}); delete it or "
            "start without --resume"
        ) from None


def _print_header(
    args: argparse.Namespace, ds: Any, world: int, start_epoch: int, model_name: str, task: Any
) -> None:
    if ds is None:  # --mode dist: the partition's metadata
        nodes, edges = task.describe()
        what = f"{args.part_dir} ({nodes} nodes, {edges} edges)"
    else:
        what = f"{args.dataset} ({ds.graph.num_nodes} nodes, {ds.graph.num_edges} edges)"
    print(
        f"gnnsys train: {what}, {model_name}, world {world}, epochs {start_epoch}..{args.epochs}",
        flush=True,
    )
    holder = task if ds is None else ds  # (--mode dist: the split's ids from every part)
    empty = [(name, key) for name, attr, key in (("validation", "val_idx", "val_acc"),
                                                 ("test", "test_idx", "test_acc"))
             if getattr(holder, attr, None) is not None and getattr(holder, attr).numel() == 0]  # fmt: skip
    if empty:
        print(f"the dataset has no {' or '.join(n for n, _ in empty)} nodes: "
              f"{' and '.join(k for _, k in empty)} print as nan (null in metrics.jsonl)",
              flush=True)  # fmt: skip
    if ds is None:
        if args.eval == "full":
            print("--mode dist evaluates by sampling the val/test nodes with the training fanout "
                  "(a full layer-wise pass needs the whole graph on one machine)", flush=True)  # fmt: skip
        return
    split = ds.meta.get("split") if isinstance(ds.meta, dict) else None
    if isinstance(split, str) and split.startswith("random"):
        print(
            f"split: {split} (train/val/test {ds.train_idx.numel()}/{ds.val_idx.numel()}/"
            f"{ds.test_idx.numel()} nodes): the dataset has none of its own",
            flush=True,
        )


def _format_row(row: Dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in row.items()
        if not isinstance(v, (dict, list))  # bytes, breakdown, steps: in metrics.jsonl
    )


def _save_final_model(
    path: Path, out: Dict[str, Any], model_cfg: Any, ds: Any, args: argparse.Namespace
) -> None:
    """Write the trained full-graph model: the union of the ranks' parameters (each owned by
    one stage; one group of a hybrid stage) as the state dict of the model every rank built,
    with what ``load_model`` needs to rebuild it. Atomic, like every file of a run."""
    from dataclasses import asdict

    from gnnsys.pipeline_parallel.model import build_model

    built = build_model(model_cfg, ds.x.shape[1], ds.num_classes, args.seed)
    reference = built.state_dict()
    state: Dict[str, torch.Tensor] = {}
    for rank in out.get("ranks", []):
        state.update(rank.get("state") or {})
    missing = [k for k, _ in built.named_parameters() if k not in state]
    if missing:  # a rank that did not report its parameters: say so, write nothing false
        print(f"model.pt not written: no rank reported {', '.join(missing[:3])}", flush=True)
        return
    full = {k: state.get(k, v) for k, v in reference.items()}  # buffers as built
    blob = {
        "model": full,
        "model_config": asdict(model_cfg),
        "in_dim": int(ds.x.shape[1]),
        "num_classes": int(ds.num_classes),
        "epoch": int(args.epochs),
        "config": _config(args),
    }
    atomic_write_with(path, lambda f: torch.save(blob, f))


def load_model(path: Union[str, Path]) -> Any:
    """The trained model of a ``--mode pipe|hybrid|graph`` run (its ``model.pt``), as one
    ``GNNStack`` in eval mode; ``model(model.prepare_graph(graph), x)`` gives every node's
    logits.

    Example:
        >>> model = load_model("runs/latest/model.pt")
        >>> logits = model(model.prepare_graph(ds.graph), ds.x)
    """
    from gnnsys.pipeline_parallel.model import build_model

    blob = load_checkpoint(path)
    keys = ("model", "model_config", "in_dim", "num_classes")
    if any(k not in blob for k in keys):
        raise TrainError(f"{path} is not a model.pt of gnnsys train (it lacks {', '.join(keys)})")
    model = build_model(blob["model_config"], blob["in_dim"], blob["num_classes"], 0)
    try:
        model.load_state_dict(blob["model"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        detail = (str(err).splitlines() or [""])[0]
        raise TrainError(f"{path} holds a model this version cannot load ({detail})") from None
    return model.eval()


def print_outputs(out: Path) -> None:
    """Say where the run's files are (the last lines of every run)."""
    names = ("config.json", "metrics.jsonl", "curves.png", "checkpoint.pt", "model.pt")
    present = [n for n in names if (out / n).is_file()]
    if (out / "checkpoint" / "checkpoint.json").is_file():  # a full-graph run's, per rank
        present.append("checkpoint/")
    print(f"outputs in {out.resolve()}: {', '.join(present)}", flush=True)


def _release_ddp() -> None:
    """Tear down DDP without the gloo teardown deadlock of torch (pytorch/pytorch#56297).

    The Reducer's destructor frees the process group while holding the GIL and joins gloo's worker
    thread; if that thread is still destroying the last collective's work object, which needs the
    GIL to release a Python reference, both wait forever (seen here: a 2-rank run hung after its
    last epoch). A final barrier, then a pause with the GIL released, lets the worker finish
    first; the process group is destroyed before the Reducer lets go of it.
    """
    torch.distributed.barrier()
    time.sleep(0.5)  # releases the GIL: gloo's thread drops the barrier's work
    torch.distributed.destroy_process_group()


def _train_epoch(model, opt, batches, step, device, epoch, args, show, world=1) -> Dict[str, Any]:
    """One pass over ``batches`` (``step(model, batch) -> (logits, labels)``); loss and
    accuracy are over every rank's seeds (all-reduced)."""
    from tqdm import tqdm

    model.train()
    total_loss = total_correct = total_seen = 0
    num_batches, first_bad = 0, None
    t0 = time.perf_counter()
    bar = tqdm(
        batches,
        desc=f"epoch {epoch}",
        unit="batch",
        leave=False,
        disable=not (show and sys.stderr.isatty()),
    )
    for batch in bar:
        logits, target = step(model, batch)
        target = target.to(device)
        bs = int(target.numel())
        loss = F.cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        if first_bad is None and not math.isfinite(value):
            first_bad = (num_batches + 1, value)
        total_loss += value * bs
        total_correct += int((logits.argmax(-1) == target).sum())
        total_seen += bs
        num_batches += 1
        bar.set_postfix(loss=f"{value:.3f}", bps=f"{num_batches / (time.perf_counter() - t0):.1f}")
        if args.max_batches and num_batches >= args.max_batches:
            break
    bar.close()
    if world > 1:
        sums = [float(total_loss), float(total_correct), float(total_seen)]
        sums_t = torch.tensor(sums, dtype=torch.float64, device=device)  # NCCL: on the GPU
        torch.distributed.all_reduce(sums_t)
        total_loss, total_correct, total_seen = sums_t.tolist()
    if not math.isfinite(total_loss):  # all-reduced: every rank stops here, none hangs
        where = f" (this rank's batch {first_bad[0]}: {first_bad[1]})" if first_bad else ""
        raise TrainError(
            f"epoch {epoch}: the training loss is not finite{where}; the features or labels "
            f"hold NaN/inf, or --lr {args.lr} is too large. No checkpoint was written for it."
        )
    seconds = time.perf_counter() - t0
    return {
        "epoch": epoch,
        "loss": total_loss / max(total_seen, 1),
        "train_acc": total_correct / max(total_seen, 1),
        "batches_per_s": num_batches / seconds if seconds > 0 else 0.0,
        "seconds": seconds,
    }


# ---------------------------------------------------------------------- pipe / hybrid / graph
def train_parallel(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """``--mode pipe|hybrid|graph``: full-graph training through ``gnnsys.pipeline_parallel``.

    Writes the same ``config.json`` (at the start), ``metrics.jsonl`` and ``curves.png`` as
    mini-batch training. Rank 0's row of each epoch is printed and appended to
    ``metrics.jsonl`` as soon as the epoch ends; when the run ends the rows are rewritten with
    the merged values (slowest rank's seconds, bytes summed over ranks), and the trained model,
    assembled from the stages (or parts), is written to ``model.pt`` (see ``load_model``).
    Every ``--checkpoint-every`` epochs each rank writes its state under ``checkpoint/``
    (``pipeline_parallel.checkpoint``); ``--resume`` continues from the last committed epoch.
    """
    from gnnsys.pipeline_parallel.checkpoint import committed_rows, latest_epoch
    from gnnsys.pipeline_parallel.config import ModelConfig, TrainConfig
    from gnnsys.pipeline_parallel.launch import RankFailure, run
    from gnnsys.pipeline_parallel.transport import MAX_CHUNKS, MAX_LAYERS

    folder = Path(args.out)
    ckpt_dir = folder / "checkpoint"
    if ckpt_dir.exists() and not ckpt_dir.is_dir():
        raise TrainError(f"{ckpt_dir} is not a folder (this mode keeps its checkpoints there)")
    done_rows: List[Dict[str, Any]] = []
    if args.resume:  # fails before the data loads: another config, a damaged manifest
        _resume_state(folder, _config(args), RESUME_KEYS + _LAYOUT_KEYS)  # layout too
        try:
            resumed = latest_epoch(ckpt_dir, args.nproc) if ckpt_dir.is_dir() else None
        except ValueError as err:
            raise TrainError(f"--resume: {err}") from None
        if resumed is None:
            print(f"--resume: no checkpoint in {folder} yet, starting again from epoch 1")
        else:
            by_epoch = {r["epoch"]: r for r in read_metrics(folder / "metrics.jsonl")}
            # The rows a kill between the commit and metrics.jsonl's update left out are in
            # the manifest (rank 0's rows of the run that wrote it).
            for r in committed_rows(ckpt_dir):
                by_epoch.setdefault(r["epoch"], r)
            done_rows = [by_epoch[e] for e in sorted(by_epoch) if e <= resumed]
            if [r["epoch"] for r in done_rows] != list(range(1, resumed + 1)):
                raise TrainError(
                    f"--resume: {folder / 'metrics.jsonl'} lacks rows of epochs 1..{resumed} "
                    "that the checkpoint covers; start again without --resume"
                )
            _check_epochs_left(resumed, args.epochs, folder)
            _check_rank_files(ckpt_dir, resumed, args.nproc)
            print(f"--resume: continuing from epoch {resumed + 1}", flush=True)
    if args.layers > MAX_LAYERS:  # message tags: a halo slot per layer
        raise TrainError(f"--layers {args.layers}: --mode {args.mode} runs at most "
                         f"{MAX_LAYERS} layers")  # fmt: skip
    ds = load_dataset(args)
    check_training_split(ds, args.dataset)
    if args.mode == "graph" and args.nproc > ds.graph.num_nodes:  # before spawning them all
        raise TrainError(
            f"--nproc {args.nproc}: more processes than the {ds.graph.num_nodes} nodes of "
            f"--dataset {args.dataset} (each rank's part holds at least one node)"
        )
    if args.mode != "graph" and args.chunks != "auto":
        if args.chunks > MAX_CHUNKS:
            raise TrainError(f"--chunks {args.chunks}: at most {MAX_CHUNKS} chunks an epoch")
        if args.chunks > ds.graph.num_nodes:
            raise TrainError(
                f"--chunks {args.chunks}: more chunks than the {ds.graph.num_nodes} nodes of "
                f"--dataset {args.dataset} (each chunk holds at least one node)"
            )
    model = ModelConfig(
        kind=args.model, hidden=args.hidden, num_layers=args.layers, dropout=args.dropout
    )
    train_cfg = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        weight_decay=args.weight_decay,
        layer_weight_decay=args.layer_weight_decay,
        lr_schedule=args.lr_schedule,
        seed=args.seed,
        eval_every=args.eval_every,
        profile=args.profile,
        net_gbps=args.net_gbps,
        net_latency_us=args.net_latency_us,
        # (a resume reads the checkpoint whether or not this run writes more of them)
        checkpoint_dir=str(ckpt_dir) if args.checkpoint_every or done_rows else None,
        checkpoint_every=args.checkpoint_every,
        resume=bool(done_rows),
    )
    if args.checkpoint_every:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    stages = groups = None
    chunks = args.chunks if args.mode != "graph" else None
    if args.mode == "hybrid":
        stages = args.pipe_stages or 2
    if "auto" in (stages, chunks):
        from gnnsys.pipeline_parallel.launch import calibrate

        print("calibrating: short profiled runs for the cost model ...", flush=True)
        pick = calibrate(ds, args.mode, model, args.nproc, chunks=chunks, stages=stages,
                         train=train_cfg)  # fmt: skip
        stages, chunks = pick["stages"], pick["chunks"]
        for key in ("grid_predicted", "chunks_predicted"):
            if key in pick:
                table = ", ".join(f"{k}: {v:.3f}s" for k, v in pick[key].items())
                print(f"predicted epoch by {key.split('_')[0]}: {table}", flush=True)
        chosen = [f"{n} {v}" for n, v in (("stages", stages), ("chunks", chunks)) if v]
        print(f"chose {', '.join(chosen)}", flush=True)
    if args.mode == "hybrid":
        groups = args.nproc // stages
    folder.mkdir(parents=True, exist_ok=True)
    if not args.resume:
        _forget_checkpoints(folder)
    atomic_write_bytes(folder / "config.json", json.dumps(_config(args), indent=2).encode())
    write_metrics(folder / "metrics.jsonl", done_rows)
    _print_header(args, ds, args.nproc, len(done_rows) + 1, f"{args.model} x{args.layers}", None)
    streamed: List[Dict[str, Any]] = list(done_rows)

    def on_epoch(row: Dict[str, Any]) -> None:
        streamed.append(dict(row))
        write_metrics(folder / "metrics.jsonl", streamed)
        print(_format_row(row), flush=True)
        _check_finite_loss(row, args)  # raising here ends the ranks (run's cleanup)

    try:
        out = run(args.mode, ds, model, args.nproc, args.epochs, stages=stages, groups=groups,
                  chunks=chunks, train=train_cfg,
                  backend="nccl" if args.device == "cuda" else "gloo",
                  on_epoch=on_epoch)  # fmt: skip
    except RankFailure as err:  # a rank could not read its checkpoint: one line, not a trace
        damaged = [m for m in err.errors.values() if "CorruptCheckpointError" in m]
        if not damaged:
            raise
        line = damaged[0].strip().splitlines()[-1].split(": ", 1)[-1]
        raise TrainError(f"--resume: {line}") from None
    rows = [*done_rows, *(dict(r) for r in out["epochs"])]
    write_metrics(folder / "metrics.jsonl", rows)
    if len(streamed) < len(rows):  # fit() without per-epoch reports: print them now
        for r in rows[len(streamed) :]:
            print(_format_row(r), flush=True)
    for r in rows:
        _check_finite_loss(r, args)
    _save_final_model(folder / "model.pt", out, model, ds, args)
    plot_curves(folder / "curves.png", rows)
    print_summary(rows)
    if args.profile:
        print_breakdown(rows[-1])
    print_outputs(folder)
    return rows


def print_breakdown(row: Dict[str, Any]) -> None:
    """The last epoch's seconds per section, one line per rank (``--profile``)."""
    breakdowns = row.get("breakdown") or []
    names = sorted({k for b in breakdowns for k in b if k not in ("wait", "process_cpu")})
    print(f"epoch {row['epoch']} seconds by section (wall):", flush=True)
    for rank, b in enumerate(breakdowns):
        parts = ", ".join(f"{k} {b[k]:.3f}" for k in names if b.get(k, 0.0) >= 0.0005)
        print(f"  rank {rank}: {parts}", flush=True)
    cpus = row.get("breakdown_cpu") or []
    if cpus:
        print(f"epoch {row['epoch']} CPU seconds by section (other_threads: gloo, intra-op):")
        for rank, c in enumerate(cpus):
            parts = ", ".join(f"{k} {v:.3f}" for k, v in sorted(c.items()) if v >= 0.0005)
            print(f"  rank {rank}: {parts}", flush=True)


def _check_finite_loss(row: Dict[str, Any], args: argparse.Namespace) -> None:
    """A full-graph mode's epoch row with a NaN/inf loss is a ``TrainError`` (its rows so far
    are in metrics.jsonl, the loss as null)."""
    loss = row.get("loss")
    if isinstance(loss, float) and not math.isfinite(loss):
        raise TrainError(
            f"epoch {row.get('epoch')}: the training loss is {loss}; the features or labels "
            f"hold NaN/inf, or --lr {args.lr} is too large"
        )


def _is_number(v: Any) -> bool:
    """A finite accuracy (not None: not evaluated; not NaN: an empty split)."""
    return isinstance(v, (int, float)) and math.isfinite(v)


def print_summary(rows: List[Dict[str, Any]]) -> None:
    """Print the last epoch's test accuracy and the test accuracy at the best validation epoch
    (the model a user would keep: deep full-graph runs can dip at the last epoch)."""
    evaluated = [r for r in rows if _is_number(r.get("test_acc"))]
    if not evaluated:
        return
    print(f"final test accuracy: {evaluated[-1]['test_acc']:.4f}", flush=True)
    with_val = [r for r in evaluated if _is_number(r.get("val_acc"))]
    if with_val:
        best = max(with_val, key=lambda r: r["val_acc"])
        print(
            f"test accuracy at best validation: {best['test_acc']:.4f} "
            f"(epoch {best['epoch']}, val {best['val_acc']:.4f})",
            flush=True,
        )

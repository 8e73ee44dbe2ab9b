"""The ``gnnsys`` command: ``info``, ``train``, ``bench``, ``data``, ``partition``.

``gnnsys train`` with no flags is the main job: mini-batch GraphSAGE on the embedded
``synthetic:mini`` graph through the gnnsys loader.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List, NoReturn, Optional, Sequence, Union

from gnnsys._machine import usable_cpus

# Epochs between the full-graph modes' checkpoints by default: one commit writes every rank's
# histories (105 MB for GCN 32 x 16 on a 24k-node graph, 4 ranks) and cost ~0.15-0.2 s there,
# a third of a 0.4-0.5 s epoch when written every epoch (session 18, 2-core VM).
FULL_GRAPH_CHECKPOINT_EVERY = 10

DATASETS = (
    "synthetic:tiny",
    "synthetic:mini",
    "synthetic:products",
    "synthetic:tiny-mag",
    "synthetic:mini-mag",
    "synthetic:mag",
    "synthetic:papers-mini",
    "synthetic:papers",
    "ogbn-arxiv",
    "ogbn-products",
    "ogbn-papers100M",
    "ogbn-mag",
)
# Heterogeneous datasets: gnnsys train runs HeteroSAGE on them (--mode minibatch, ddp, dist).
HETERO_DATASETS = ("synthetic:tiny-mag", "synthetic:mini-mag", "synthetic:mag", "ogbn-mag")
MODELS = ("sage", "gcn", "gat", "gcnii")
MODES = ("minibatch", "ddp", "pipe", "hybrid", "graph", "dist")
FULL_GRAPH_MODES = ("pipe", "hybrid", "graph")  # the modes that train on the whole graph
BENCHES = {
    "loader": ["loader_throughput.py", "--graph", "mini", "--batches", "30"],
    "gather": ["gather_bandwidth.py"],
    "gnnpipe": ["gnnpipe.py", "--scale", "13", "--acc-dataset", "tiny", "--acc-epochs", "40"],
    "ops": ["sparse_ops.py"],
}


# ---------------------------------------------------------------------- info
def _version(dist: str) -> Optional[str]:
    """An installed distribution's version from its metadata, without importing it (importing
    torch_geometric alone takes seconds)."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _numba_threads() -> int:
    """numba's thread count, as numba's config computes it (NUMBA_NUM_THREADS, else the CPUs
    this process may run on), without importing numba."""
    env = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return usable_cpus()


def _torch_cuda_build() -> Optional[str]:
    """The CUDA version the installed torch was built for (``torch.version.cuda``, read from
    torch/version.py without importing torch); None for a CPU build or no torch."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"^cuda\s*(?::[^=\n]*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return m.group(1) if m else None


def _cuda_devices() -> Optional[List[str]]:
    """Names of the GPUs the CUDA driver shows this process (libcuda through ctypes, honouring
    CUDA_VISIBLE_DEVICES); None when there is no driver. Importing torch to ask takes seconds."""
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    count = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    names = []
    for i in range(count.value):
        dev = ctypes.c_int(0)
        buf = ctypes.create_string_buffer(256)
        if lib.cuDeviceGet(ctypes.byref(dev), i) == 0 and lib.cuDeviceGetName(buf, 256, dev) == 0:
            names.append(buf.value.decode(errors="replace"))
        else:
            names.append(f"device {i}")
    return names


def _cuda_line(torch_version: Optional[str]) -> str:
    build = _torch_cuda_build()
    if torch_version is None:
        return "cuda usable: no (torch is not installed)"
    if build is None:
        return f"cuda usable: no (torch {torch_version} is a CPU build)"
    names = _cuda_devices()
    if names is None:
        return f"cuda usable: no (torch built for CUDA {build}, but no CUDA driver found)"
    if not names:
        return f"cuda usable: no (torch built for CUDA {build}; the driver shows no GPU)"
    return (
        f"cuda usable: yes, {len(names)} GPU(s): {', '.join(names)} (torch built for CUDA {build})"
    )


def cmd_info(_: argparse.Namespace) -> int:
    """Print versions of the stack, CUDA availability and the GPU, numba's thread count.

    Nothing heavy is imported (torch alone takes seconds): versions come from package
    metadata, CUDA from torch's build record and the driver (``_cuda_line``).
    """
    from gnnsys import __version__

    numba = _version("numba")
    torch_version = _version("torch")
    lines = [
        f"gnnsys {__version__}",
        f"python {sys.version.split()[0]}",
        f"torch {torch_version}" if torch_version else "torch not installed",
        f"numpy {_version('numpy')}",
        f"numba {numba} (threads: {_numba_threads()})" if numba else "numba not installed",
    ]
    triton = _version("triton")
    lines.append(f"triton {triton}" if triton else "triton not installed (pip install gnnsys[gpu])")
    pyg = _version("torch_geometric") or _version("torch-geometric")
    lines.append(f"torch_geometric {pyg}" if pyg else "torch_geometric not installed")
    lines.append(_cuda_line(torch_version))
    print("\n".join(lines))
    return 0


# ---------------------------------------------------------------------- train
def _positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {value}")
        return value

    return parse


def _halo_cache(text: str) -> Union[int, str]:
    """--halo-cache: "halo" or a row count >= 0."""
    if text == "halo":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--halo-cache must be a row count or 'halo', got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--halo-cache must be >= 0, got {value}")
    return value


def _positive_int_or_auto(name: str):
    ints = _positive_int(name)

    def parse(text: str):
        return "auto" if text == "auto" else ints(text)

    return parse


def _non_negative_float(name: str, below: Optional[float] = None):
    """A finite float >= 0 (and < ``below`` when given)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"{name} must be a finite number >= 0, got {text}")
        if below is not None and value >= below:
            raise argparse.ArgumentTypeError(f"{name} must be below {below:g}, got {text}")
        return value

    return parse


def _int_in(flag: str, lo: int, hi: int):
    """An integer in ``lo..hi``: a flag error naming ``flag`` otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{flag} must be in {lo}..{hi}, got {value}")
        return value

    return parse


_seed = _int_in("--seed", 0, 2**32 - 1)  # a seed as numpy and torch take it
_port = _int_in("--master-port", 1, 65535)  # a TCP port


def _fanout(text: str) -> List[int]:
    if not text.strip():
        raise argparse.ArgumentTypeError("--fanout is empty")
    try:  # every piece an integer: "10,,5" (a typo) must not train 2 hops instead of 3
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--fanout must be comma-separated integers such as 15,10,5, got {text!r}"
        ) from None
    from gnnsys.loaders.neighbor import MAX_FANOUT

    bad = [v for v in values if v < -1 or v == 0 or v > MAX_FANOUT]
    if bad:
        raise argparse.ArgumentTypeError(
            f"--fanout values must be 1..{MAX_FANOUT} or -1 (all neighbours), got {bad[0]}"
        )
    return values


def _dataset(text: str) -> str:
    if text in DATASETS:
        return text
    for prefix in ("folder:", "pyg:"):
        if text.startswith(prefix):
            if not text[len(prefix) :]:
                raise argparse.ArgumentTypeError(f"--dataset {text}: give the path after {prefix}")
            return text
    raise argparse.ArgumentTypeError(
        f"--dataset must be one of {', '.join(DATASETS)}, folder:DIR or pyg:FILE, got {text!r}"
    )


def _size(flag: str, zero: bool = False):
    """A byte size such as 8G or 512M (``parse_bytes``); ``zero``: "0" (none) too."""

    def parse(text: str) -> str:
        if zero and text.strip() == "0":
            return text
        from gnnsys.datasets.outofcore import parse_bytes  # (not at build: `info` stays light)

        try:
            parse_bytes(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err).replace("memory_budget", flag)) from None
        return text

    return parse


OVERSUBSCRIBE = 8  # --threads / --nproc per core at most: a typo, not a plan, beyond that
DEFAULT_FANOUT = [10, 5]  # one value per layer; --layers L alone gives [10] * L
DEFAULT_DATASET = "synthetic:mini"  # --mode dist without --dataset: the partition's dataset


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``gnnsys train`` (shared with the benchmark scripts).

    Every help text states the default the run really uses (``validate_train_args`` fills in
    the ones that depend on other flags); tests/test_cli.py checks them.
    """
    fanout = ",".join(map(str, DEFAULT_FANOUT))
    p.add_argument(
        "--dataset",
        default=None,
        type=_dataset,
        metavar="NAME",
        help=f"one of {', '.join(DATASETS)}; folder:DIR (the folder format `gnnsys data` "
        "writes: src/dst/x/y.npy, optional split files and meta.json) or pyg:FILE (a "
        "torch.save'd PyG Data with x, y, edge_index, optional train/val/test_mask); without a "
        "split of its own a folder or file gets a random 60/20/20 split seeded by --seed. The "
        "*-mag datasets are heterogeneous: HeteroSAGE (to_hetero GraphSAGE), --mode minibatch, "
        "ddp or dist; --mode dist reads --part-dir and checks --dataset, when given, against it "
        f"(default: {DEFAULT_DATASET})",
    )
    p.add_argument(
        "--root", default=None, help="folder holding the OGB dataset, ogbn-* only (default: none)"
    )
    p.add_argument(
        "--ogb-node-order",
        choices=("degree", "given"),
        default=None,
        help="ogbn-papers100M from its raw files: number the converted nodes hot-first, most "
        "edges first (degree: much faster loading from a table bigger than RAM), or keep OGB's "
        "ids (given); each order is converted once and cached (default: none, i.e. degree)",
    )
    p.add_argument(
        "--model",
        default="sage",
        choices=MODELS,
        help="GNN layer type; gat has 4 heads of --hidden/4 (default: sage)",
    )
    p.add_argument(
        "--layers",
        type=_positive_int("--layers"),
        default=None,
        help=f"number of GNN layers (default: one per --fanout value, {len(DEFAULT_FANOUT)})",
    )
    p.add_argument(
        "--hidden", type=_positive_int("--hidden"), default=128, help="hidden width (default: 128)"
    )
    p.add_argument(
        "--dropout",
        type=_non_negative_float("--dropout", below=1.0),
        default=0.5,
        help="dropout probability (default: 0.5)",
    )
    p.add_argument(
        "--fanout",
        type=_fanout,
        default=None,
        help="neighbours per hop, first hop first, -1 for all; minibatch, ddp, dist (default: "
        f"{fanout}, or 10 per layer with --layers)",
    )
    p.add_argument(
        "--sampler",
        choices=("neighbor", "labor"),
        default="neighbor",
        help="neighbor: uniform neighbour sampling; labor: LABOR-0 (the same expected fanout, "
        "fewer distinct nodes per batch); minibatch, ddp (default: neighbor)",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int("--batch-size"),
        default=1024,
        help="seed nodes per batch, per process in ddp and dist; minibatch, ddp, dist (default: "
        "1024)",
    )
    p.add_argument(
        "--epochs", type=_positive_int("--epochs"), default=4, help="training epochs (default: 4)"
    )
    p.add_argument(
        "--lr",
        type=_non_negative_float("--lr"),
        default=0.01,
        help="Adam's learning rate (default: 0.01)",
    )
    p.add_argument(
        "--weight-decay",
        type=_non_negative_float("--weight-decay"),
        default=0.0,
        help="Adam's weight decay (default: 0.0)",
    )
    p.add_argument(
        "--lr-schedule",
        default="constant",
        choices=["constant", "cosine"],
        help="cosine: anneal --lr to 0 over --epochs (steadies GNNPipe's late epochs) "
        "(default: constant)",
    )
    p.add_argument(
        "--layer-weight-decay",
        type=_non_negative_float("--layer-weight-decay"),
        default=None,
        help="weight decay of the graph layers, pipe/hybrid/graph modes (GCNII's recipe: 0.01 "
        "with --weight-decay 5e-4) (default: --weight-decay)",
    )
    p.add_argument(
        "--eval-every",
        type=_positive_int("--eval-every"),
        default=1,
        help="evaluate every N epochs, and after the last (default: 1)",
    )
    p.add_argument(
        "--eval",
        default="full",
        choices=("full", "sampled"),
        help="full: exact logits of every node, layer by layer (memory: nodes x --hidden); "
        "sampled: only the val/test nodes, through the training fanout, as PyG's "
        "papers100M examples do (for graphs whose layer outputs do not fit in memory; "
        "minibatch and ddp, homogeneous) (default: full)",
    )
    p.add_argument(
        "--mode",
        default="minibatch",
        choices=MODES,
        help="minibatch: one process; ddp: data parallel; pipe: GNNPipe; hybrid: pipe x data; "
        "graph: graph parallel; dist: each machine holds one part of --part-dir and samples "
        "and fetches across machines, DDP for the model (default: minibatch)",
    )
    p.add_argument(
        "--part-dir",
        default=None,
        metavar="DIR",
        help="--mode dist: the folder `gnnsys partition` wrote; its part count is the number of "
        "machines (default: none)",
    )
    p.add_argument(
        "--halo-cache",
        type=_halo_cache,
        default=0,
        metavar="ROWS|halo",
        help="--mode dist: keep this many of other machines' feature rows on each machine, the "
        "ones its in-edges name most ('halo': as many as its halo); same batches, fewer bytes "
        "(default: 0)",
    )
    p.add_argument(
        "--nproc",
        "--nproc-per-node",
        type=_positive_int("--nproc"),
        default=1,
        help="processes per node (ddp, pipe, hybrid, graph, dist) (default: 1)",
    )
    p.add_argument(
        "--nnodes",
        type=_positive_int("--nnodes"),
        default=1,
        help="nodes (ddp, dist); --mode dist with --master-addr 127.0.0.1 runs every node on "
        "this machine (default: 1)",
    )
    p.add_argument("--node-rank", type=int, default=0, help="this node's rank (ddp) (default: 0)")
    p.add_argument(
        "--master-addr", default="127.0.0.1", help="rendezvous address (ddp) (default: 127.0.0.1)"
    )
    p.add_argument(
        "--master-port",
        type=_port,
        default=None,
        help="rendezvous port (ddp, dist) (default: on one node, a free port the launcher binds "
        f"itself (torchrun --standalone); on several, {DEFAULT_MASTER_PORT})",
    )
    p.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="where the model runs (default: cpu)",
    )
    p.add_argument(
        "--features",
        default="host",
        choices=("host", "unified", "gpu"),
        help="where the feature table lives (minibatch, ddp) (default: host)",
    )
    p.add_argument(
        "--feature-cache",
        default="0",
        type=_size("--feature-cache", zero=True),
        metavar="SIZE",
        help="with --features unified: keep the SIZE bytes of feature rows most often sampled "
        "(by how often each node is a neighbour) in RAM, or on the GPU with --device cuda (0: "
        "none); for "
        "a memory-mapped folder (gnnsys data papers) the rest is read from the file "
        "(default: 0)",
    )
    p.add_argument(
        "--feature-dtype",
        default="float32",
        choices=("float32", "bfloat16"),
        help="storage dtype of the features (minibatch, ddp) (default: float32)",
    )
    p.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seed of the weights, shuffles and random splits (default: 0)",
    )
    p.add_argument(
        "--out", default="runs/latest", help="output folder (metrics, checkpoints) "
        "(default: runs/latest)",
    )  # fmt: skip
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        help="write a checkpoint every N epochs and after the last, 0: never; the full-graph "
        f"modes default to {FULL_GRAPH_CHECKPOINT_EVERY} (short epochs; a checkpoint holds every "
        "rank's histories, one file per rank under checkpoint/) (default: 1)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUT/checkpoint.pt with the same config; an OUT without a "
        "checkpoint yet starts again from epoch 1 (minibatch, ddp)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int("--threads"),
        default=None,
        help="loader and torch threads (minibatch, ddp, dist) (default: all cores)",
    )
    p.add_argument(
        "--max-batches",
        type=_positive_int("--max-batches"),
        default=None,
        help="stop each epoch after this many batches, for smoke tests (minibatch, ddp, dist) "
        "(default: none, the whole epoch)",
    )
    p.add_argument(
        "--pipe-stages",
        type=_positive_int_or_auto("--pipe-stages"),
        default=None,
        help="pipeline stages of --mode hybrid, dividing --nproc; pipe mode has one stage per "
        "process; auto: the grid the cost model predicts fastest from short profiled runs of "
        "each (default: 2)",
    )
    p.add_argument(
        "--chunks",
        type=_positive_int_or_auto("--chunks"),
        default=4,
        help="GNNPipe chunks per epoch (pipe, hybrid); auto: chosen by the cost model from "
        "profiled runs at 4 and 16 chunks (default: 4)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="time each epoch by section (compute, history, waits, transport, all-reduce) "
        "per rank, into metrics.jsonl and a printed table (pipe, hybrid, graph) (default: False)",
    )
    p.add_argument(
        "--net-gbps",
        type=_non_negative_float("--net-gbps"),
        default=None,
        help="model a network of this bandwidth in Gb/s between the ranks (pipe, hybrid, "
        "graph; gloo) (default: none, the real network)",
    )
    p.add_argument(
        "--net-latency-us",
        type=_non_negative_float("--net-latency-us"),
        default=0.0,
        help="one-way latency of the modeled network in microseconds (default: 0.0)",
    )
    p.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)


def validate_train_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Cross-flag checks; every failure goes through ``parser.error`` (exit 2, clear message)."""
    _check_mode_flags(args, parser)
    if args.fanout is None:
        args.fanout = list(DEFAULT_FANOUT) if args.layers is None else [10] * args.layers
    if args.layers is None:
        args.layers = len(args.fanout)
    if len(args.fanout) != args.layers and args.mode in ("minibatch", "ddp", "dist"):
        parser.error(
            f"--fanout has {len(args.fanout)} values but --layers is {args.layers}: "
            "give one fanout per layer"
        )
    if args.mode == "dist":  # the data is --part-dir's; a --dataset given must match it
        if args.root is not None:
            parser.error("--root applies to loading a dataset; --mode dist reads --part-dir")
    else:
        if args.dataset is None:
            args.dataset = DEFAULT_DATASET
        _check_dataset_files(args, parser)
    if args.ogb_node_order is not None and args.dataset != "ogbn-papers100M":
        parser.error(f"--ogb-node-order is for --dataset ogbn-papers100M, not {args.dataset}")
    if args.dataset in HETERO_DATASETS:
        _check_hetero_args(args, parser)
    if args.eval == "sampled" and (args.mode not in ("minibatch", "ddp", "dist")
                                   or args.dataset in HETERO_DATASETS):  # fmt: skip
        parser.error("--eval sampled is for homogeneous datasets in --mode minibatch, ddp or dist")
    if args.model == "gat" and args.hidden % 4:
        parser.error(f"--model gat has 4 heads of --hidden/4: --hidden {args.hidden} is not a "
                     "multiple of 4")  # fmt: skip
    cores = usable_cpus()
    most = OVERSUBSCRIBE * max(cores, 8)
    for flag, value in (("--threads", args.threads), ("--nproc", args.nproc)):
        if value is not None and value > most:  # (--threads 100000 hung at the thread limit)
            parser.error(
                f"{flag} {value}: at most {most} on this machine ({cores} cores; "
                f"{OVERSUBSCRIBE} per core, counting at least 8 cores)"
            )
    if args.node_rank < 0 or args.node_rank >= args.nnodes:
        parser.error(f"--node-rank must be in 0..{args.nnodes - 1}, got {args.node_rank}")
    if args.mode == "minibatch" and (args.nproc > 1 or args.nnodes > 1):
        parser.error("--nproc/--nnodes > 1 need --mode ddp, pipe, hybrid, graph or dist")
    _check_dist_args(args, parser)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda but CUDA is not usable here: `gnnsys info` says why")
        if args.nproc > torch.cuda.device_count():
            parser.error(
                f"--device cuda --nproc {args.nproc}: NCCL needs one GPU per process and this "
                f"machine has {torch.cuda.device_count()}"
            )
    if args.feature_cache != "0" and args.features != "unified":
        parser.error("--feature-cache needs --features unified")
    if args.features == "gpu" and args.device != "cuda":
        parser.error("--features gpu needs --device cuda")
    if args.sampler != "neighbor" and args.mode not in ("minibatch", "ddp"):
        parser.error(f"--sampler applies to --mode minibatch or ddp, not {args.mode}")
    if args.layer_weight_decay is not None and args.mode not in FULL_GRAPH_MODES:
        parser.error("--layer-weight-decay applies to --mode pipe, hybrid or graph")
    if args.pipe_stages is not None and args.mode != "hybrid":
        parser.error(
            f"--pipe-stages applies to --mode hybrid (--mode {args.mode} "
            + ("has one stage per process)" if args.mode == "pipe" else "has no stages)")
        )
    parallel_only = [f for f, on in (("--profile", args.profile), ("--net-gbps", args.net_gbps),
                     ("--net-latency-us", args.net_latency_us)) if on]  # fmt: skip
    if parallel_only and args.mode not in FULL_GRAPH_MODES:
        parser.error(f"{parallel_only[0]} applies to --mode pipe, hybrid or graph")
    if args.net_latency_us and not args.net_gbps:
        parser.error("--net-latency-us needs --net-gbps (the modeled network's bandwidth)")
    if args.net_gbps and args.device == "cuda":
        parser.error("--net-gbps models a network for CPU (gloo) runs; NCCL uses the real one")
    if args.mode in FULL_GRAPH_MODES:
        if args.resume and "auto" in (args.chunks, args.pipe_stages):
            parser.error(
                "--resume needs the run's layout fixed: give --chunks / --pipe-stages as "
                "numbers (a new calibration could choose another layout than the checkpoint's)"
            )
        if args.mode == "hybrid":
            if args.pipe_stages is None:
                args.pipe_stages = 2
            stages = args.pipe_stages
            if stages != "auto" and args.nproc % stages:
                parser.error(
                    f"--mode hybrid: --nproc {args.nproc} is not a multiple of "
                    f"--pipe-stages {stages}"
                )
        stages = args.nproc if args.mode == "pipe" else args.pipe_stages
        if args.mode != "graph" and stages != "auto" and args.layers < stages:
            # every pipeline stage owns at least one layer
            parser.error(
                f"--mode {args.mode}: {stages} pipeline stages need at least {stages} layers, "
                f"got --layers {args.layers} (raise --layers or lower "
                + ("--nproc)" if args.mode == "pipe" else "--pipe-stages)")
            )
        if args.nnodes > 1:
            parser.error(f"--mode {args.mode} runs on one node (--nnodes 1) for now")
    if args.checkpoint_every is None:  # full-graph epochs are short: a commit every 10
        args.checkpoint_every = FULL_GRAPH_CHECKPOINT_EVERY if args.mode in FULL_GRAPH_MODES else 1
    if args.checkpoint_every < 0:
        parser.error(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} is a file, not a folder")
    if args.resume:
        if not out.exists():
            parser.error(
                f"--resume but {out} does not exist: there is no run to continue "
                "(drop --resume to start one)"
            )
        if not out.is_dir():
            parser.error(f"--resume but {out} is not a folder")


@functools.lru_cache(maxsize=1)
def _train_defaults() -> argparse.ArgumentParser:
    """A parser holding only ``gnnsys train``'s flags: their defaults, whichever parser (the
    top-level one, a benchmark script's) parsed the arguments being checked."""
    p = argparse.ArgumentParser(add_help=False)
    add_train_arguments(p)
    return p


def _check_mode_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """A flag that --mode does not read is an error, not silently ignored: ``--mode pipe
    --batch-size 64`` must not train something else than its user asked for. A flag counts
    as given when its value differs from the default (its default changes nothing)."""

    def given(dest: str) -> bool:
        return getattr(args, dest) != _train_defaults().get_default(dest)

    if args.mode in FULL_GRAPH_MODES:
        why = f"--mode {args.mode} trains on the whole graph each step"
        for flag, dest, hint in (
            ("--fanout", "fanout", "; its depth is --layers"),
            ("--batch-size", "batch_size", ""),
            ("--max-batches", "max_batches", ""),
            ("--threads", "threads", " with one torch thread per process"),
        ):
            if given(dest):
                parser.error(f"{flag} applies to --mode minibatch, ddp or dist: {why}{hint}")
        # (--mode dist has its own checks of these two)
        for flag, dest in (("--features", "features"), ("--feature-dtype", "feature_dtype")):
            if given(dest):
                parser.error(
                    f"{flag} {getattr(args, dest)} applies to --mode minibatch or ddp: --mode "
                    f"{args.mode} reads the feature table as the dataset stores it"
                )
    if given("chunks") and args.mode not in ("pipe", "hybrid"):
        parser.error(
            f"--chunks {args.chunks} applies to --mode pipe or hybrid (GNNPipe's chunks), not "
            f"--mode {args.mode}"
        )


def _check_dataset_files(
    args: argparse.Namespace, parser: argparse.ArgumentParser, label: Optional[str] = None
) -> None:
    """--dataset's --root, folder or file exists (errors start with ``label``, by default
    ``--dataset NAME``)."""
    spec = args.dataset
    label = f"--dataset {spec}" if label is None else label
    if spec.startswith("ogbn-"):
        if args.root is None:
            parser.error(f"{label} needs --root, the folder holding it")
        if not Path(args.root).is_dir():
            parser.error(f"--root {args.root} is not a folder")
    elif args.root is not None:
        parser.error("--root is only used with ogbn-* datasets")
    kind, _, path = spec.partition(":")
    if kind in ("folder", "pyg"):
        target = Path(path).expanduser()
        if not (target.is_dir() if kind == "folder" else target.is_file()):
            what = "a folder" if kind == "folder" else "a file"
            parser.error(f"{label}: {target} is not {what}")


def _check_hetero_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse, in one line each, the flags a heterogeneous run (HeteroSAGE, mini-batch in one
    process, DDP or over a partition, host features) does not apply."""
    what = f"--dataset {args.dataset} is heterogeneous (HeteroSAGE)"
    if args.mode not in ("minibatch", "ddp", "dist"):
        parser.error(f"--mode {args.mode}: {what}; use --mode minibatch, ddp or dist")
    if args.model != "sage":
        parser.error(f"--model {args.model}: {what}; use --model sage")
    if args.features != "host":
        parser.error(f"--features {args.features}: {what}; its features stay in host memory "
                     "(--features host)")  # fmt: skip
    if args.sampler != "neighbor":
        parser.error(f"--sampler {args.sampler}: {what}; it samples with --sampler neighbor")


def _check_dist_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """--mode dist needs a partition folder whose part count divides the ranks."""
    if args.mode != "dist":
        if args.part_dir is not None:
            parser.error("--part-dir applies to --mode dist")
        if args.halo_cache != 0:
            parser.error("--halo-cache applies to --mode dist")
        return
    if args.part_dir is None:
        parser.error("--mode dist needs --part-dir DIR (write one with `gnnsys partition`)")
    from gnnsys.distributed.partition import PartitionError, read_meta

    try:
        meta = read_meta(args.part_dir)
    except (PartitionError, OSError) as err:
        parser.error(f"--part-dir: {err}")
    parts = int(meta["num_parts"])
    _check_partition_dataset(args, meta, parser)
    world = args.nproc * args.nnodes
    if "RANK" in os.environ:  # a worker: the launcher kept the launch flags
        world = int(os.environ.get("WORLD_SIZE", world))
    if world % parts:
        parser.error(
            f"--mode dist: {args.part_dir} has {parts} parts (one per machine) but --nnodes "
            f"{args.nnodes} x --nproc {args.nproc} = {world} processes do not split evenly over them"
        )
    if args.model != "sage":
        parser.error(f"--mode dist trains --model sage ({args.model}'s normalised edge weights "
                     "need the whole graph)")  # fmt: skip
    if args.sampler != "neighbor":
        parser.error("--mode dist samples with --sampler neighbor")
    if args.features != "host":
        parser.error("--mode dist keeps each part's features on its machine (--features host)")
    if args.feature_dtype != "float32":
        parser.error("--mode dist reads the features in the partition's dtype (--feature-dtype "
                     "float32)")  # fmt: skip
    if "RANK" not in os.environ:  # the launcher: the parts this node serves, before any launch
        here = range(parts) if _local_dist(args) else [args.node_rank]
        from gnnsys.distributed.partition import load_part

        for part in here:
            try:
                load_part(args.part_dir, part)
            except (PartitionError, OSError) as err:
                parser.error(f"--part-dir: {err}")


def _check_partition_dataset(
    args: argparse.Namespace, meta: dict, parser: argparse.ArgumentParser
) -> None:
    """A typed partition trains HeteroSAGE, which needs its target node type; a --dataset given
    with --mode dist must be the partition's (typed for a heterogeneous name, by name for
    synthetic:* and ogbn-*)."""
    typed = meta.get("node_types") is not None
    held = meta.get("dataset")
    what = f"{args.part_dir} holds a {'typed' if typed else 'homogeneous'} partition of {held}"
    if typed and meta.get("target") is None:
        parser.error(f"--mode dist: {what} without a target node type (a Dataset over a typed "
                     "graph): HeteroSAGE trains a HeteroDataset's partition")  # fmt: skip
    spec = args.dataset
    if spec is None:
        return
    if (spec in HETERO_DATASETS) != typed:
        kind = "heterogeneous" if spec in HETERO_DATASETS else "homogeneous"
        parser.error(f"--dataset {spec} is {kind} but {what}; drop --dataset or partition it")
    name = spec.split(":", 1)[1] if spec.startswith("synthetic:") else spec
    if spec.startswith(("synthetic:", "ogbn-")) and held is not None and name != held:
        parser.error(f"--dataset {spec}: {what}; drop --dataset or partition {spec}")


def _local_dist(args: argparse.Namespace) -> bool:
    """--mode dist with a local rendezvous: every "machine" is a process group on this box."""
    return args.mode == "dist" and args.master_addr in ("127.0.0.1", "localhost")


def cmd_train(args: argparse.Namespace) -> int:
    if args.mode in FULL_GRAPH_MODES:
        from gnnsys.trainer import train_parallel

        train_parallel(args)
        return 0
    world = args.nproc * args.nnodes
    if args.mode in ("ddp", "dist") and not args._worker and "RANK" not in os.environ:
        if _local_dist(args):  # N machines emulated here: one launcher, N x K processes
            args.nproc, args.nnodes, args.node_rank = world, 1, 0
        return _launch_torchrun(args)
    if args._worker:  # a rank of _launch_torchrun's: it ends with its torchrun
        from gnnsys._lifetime import die_with_parent, launcher_gone

        die_with_parent()
        if launcher_gone():  # torchrun died before the signal was armed
            return 1
    from gnnsys.trainer import train

    train(args)
    return 0


_LAUNCH_FLAGS = ("--nproc", "--nproc-per-node", "--nnodes", "--node-rank", "--master-addr",
                 "--master-port")  # fmt: skip


_LOG_DIR_PREFIX = "gnnsys-torchrun-"
DEFAULT_MASTER_PORT = 29517  # --master-port of a run over several nodes


def _rendezvous_flags(args: argparse.Namespace) -> List[str]:
    """torchrun's rendezvous flags: on one node without --master-port, ``--standalone`` (its
    agent binds a free port itself, so two runs on one box never collide, and no port is
    picked early and lost to another process); else a static rendezvous on the port."""
    if args.nnodes == 1 and args.master_port is None:
        return ["--standalone"]
    port = DEFAULT_MASTER_PORT if args.master_port is None else args.master_port
    return [f"--nnodes={args.nnodes}", f"--node-rank={args.node_rank}",
            f"--master-addr={args.master_addr}", f"--master-port={port}"]  # fmt: skip


def sweep_dead_log_dirs(folder: str) -> List[str]:
    """Remove the torchrun log folders (``gnnsys-torchrun-<pid>-*``) in ``folder`` whose
    launcher is gone and that hold no file (torchrun only writes there when it redirects the
    workers' output): what launchers killed outright left behind. Returns the removed names."""
    import shutil

    from gnnsys._lifetime import process_alive

    removed = []
    for path in Path(folder).glob(f"{_LOG_DIR_PREFIX}*-*"):
        pid = path.name[len(_LOG_DIR_PREFIX) :].split("-")[0]
        if not path.is_dir() or path.is_symlink() or not pid.isdigit():
            continue
        holds_files = any(p.is_symlink() or not p.is_dir() for p in path.rglob("*"))
        if holds_files or process_alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return sorted(removed)


def _launch_torchrun(args: argparse.Namespace) -> int:
    """Re-run this command under ``torch.distributed.run``, one worker process per rank.

    The launch flags stay with the launcher: torchrun's own parser would take ``--nproc`` for an
    abbreviation of its ``--nproc-per-node``, and the workers read their rank from the env.
    """
    argv, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a in _LAUNCH_FLAGS:
            skip = True
        elif not a.startswith(tuple(f + "=" for f in _LAUNCH_FLAGS)):
            argv.append(a)
    import tempfile

    # torchrun's log folder (empty unless it redirects the workers' output) defaults to a new
    # /tmp/torchelastic_* tree that nothing removes: one more per run. Ours goes with the run,
    # and a launcher killed outright (SIGKILL runs no cleanup) leaves its folder to the next.
    sweep_dead_log_dirs(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix=f"{_LOG_DIR_PREFIX}{os.getpid()}-") as log_dir:
        cmd = [  # torchrun, SIGKILLed if this process is (gnnsys._lifetime): no orphan ranks
            sys.executable, "-m", "gnnsys._lifetime", str(os.getpid()), "torch.distributed.run",
            f"--nproc-per-node={args.nproc}", *_rendezvous_flags(args), f"--log-dir={log_dir}",
            "-m", "gnnsys.cli", *argv, "--_worker",
        ]  # fmt: skip
        return subprocess.call(cmd)


# ---------------------------------------------------------------------- bench / data
def cmd_bench(args: argparse.Namespace) -> int:
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    script, *defaults = BENCHES[args.which]
    path = folder / script
    if not path.is_file():
        print(
            f"gnnsys bench: {path} not found (benchmarks ship with the source tree)",
            file=sys.stderr,
        )
        return 2
    return subprocess.call([sys.executable, str(path), *defaults, *args.extra])


def cmd_data(args: argparse.Namespace) -> int:
    from gnnsys import datasets

    problem = _out_folder_problem(args.out, args.overwrite)
    if problem is not None:
        print(f"gnnsys data: error: {problem}", file=sys.stderr)
        return 2
    try:
        if args.name in datasets.LARGE_NAMES:
            from gnnsys.datasets.large import generate_large

            try:
                out = generate_large(
                    args.name, args.out, seed=args.seed, memory_budget=args.memory_budget,
                    order=args.node_order, overwrite=args.overwrite,
                    log=lambda m: print(m, flush=True),
                )  # fmt: skip
            except ValueError as err:  # a --memory-budget too small for the build
                print(f"gnnsys data: error: --memory-budget: {err}", file=sys.stderr)
                return 2
            meta = json.loads((out / "meta.json").read_text())
            nodes, edges = meta["num_nodes"], meta["num_edges"]
        else:
            ds = datasets.synthetic(args.name, seed=args.seed)
            datasets.save_folder(ds, args.out, overwrite=args.overwrite)
            nodes, edges = ds.graph.num_nodes, ds.graph.num_edges
    except OSError as err:  # the disk filled up, no permission, a read-only filesystem ...
        return _cannot_write("data", args.out, err)
    print(f"wrote {args.name} ({nodes} nodes, {edges} edges) to {args.out}")
    return 0


def _cannot_write(command: str, out: str, err: OSError) -> int:
    """``gnnsys COMMAND`` could not write ``out``: one line on stderr naming why, exit 1."""
    what = err.strerror or str(err)
    where = f" ({err.filename})" if err.filename else ""
    print(f"gnnsys {command}: error: cannot write {out}: {what}{where}", file=sys.stderr)
    return 1


def _out_folder_problem(out: str, overwrite: bool) -> Optional[str]:
    """Why the dataset folder ``out`` cannot be written (None when it can be, as far as a check
    can tell): ``_unwritable_folder``'s reasons, an existing folder without ``overwrite`` or,
    with it, one that is not a dataset folder or holds the working directory."""
    problem = _unwritable_folder(out)
    path = Path(out).expanduser()
    if problem is not None or not path.exists():
        return problem
    if not overwrite:
        return f"{out} already exists (pass --overwrite to replace it)"
    from gnnsys.datasets.dataset import DATASET_MARKS
    from gnnsys.graph_io import check_replaceable

    try:
        check_replaceable(path, True, DATASET_MARKS, "dataset folder")
    except FileExistsError as err:
        return str(err)
    return None


def _unwritable_folder(out: str) -> Optional[str]:
    """Why no folder can be written at ``out`` whatever it holds: an empty path, an existing
    file, or a path under a file."""
    if not str(out).strip():
        return "the output folder is an empty path"
    path = Path(out).expanduser()
    if path.exists():
        return None if path.is_dir() else f"{out} exists and is not a folder"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {out}: {parent} is a file"
    return None


# ---------------------------------------------------------------------- partition
def cmd_partition(args: argparse.Namespace) -> int:
    """Write DATASET split into --parts parts (``gnnsys.distributed.partition``); print one JSON
    line: parts, sizes, edge cut, halo sizes, seconds and bytes written."""
    import time

    from gnnsys.distributed.partition import PartitionError, partition
    from gnnsys.trainer import load_dataset

    start = time.perf_counter()
    ds = load_dataset(args)  # TrainError (one line, from main) for an unreadable dataset
    loaded = time.perf_counter()
    try:
        book = partition(
            ds, args.parts, args.out, method=args.method, seed=args.seed, overwrite=args.overwrite
        )
    except OSError as err:
        return _cannot_write("partition", args.out, err)
    except (PartitionError, NotImplementedError) as err:
        message = " ".join(str(err).split("\n"))
        print(f"gnnsys partition: error: {message}", file=sys.stderr, flush=True)
        return 1
    done = time.perf_counter()
    meta = book.meta
    written = sum(f.stat().st_size for f in book.path.rglob("*") if f.is_file())
    summary = {
        "out": str(book.path),
        "dataset": meta["dataset"],
        "parts": meta["num_parts"],
        "method": meta["method"],
        "seed": meta["seed"],
        "num_nodes": meta["num_nodes"],
        "num_edges": meta["num_edges"],
        "part_sizes": meta["part_sizes"],
        "edge_cut": meta["edge_cut"],
        "halo_sizes": meta["halo_sizes"],
        "load_seconds": round(loaded - start, 3),
        "seconds": round(done - loaded, 3),
        "bytes": written,
    }
    print(json.dumps(summary), flush=True)
    return 0


def add_partition_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``gnnsys partition``."""
    p.add_argument(
        "dataset",
        type=_dataset,
        metavar="DATASET",
        help="as `gnnsys train --dataset`: synthetic:NAME or ogbn-* (typed ones, e.g. "
        "synthetic:tiny-mag, too), folder:DIR or pyg:FILE",
    )
    p.add_argument(
        "--parts", type=_positive_int("--parts"), required=True, help="number of parts (machines)"
    )
    p.add_argument(
        "--method",
        default="auto",
        choices=("metis", "random", "bfs", "auto"),
        help="metis (needs pymetis), random (seeded, balanced), bfs, or auto: metis when "
        "pymetis is installed, else bfs (default: auto)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the partition folder to write")
    p.add_argument(
        "--seed", type=_seed, default=0, help="partitioner seed, and the dataset's (default: 0)"
    )
    p.add_argument(
        "--root", default=None, help="folder holding the OGB dataset, ogbn-* only (default: none)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing partition folder at --out"
    )


def validate_partition_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """The dataset checks of ``gnnsys train`` that apply here; failures exit 2 via argparse."""
    _check_dataset_files(args, parser, label=args.dataset)
    problem = _unwritable_folder(args.out)  # partition() checks an existing folder
    if problem is not None:
        parser.error(f"--out: {problem}")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (exit 2), not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gnnsys", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("info", help="versions, CUDA and GPU, numba threads").set_defaults(fn=cmd_info)
    train = sub.add_parser("train", help="train a GNN (default: the main job)")
    add_train_arguments(train)
    train.set_defaults(fn=cmd_train, parser=train)
    bench = sub.add_parser("bench", help="run a benchmark script with sensible defaults")
    bench.add_argument("which", choices=sorted(BENCHES))
    bench.add_argument("extra", nargs=argparse.REMAINDER, help="flags passed to the script")
    bench.set_defaults(fn=cmd_bench)
    data = sub.add_parser("data", help="write a synthetic dataset in the peers' folder format")
    data.add_argument(
        "name",
        choices=("tiny", "mini", "products", "rmat20", "papers-tiny", "papers-mini", "papers"),
        help="papers*: papers100M-shaped, generated to disk in chunks (CSC form, float16 "
        "features) within --memory-budget",
    )
    data.add_argument("out")
    data.add_argument("--seed", type=_seed, default=0)
    data.add_argument(
        "--memory-budget",
        default="8G",
        type=_size("--memory-budget"),
        help="papers*: the most memory the generator holds (default: 8G)",
    )
    data.add_argument(
        "--node-order",
        choices=("degree", "given"),
        default="degree",
        help="papers*: number nodes hot-first, most edges first (default; original ids in "
        "orig_ids.npy), or keep the generator's ids",
    )
    data.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    data.set_defaults(fn=cmd_data)
    part = sub.add_parser(
        "partition", help="split a dataset into parts on disk for multi-machine training"
    )
    add_partition_arguments(part)
    part.set_defaults(fn=cmd_partition, parser=part)
    return parser


def sleeping_openmp_waits() -> None:
    """Have OpenMP threads sleep, not spin, while they wait (``OMP_WAIT_POLICY=PASSIVE``),
    unless the user chose a policy; read once, when torch loads OpenMP, so only before that.

    The trainer's loader threads sample and gather beside torch's OpenMP threads on the same
    cores, and OpenMP's default is to spin at every barrier for a while: with the loader busy,
    those spins take the cores the loader needs. Measured on the 2-core VM, products, 3 epochs
    of 60 batches each plus ``--eval sampled`` (2,250 batches of val and test nodes each
    epoch): 130-132 s a run with spinning waits, 74-82 s with sleeping ones, training epochs
    at the same speed or faster (``benchmarks/results/cpu-2core-vm_openmp_wait_s54.jsonl``).
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``gnnsys`` console script.

    A run that cannot go on for a stated reason (``TrainError``: bad resume, unreadable
    dataset; a corrupt checkpoint) prints one line to stderr and returns 1; Ctrl-C prints one
    line and returns 130 (as a shell does for SIGINT); anything else is a bug and keeps its
    traceback.
    """
    sleeping_openmp_waits()
    parser = build_parser()
    args = parser.parse_args(_attach_negative_lists(sys.argv[1:] if argv is None else argv))
    if args.command == "train":
        validate_train_args(args, args.parser)
        _make_out_dir(args, args.parser)
    elif args.command == "partition":
        validate_partition_args(args, args.parser)
    try:
        return int(args.fn(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback from wherever it landed
        out = getattr(args, "out", None)
        resume = ""
        if args.command == "train" and out is not None:
            resume = f"; `--resume --out {out}` continues from its last checkpoint, if any"
        print(f"\ngnnsys {args.command}: interrupted{resume}", file=sys.stderr, flush=True)
        return 130
    except Exception as err:
        if not _is_user_error(err):
            raise
        message = " ".join(str(err).split("\n"))
        print(f"gnnsys {args.command}: error: {message}", file=sys.stderr, flush=True)
        return 1


def _make_out_dir(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Create ``gnnsys train``'s --out before the run (after every flag check passed), so that
    a folder that cannot be created is a usage error now, not a traceback after loading. Not
    in ``validate_train_args``: benchmark scripts share it and write no --out."""
    if not str(args.out).strip():  # Path("") is the working directory
        parser.error("--out is an empty path")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"--out {out} cannot be created: {err.strerror or err}")


_SIZE_FLAGS = ("--feature-cache", "--memory-budget")


def _attach_negative_lists(argv: Sequence[str]) -> List[str]:
    """``--fanout -1,-1`` as ``--fanout=-1,-1`` (and ``--feature-cache -5M`` as
    ``--feature-cache=-5M``): argparse takes a value starting with ``-`` (other than one plain
    negative number) for an option and refuses it without naming the flag's rule."""
    out: List[str] = []
    for a in argv:
        if out and out[-1] == "--fanout" and re.fullmatch(r"-\d+(,\s*-?\d+)+", a):
            out[-1] = f"--fanout={a}"
        elif out and out[-1] in _SIZE_FLAGS and re.fullmatch(r"-\d.*", a):  # -5M: the
            out[-1] = f"{out[-1]}={a}"  # size check names the flag, not "expected one argument"
        else:
            out.append(a)
    return out


def _is_user_error(err: BaseException) -> bool:
    # Looked up in sys.modules: a command that never imported the trainer raised none of these.
    trainer = sys.modules.get("gnnsys.trainer")
    checkpoint = sys.modules.get("gnnsys.checkpoint")
    kinds = tuple(
        k
        for k in (
            getattr(trainer, "TrainError", None),
            getattr(checkpoint, "CorruptCheckpointError", None),
        )
        if k is not None
    )
    return bool(kinds) and isinstance(err, kinds)


if __name__ == "__main__":
    sys.exit(main())

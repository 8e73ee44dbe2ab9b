"""Mini-batch loader throughput: gnnsys vs PyG and DGL on the same graph, in the same run.

The workload of issue #3: fanout 15,10,5, batches of 1024 seeds, features and labels gathered
as a training loop would. Prints one JSON object per line:

- ``gnnsys`` / ``semantics: pyg``: ``gnnsys.loaders.pyg.NeighborLoader`` (the drop-in), yielding
  PyG ``Data`` with ``x`` and ``y`` of every sampled node;
- ``gnnsys`` / ``semantics: dgl``: ``Loader`` + ``NeighborSampler(semantics="dgl")``, ``x`` of
  every input node and ``y`` of the seeds (what DGL's DataLoader prefetches);
- with ``--peers``: /work/shared/peers/peer_pyg.py and peer_dgl.py run in their own virtual
  environments on the same folder (a missing peer gets a line saying so), then the ratios.

Heterogeneous graphs (``--graph mini-mag`` / ``mag`` / ``tiny-mag``, the ogbn-mag-shaped
synthetic heterographs): a 2-layer sampler (``--fanout 15,10`` on every relation), batches of
paper seeds, paper features of every sampled paper and labels of the seeds; gnnsys's PyG drop-in
on ``HeteroData`` and its DGL-semantics Loader against PyG + torch-sparse
(``hetero_neighbor_sample``), DGL's heterograph DataLoader and GraphBolt (benchmarks/peers/).

Every round runs every system (interleaved); the summary gives each system's range and median
over the rounds and each ratio's range over the rounds (a ratio per round, same-round peers).

Usage:
    python benchmarks/loader_throughput.py --graph rmat20 --peers --batches 50
    python benchmarks/loader_throughput.py --graph mini-mag --fanout 15,10 --peers --repeat 3
    python benchmarks/loader_throughput.py --graph /path/to/folder --batches 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

PEERS_DIR = Path(
    os.environ.get("GNNSYS_PEERS_DIR", Path(__file__).resolve().parents[2] / "shared" / "peers")
)
HETERO_PEERS_DIR = Path(__file__).resolve().parent / "peers"
HETERO_NAMES = ("tiny-mag", "mini-mag", "mag")
PEER_PYTHON = {
    "pyg": Path(os.environ.get("GNNSYS_PEER_PYG", "/tmp/gnnsys-peers/pyg/bin/python")),
    "dgl": Path(os.environ.get("GNNSYS_PEER_DGL", "/tmp/gnnsys-peers/dgl/bin/python")),
}
PEER_PYTHON["graphbolt"] = PEER_PYTHON["dgl"]
DEFAULT_SEEDS = 200_000  # the peers' default seed count (random nodes, seed 0)


def emit(obj: Dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


# ---------------------------------------------------------------------- the graph folder
def resolve_folder(graph: str) -> Path:
    """A folder in the peers' format (src, dst, x, y, train_idx .npy) for ``graph``.

    A synthetic name (``rmat20``, ``synthetic:mini``) is generated once and written under the
    gnnsys cache; its train_idx is the peers' default (200k random nodes, seed 0, or all).
    """
    path = Path(graph).expanduser()
    if path.is_dir():
        return path
    name = graph.split(":", 1)[1] if graph.startswith("synthetic:") else graph
    from gnnsys.datasets import default_root, synthetic

    folder = default_root() / "bench" / f"{name}-seed0"
    if (folder / "train_idx.npy").is_file():
        return folder
    ds = synthetic(name, seed=0)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    g = ds.graph
    deg = (g.indptr[1:] - g.indptr[:-1]).numpy()
    np.save(tmp / "src.npy", g.indices.numpy().astype(np.int64))
    np.save(tmp / "dst.npy", np.repeat(np.arange(g.num_nodes, dtype=np.int64), deg))
    np.save(tmp / "x.npy", np.ascontiguousarray(ds.x.numpy(), dtype=np.float32))
    np.save(tmp / "y.npy", ds.y.numpy().astype(np.int64))
    n = g.num_nodes
    np.save(tmp / "train_idx.npy", np.random.default_rng(0).permutation(n)[: min(DEFAULT_SEEDS, n)])
    try:
        os.rename(tmp, folder)
    except OSError:  # another run got there first
        pass
    return folder


def load(folder: Path) -> Dict[str, np.ndarray]:
    """The arrays, read fully into memory (as the peers read them)."""
    g = {k: np.load(folder / f"{k}.npy") for k in ("src", "dst", "x", "y")}
    path = folder / "train_idx.npy"
    if path.is_file():
        g["train_idx"] = np.load(path)
    else:
        n = g["x"].shape[0]
        g["train_idx"] = np.random.default_rng(0).permutation(n)[: min(DEFAULT_SEEDS, n)]
    return g


# ---------------------------------------------------------------------- timing
def time_iter(make_iter, batches: int, warmup: int, count_nodes) -> Dict[str, float]:
    """Time ``batches`` items of a (restartable) iterator after ``warmup`` items."""
    it = make_iter()
    done = 0

    def take():
        nonlocal it
        try:
            return next(it)
        except StopIteration:  # a short epoch: keep going with the next one
            it = make_iter()
            return next(it)

    for _ in range(warmup):
        take()
    t0 = time.perf_counter()
    nodes = 0
    for _ in range(batches):
        nodes += count_nodes(take())
        done += 1
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "nodes": nodes}


def run_gnnsys(arrays, args, data, graph) -> List[Dict[str, Any]]:
    from gnnsys.features import FeatureStore
    from gnnsys.loaders import Loader, NeighborSampler
    from gnnsys.loaders.pyg import NeighborLoader

    fanout = [int(f) for f in args.fanout.split(",")]
    seeds = torch.from_numpy(arrays["train_idx"])
    rows = []
    extra = {"num_threads": args.threads} if args.threads else {}

    pyg_loader = NeighborLoader(data, num_neighbors=fanout, input_nodes=seeds,
                                batch_size=args.batch_size, shuffle=True, seed=0, **extra)  # fmt: skip

    def pyg_count(b):
        assert b.x.shape[0] == b.n_id.numel() and b.y.shape[0] == b.n_id.numel()
        return b.n_id.numel()

    r = time_iter(lambda: iter(pyg_loader), args.batches, args.warmup, pyg_count)
    rows.append(_row("gnnsys", "pyg", "gnnsys.loaders.pyg.NeighborLoader", args, r,
                     pyg_loader.loader.num_threads))  # fmt: skip

    store = FeatureStore(x=torch.from_numpy(arrays["x"]), y=torch.from_numpy(arrays["y"]))
    dgl_loader = Loader(NeighborSampler(graph, fanout, semantics="dgl"), seeds,
                        batch_size=args.batch_size, shuffle=True, seed=0, features=store,
                        labels="y", **extra)  # fmt: skip

    def dgl_count(b):
        assert b.x.shape[0] == b.subgraph.nodes.numel() and b.y.shape[0] == b.seeds.numel()
        return b.subgraph.nodes.numel()

    r = time_iter(lambda: iter(dgl_loader), args.batches, args.warmup, dgl_count)
    rows.append(_row("gnnsys", "dgl", "Loader+NeighborSampler(semantics='dgl')", args, r,
                     dgl_loader.num_threads))  # fmt: skip
    return rows


def _row(system, semantics, api, args, r, threads) -> Dict[str, Any]:
    return {
        "system": system,
        "semantics": semantics,
        "api": api,
        "threads": threads,
        "batch_size": args.batch_size,
        "fanout": args.fanout,
        "batches": args.batches,
        "seconds": round(r["seconds"], 4),
        "batches_per_s": round(args.batches / r["seconds"], 3),
        "seeds_per_s": round(args.batches * args.batch_size / r["seconds"], 1),
        "sampled_nodes_per_batch": round(r["nodes"] / args.batches, 1),
    }


def run_peer(
    name: str, folder: Path, args, hetero: bool = False, script: Optional[str] = None
) -> Dict[str, Any]:
    """Run peer ``name``'s script (``script``: another one of benchmarks/peers) on ``folder``
    in its environment; its JSON row, or a row saying why it was skipped."""
    python = PEER_PYTHON[name]
    if script is not None:
        path = HETERO_PEERS_DIR / script
    elif hetero:
        path = HETERO_PEERS_DIR / f"hetero_{name}.py"
    else:
        path = PEERS_DIR / f"peer_{name}.py"
    if not python.exists() or not path.exists():
        missing = python if not python.exists() else path
        return {"system": name, "skipped": True, "reason": f"peer not installed: {missing}"}
    cmd = [str(python), str(path), str(folder), "--batches", str(args.batches),
           "--batch-size", str(args.batch_size), "--fanout", args.fanout]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.peer_timeout,
                              cwd=str(path.parent))  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"system": name, "skipped": True, "reason": f"timed out after {args.peer_timeout}s"}
    for line in reversed(proc.stdout.strip().splitlines()):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        return {"system": name, "semantics": name, **row}
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {
        "system": name,
        "skipped": True,
        "reason": f"exit {proc.returncode}: {' | '.join(tail)}",
    }


# ---------------------------------------------------------------------- heterogeneous graphs
def resolve_hetero_folder(name: str) -> Path:
    """The heterograph folder of benchmarks/peers/hetero_common.py for a synthetic name,
    written once under the gnnsys cache (train_idx: the paper training split)."""
    from gnnsys.datasets import default_root, synthetic

    folder = default_root() / "bench" / f"{name}-seed0"
    if (folder / "meta.json").is_file():
        return folder
    ds = synthetic(name, seed=0)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    (tmp / "edges").mkdir(parents=True, exist_ok=True)
    edges = ds.edge_index_dict
    for (s, r, d), ei in edges.items():
        np.save(tmp / "edges" / f"{s}__{r}__{d}.npy", ei.numpy().astype(np.int64))
    t = ds.target
    np.save(tmp / f"{t}_x.npy", np.ascontiguousarray(ds.x_dict[t].numpy(), dtype=np.float32))
    np.save(tmp / f"{t}_y.npy", ds.y.numpy().astype(np.int64))
    np.save(tmp / "train_idx.npy", ds.train_idx.numpy().astype(np.int64))
    meta = {"node_types": ds.num_nodes_dict, "edge_types": [list(e) for e in edges], "target": t}
    (tmp / "meta.json").write_text(json.dumps(meta))
    try:
        os.rename(tmp, folder)
    except OSError:  # another run got there first
        pass
    return folder


def load_hetero(folder: Path) -> Dict[str, Any]:
    meta = json.loads((folder / "meta.json").read_text())
    t = meta["target"]
    edges = {
        (s, r, d): torch.from_numpy(np.load(folder / "edges" / f"{s}__{r}__{d}.npy"))
        for s, r, d in meta["edge_types"]
    }
    return {
        "meta": meta,
        "edges": edges,
        "x": torch.from_numpy(np.load(folder / f"{t}_x.npy")),
        "y": torch.from_numpy(np.load(folder / f"{t}_y.npy")),
        "train_idx": torch.from_numpy(np.load(folder / "train_idx.npy")),
    }


def hetero_data(arrays: Dict[str, Any]) -> Any:
    """``load_hetero``'s arrays as a PyG ``HeteroData``: node counts, the target's ``x`` and
    ``y``, every relation's ``edge_index``."""
    from torch_geometric.data import HeteroData

    meta = arrays["meta"]
    data = HeteroData()
    for k, c in meta["node_types"].items():
        data[k].num_nodes = c
    data[meta["target"]].x, data[meta["target"]].y = arrays["x"], arrays["y"]
    for et, ei in arrays["edges"].items():
        data[et].edge_index = ei
    return data


def hetero_dgl_loader(arrays, graph, fanout: List[int], batch_size: int, **extra: Any):
    """The typed gnnsys Loader with DGL semantics over ``load_hetero``'s arrays: the target
    type's training seeds (global ids), its features and labels (``extra``: Loader keywords)."""
    from gnnsys.features import FeatureStore
    from gnnsys.loaders import Loader, NeighborSampler

    t = arrays["meta"]["target"]
    store = FeatureStore({(t, "x"): arrays["x"], (t, "y"): arrays["y"]})
    offset = int(graph.type_offsets()[graph.node_type_id(t)])
    return Loader(NeighborSampler(graph, fanout, semantics="dgl"), arrays["train_idx"] + offset,
                  batch_size=batch_size, shuffle=True, seed=0, features=store,
                  feature_names=[(t, "x")], labels=(t, "y"), **extra)  # fmt: skip


def run_gnnsys_hetero(arrays, args, data, graph) -> List[Dict[str, Any]]:
    from gnnsys.loaders.pyg import NeighborLoader

    t = arrays["meta"]["target"]
    fanout = [int(f) for f in args.fanout.split(",")]
    seeds = arrays["train_idx"]
    extra = {"num_threads": args.threads} if args.threads else {}
    rows = []
    pyg_loader = NeighborLoader(data, num_neighbors={et: fanout for et in data.edge_types},
                                input_nodes=(t, seeds), batch_size=args.batch_size, shuffle=True,
                                seed=0, **extra)  # fmt: skip

    def pyg_count(b):
        assert b[t].x.shape[0] == b[t].n_id.numel()
        return sum(b[k].n_id.numel() for k in b.node_types)

    r = time_iter(lambda: iter(pyg_loader), args.batches, args.warmup, pyg_count)
    rows.append(_row("gnnsys", "pyg", "gnnsys.loaders.pyg.NeighborLoader(HeteroData)", args, r,
                     pyg_loader.loader.num_threads))  # fmt: skip

    dgl_loader = hetero_dgl_loader(arrays, graph, fanout, args.batch_size, **extra)

    def dgl_count(b):
        assert b.y.shape[0] == b.seeds.numel()
        return b.subgraph.nodes.numel()

    r = time_iter(lambda: iter(dgl_loader), args.batches, args.warmup, dgl_count)
    rows.append(_row("gnnsys", "dgl", "Loader+NeighborSampler(typed, semantics='dgl')", args, r,
                     dgl_loader.num_threads))  # fmt: skip
    return rows


PEERS = ("pyg", "dgl", "graphbolt")


def summarize(results: Dict[str, List[Dict[str, Any]]], pairs) -> None:
    """Per system: range and median over rounds; per ratio: the range of same-round ratios;
    per gnnsys system: its ratio to the fastest peer of each round (the loader goal's measure),
    naming that peer. Ratios keep 3 decimals (with 2, 2.997 read as 3.0 against a 3x goal)."""
    for k, v in results.items():
        vals = [r["batches_per_s"] for r in v]
        emit({"system": k, "rounds": len(vals), "batches_per_s_range": [min(vals), max(vals)],
              "median_batches_per_s": round(statistics.median(vals), 3)})  # fmt: skip
    for ours, peer in pairs:
        if ours not in results or peer not in results:
            continue
        by_round = {r["round"]: r["batches_per_s"] for r in results[peer]}
        ratios = [
            round(r["batches_per_s"] / by_round[r["round"]], 3)
            for r in results[ours]
            if r["round"] in by_round
        ]
        if ratios:
            emit({"ratio": f"{ours} / {peer}", "per_round": ratios,
                  "range": [min(ratios), max(ratios)], "rounds": len(ratios)})  # fmt: skip
    fastest: Dict[Any, Tuple[float, str]] = {}  # round -> (rate, peer)
    for peer in PEERS:
        for r in results.get(peer, []):
            if r["batches_per_s"] > fastest.get(r["round"], (0.0, ""))[0]:
                fastest[r["round"]] = (r["batches_per_s"], peer)
    for ours in [k for k in results if k.startswith("gnnsys")]:
        rows = [r for r in results[ours] if r["round"] in fastest]
        if not rows:
            continue
        ratios = [round(r["batches_per_s"] / fastest[r["round"]][0], 3) for r in rows]
        emit({"ratio": f"{ours} / fastest peer", "per_round": ratios,
              "peer_per_round": [fastest[r["round"]][1] for r in rows],
              "range": [min(ratios), max(ratios)], "rounds": len(ratios)})  # fmt: skip


# ---------------------------------------------------------------------- main
def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", default="rmat20",
                   help="a folder, a synthetic name (rmat20, mini), or a heterograph "
                   "(tiny-mag, mini-mag, mag)")  # fmt: skip
    p.add_argument("--peers", action="store_true", help="also run the PyG and DGL peers")
    p.add_argument("--batches", type=int, default=50, help="timed batches per system")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", default="15,10,5", help="PyG order: first hop first")
    p.add_argument("--threads", type=int, default=0, help="gnnsys loader threads (0: all)")
    p.add_argument("--repeat", type=int, default=1, help="rounds (systems interleaved); medians")
    p.add_argument("--peer-timeout", type=int, default=900)
    args = p.parse_args(argv)
    for name in ("batches", "batch_size", "repeat"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")

    if args.graph in HETERO_NAMES:
        return _main_hetero(args)
    from torch_geometric.data import Data

    from gnnsys.loaders.pyg import _cached_graph

    t0 = time.perf_counter()
    folder = resolve_folder(args.graph)
    arrays = load(folder)
    n = arrays["x"].shape[0]
    edge_index = torch.stack([torch.from_numpy(arrays["src"]), torch.from_numpy(arrays["dst"])])
    data = Data(x=torch.from_numpy(arrays["x"]), y=torch.from_numpy(arrays["y"]),
                edge_index=edge_index, num_nodes=n)  # fmt: skip
    graph = _cached_graph(data, n, None, "benchmark")  # built once, shared by both rows
    emit({"graph": str(folder), "num_nodes": n, "num_edges": int(edge_index.shape[1]),
          "feature_dim": int(arrays["x"].shape[1]), "seeds": int(arrays["train_idx"].size),
          "setup_seconds": round(time.perf_counter() - t0, 1),
          "cpu_count": os.cpu_count(), "torch": torch.__version__})  # fmt: skip

    results: Dict[str, List[Dict[str, Any]]] = {}
    for rnd in range(args.repeat):
        for row in run_gnnsys(arrays, args, data, graph):
            row["round"] = rnd
            emit(row)
            results.setdefault(f"gnnsys-{row['semantics']}", []).append(row)
        if args.peers:
            for peer in PEERS:
                row = run_peer(peer, folder, args)
                row["round"] = rnd
                emit(row)
                if not row.get("skipped"):
                    results.setdefault(peer, []).append(row)
    pairs = [("gnnsys-pyg", "pyg"), ("gnnsys-dgl", "dgl"), ("gnnsys-pyg", "dgl"),
             ("gnnsys-dgl", "graphbolt")]  # fmt: skip
    summarize(results, pairs)
    return 0


def _main_hetero(args) -> int:
    from gnnsys.graph import Graph

    t0 = time.perf_counter()
    folder = resolve_hetero_folder(args.graph)
    arrays = load_hetero(folder)
    meta = arrays["meta"]
    data = hetero_data(arrays)
    graph = Graph.from_hetero(arrays["edges"], meta["node_types"])
    emit({"graph": str(folder), "num_nodes": meta["node_types"],
          "num_edges": int(graph.num_edges), "edge_types": len(meta["edge_types"]),
          "feature_dim": int(arrays["x"].shape[1]), "seeds": int(arrays["train_idx"].numel()),
          "setup_seconds": round(time.perf_counter() - t0, 1), "cpu_count": os.cpu_count(),
          "torch": torch.__version__})  # fmt: skip
    results: Dict[str, List[Dict[str, Any]]] = {}
    for rnd in range(args.repeat):
        for row in run_gnnsys_hetero(arrays, args, data, graph):
            row["round"] = rnd
            emit(row)
            results.setdefault(f"gnnsys-{row['semantics']}", []).append(row)
        if args.peers:
            for peer in PEERS:
                row = run_peer(peer, folder, args, hetero=True)
                row["round"] = rnd
                emit(row)
                if not row.get("skipped"):
                    results.setdefault(peer, []).append(row)
    pairs = [("gnnsys-pyg", "pyg"), ("gnnsys-dgl", "dgl"), ("gnnsys-dgl", "graphbolt"),
             ("gnnsys-pyg", "dgl")]  # fmt: skip
    summarize(results, pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

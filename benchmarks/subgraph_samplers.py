"""Whole-subgraph sampler batches/s (ShaDow-KHop, Cluster-GCN, GraphSAINT random walks):
gnnsys's DGL and PyG fronts against DGL 2.1's and PyG 2.8's own, in the peer's environment so
that both sides hand out the same objects (real DGL graphs, PyG ``Batch``es), rounds
interleaved.

ShaDow: a batch is the subgraph induced by the seeds' sampled k-hop neighbourhood, DGL's one
union subgraph per batch (homogeneous graphs and heterographs), PyG's one subgraph per seed side
by side (homogeneous only, as PyG's). Cluster-GCN: ``--batch-size`` METIS parts of ``--parts``
a batch (each side partitions with its own METIS before timing). GraphSAINT: ``--batch-size``
uniform roots, walks of ``--walk-length``. Node features are gathered into the batch on both
sides. Prints one JSON line per (round, system), then a summary with the range over the rounds
of gnnsys / peer batches/s and the nodes and edges per batch of each side (a peer that cannot
run the sampler, e.g. PyG's ``ClusterData`` without METIS in torch-sparse, is reported
skipped, with its error).

Usage (from the repository root; the peer environments come from ../shared/peers/setup.sh):
    /tmp/gnnsys-peers/dgl/bin/python benchmarks/subgraph_samplers.py --peer dgl --graph products
    /tmp/gnnsys-peers/dgl/bin/python benchmarks/subgraph_samplers.py --peer dgl --graph mini-mag
    /tmp/gnnsys-peers/dgl/bin/python benchmarks/subgraph_samplers.py --peer dgl --sampler cluster
    /tmp/gnnsys-peers/pyg/bin/python benchmarks/subgraph_samplers.py --peer pyg --sampler saint
    python benchmarks/subgraph_samplers.py --peer none --graph tiny --rounds 1 --batches 3
``--peer none`` runs gnnsys's two fronts alone (gnnsys's own batch types where DGL is absent).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # gnnsys from this checkout inside a peer environment
from interleaved import WARMUP, print_summary, rate, run_rounds  # noqa: E402
from loader_throughput import (  # noqa: E402
    HETERO_NAMES,
    load,
    load_hetero,
    resolve_folder,
    resolve_hetero_folder,
)


# ---------------------------------------------------------------------- DGL semantics
def dgl_count(batch: Any) -> tuple:
    if isinstance(batch, (tuple, list)):  # ShaDow: (input_nodes, output_nodes, subgraph)
        inp, _, sub = batch
        n = sum(v.numel() for v in inp.values()) if isinstance(inp, dict) else inp.numel()
        return n, int(sub.num_edges())
    return int(batch.num_nodes()), int(batch.num_edges())  # Cluster-GCN, SAINT: the subgraph


def dgl_graph(args: Any) -> tuple:
    """(graph, seeds, prefetched feature names): a DGL graph with ``--peer dgl``, else a
    gnnsys Graph (what gnnsys's DGL front also takes)."""
    hetero = args.graph in HETERO_NAMES
    if hetero:
        if args.sampler != "shadow":
            raise SystemExit(f"{args.sampler}: DGL's sampler is homogeneous only (ShaDow is not)")
        a = load_hetero(resolve_hetero_folder(args.graph))
        t = a["meta"]["target"]
        data = {et: (e[0], e[1]) for et, e in a["edges"].items()}
        nodes, feats, seeds = a["meta"]["node_types"], {t: ["feat"]}, {t: a["train_idx"]}
    else:
        a = {k: torch.from_numpy(v) for k, v in load(resolve_folder(args.graph)).items()}
        data, feats, seeds = (a["src"], a["dst"]), ["feat"], a["train_idx"]
    if args.peer == "dgl":
        import dgl

        if hetero:
            g = dgl.heterograph(data, num_nodes_dict=nodes)
            g.nodes[t].data["feat"] = a["x"]
        else:
            g = dgl.graph(data, num_nodes=int(a["x"].shape[0]))
            g.ndata["feat"] = a["x"]
        return g, seeds, feats
    from gnnsys.graph import Graph

    if hetero:
        g = Graph.from_hetero({et: torch.stack(e) for et, e in data.items()}, nodes)
        g.ndata[(t, "feat")] = a["x"]
    else:
        g = Graph.from_edge_index(torch.stack(data), int(a["x"].shape[0]))
        g.ndata["feat"] = a["x"]
    return g, seeds, feats


def dgl_samplers(lib: Any, g: Any, args: Any, feats: Any) -> tuple:
    """(sampler, DataLoader indices, batch size) of ``lib`` (gnnsys's DGL front or
    ``dgl.dataloading``) for ``--sampler``, built (and Cluster-GCN's partition computed)
    before any timing."""
    if args.sampler == "shadow":
        fanouts = [int(f) for f in args.fanout.split(",")]
        return lib.ShaDowKHopSampler(fanouts, prefetch_node_feats=feats), None, args.batch_size
    if args.sampler == "cluster":
        # a fresh partition cache file each (DGL's sampler takes no None)
        cache = os.path.join(tempfile.mkdtemp(prefix="subgraph_samplers_"), "parts.pkl")
        sampler = lib.ClusterGCNSampler(g, args.parts, cache_path=cache, prefetch_ndata=feats)
        return sampler, torch.arange(args.parts), args.batch_size
    budget, steps = (args.batch_size, args.walk_length), torch.arange(args.batches + WARMUP)
    return lib.SAINTSampler("walk", budget, prefetch_ndata=feats), steps, 1


def dgl_runs(args: Any) -> Dict[str, Callable[[int], Dict]]:
    """{system: run(round)}: gnnsys's DGL front (real DGL graphs when dgl imports, gnnsys's
    PairGraph otherwise) and DGL's own, on the same graph, seeds and settings."""
    from gnnsys.loaders import dgl as ours

    g, seeds, feats = dgl_graph(args)
    block = {"block_type": "dgl" if args.peer == "dgl" else "gnnsys"}
    mine, idx, bs = dgl_samplers(ours, g, args, feats)
    idx = seeds if idx is None else idx

    def our_loader(r: int) -> Any:
        return ours.DataLoader(g, idx, mine, batch_size=bs, shuffle=True, seed=r, **block)

    runs = {"gnnsys": lambda r: rate(our_loader(r), args.batches, dgl_count)}
    if args.peer == "dgl":
        import dgl

        theirs, _, _ = dgl_samplers(dgl.dataloading, g, args, feats)

        def dgl_loader() -> Any:
            return dgl.dataloading.DataLoader(g, idx, theirs, batch_size=bs, shuffle=True)

        runs["dgl"] = lambda r: rate(dgl_loader(), args.batches, dgl_count)
    return runs


# ---------------------------------------------------------------------- PyG semantics
def pyg_count(batch: Any) -> tuple:
    return int(batch.num_nodes), int(batch.edge_index.shape[1])


def pyg_loaders(lib: Any, data: Any, seeds: torch.Tensor, args: Any) -> Callable[[], Any]:
    """A maker of ``lib``'s (gnnsys's PyG front or ``torch_geometric.loader``) loader for
    ``--sampler`` (Cluster-GCN's partition computed here, before any timing)."""
    if args.sampler == "shadow":
        fanouts = {int(f) for f in args.fanout.split(",")}
        depth, k = len(args.fanout.split(",")), fanouts.pop()
        return lambda: lib.ShaDowKHopSampler(data, depth=depth, num_neighbors=k, node_idx=seeds,
                                             batch_size=args.batch_size, shuffle=True)  # fmt: skip
    if args.sampler == "cluster":
        parts = lib.ClusterData(data, args.parts)
        return lambda: lib.ClusterLoader(parts, batch_size=args.batch_size, shuffle=True)
    return lambda: lib.GraphSAINTRandomWalkSampler(data, batch_size=args.batch_size,
                                                   walk_length=args.walk_length,
                                                   num_steps=args.batches + WARMUP)  # fmt: skip


def pyg_runs(args: Any) -> Dict[str, Callable[[int], Dict]]:
    """gnnsys's PyG front and (``--peer pyg``: needs torch-sparse, and METIS in it for
    Cluster-GCN) PyG's own. ShaDow: ``depth`` hops of ``num_neighbors`` each (PyG takes one
    fanout for every hop)."""
    from torch_geometric.data import Data

    from gnnsys.loaders import pyg as ours

    if args.graph in HETERO_NAMES:
        raise SystemExit(f"PyG's {args.sampler} sampler is homogeneous only: pick another --graph")
    if args.sampler == "shadow" and len(set(args.fanout.split(","))) != 1:
        raise SystemExit(f"PyG's ShaDowKHopSampler takes one fanout for every hop: {args.fanout}")
    a = {k_: torch.from_numpy(v) for k_, v in load(resolve_folder(args.graph)).items()}
    data = Data(x=a["x"], edge_index=torch.stack([a["src"], a["dst"]]), num_nodes=a["x"].shape[0])
    seeds = a["train_idx"]
    mine = pyg_loaders(ours, data, seeds, args)

    def seeded(make: Callable[[], Any], r: int) -> Any:
        torch.manual_seed(r)
        return make()

    runs = {"gnnsys": lambda r: rate(seeded(mine, r), args.batches, pyg_count)}
    if args.peer == "pyg":
        import torch_geometric.loader as theirs_lib

        try:
            theirs = pyg_loaders(theirs_lib, data, seeds, args)
        except ImportError as err:  # e.g. ClusterData without METIS in torch-sparse
            reason = str(err)
            runs["pyg"] = lambda r: {"skipped": True, "reason": reason}
        else:
            runs["pyg"] = lambda r: rate(seeded(theirs, r), args.batches, pyg_count)
    return runs


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peer", choices=("dgl", "pyg", "none"), default="dgl")
    p.add_argument("--sampler", choices=("shadow", "cluster", "saint"), default="shadow")
    p.add_argument("--front", choices=("dgl", "pyg"), default=None,
                   help="which gnnsys front (default: the peer's; dgl with --peer none)")  # fmt: skip
    p.add_argument("--graph", default="mini", help="a saved folder, a synthetic name, or mini-mag")
    p.add_argument("--fanout", default="5,5", help="per hop, first hop first")
    p.add_argument("--batch-size", type=int, default=None,
                   help="ShaDow: seeds (512); cluster: parts a batch (10); saint: walk roots "
                   "(3000)")  # fmt: skip
    p.add_argument("--parts", type=int, default=100, help="Cluster-GCN's METIS parts")
    p.add_argument("--walk-length", type=int, default=2, help="GraphSAINT's random walks")
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = {"shadow": 512, "cluster": 10, "saint": 3000}[args.sampler]
    if args.threads:
        torch.set_num_threads(args.threads)
    front = args.front or ("pyg" if args.peer == "pyg" else "dgl")
    if {front, args.peer} == {"dgl", "pyg"}:
        raise SystemExit("--front and --peer name different libraries")
    runs = (dgl_runs if front == "dgl" else pyg_runs)(args)
    common = {"graph": args.graph, "front": front, "sampler": args.sampler,
              "fanout": args.fanout if args.sampler == "shadow" else None,
              "parts": args.parts if args.sampler == "cluster" else None,
              "walk_length": args.walk_length if args.sampler == "saint" else None,
              "batch_size": args.batch_size, "batches": args.batches,
              "threads": torch.get_num_threads()}  # fmt: skip
    result = run_rounds(runs, args.rounds, common)
    print_summary(
        "subgraph_samplers", result, common, args.rounds, "benchmarks/subgraph_samplers.py", argv
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Link-prediction loader batches/s: gnnsys's PyG ``LinkNeighborLoader`` and DGL
``as_edge_prediction_sampler`` drop-ins against PyG 2.8's and DGL 2.1's own, in the peer's
environment so that both sides hand out the same objects (PyG ``Data``, DGL blocks), rounds
interleaved.

A batch is ``--batch-size`` positive edges (drawn from ``--edges`` random edges of the graph,
seed 0) with one uniform negative each (PyG: ``neg_sampling="binary"`` at ratio 1, DGL:
``negative_sampler.Uniform(1)``), then neighbour sampling (``--fanout``, first hop first)
around every endpoint; node features are gathered into the batch on both sides. Prints one
JSON line per (round, system), then a summary with the range over the rounds of gnnsys / peer
batches/s and the input nodes and edges per batch of each side.

Usage (from the repository root; the peer environments come from ../shared/peers/setup.sh):
    /tmp/gnnsys-peers/pyg/bin/python benchmarks/link_loaders.py --peer pyg --graph products
    /tmp/gnnsys-peers/dgl/bin/python benchmarks/link_loaders.py --peer dgl --graph products
    python benchmarks/link_loaders.py --peer none --graph tiny --rounds 1 --batches 3
``--peer none`` runs gnnsys's two fronts alone (gnnsys's own blocks where DGL is absent).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # gnnsys from this checkout inside a peer environment
from interleaved import print_summary, rate, run_rounds  # noqa: E402
from loader_throughput import load, resolve_folder  # noqa: E402


def edge_seeds(num_edges: int, count: int) -> torch.Tensor:
    """``count`` distinct random edge ids (seed 0), the same on both sides."""
    count = min(count, num_edges)
    return torch.from_numpy(np.random.default_rng(0).permutation(num_edges)[:count])


# ---------------------------------------------------------------------- PyG semantics
def pyg_count(batch: Any) -> tuple:
    return int(batch.num_nodes), int(batch.edge_index.shape[1])


def pyg_runs(args: Any, a: Dict[str, torch.Tensor]) -> Dict[str, Callable[[int], Dict]]:
    """gnnsys's PyG front and (``--peer pyg``: needs pyg-lib or torch-sparse) PyG's own."""
    from torch_geometric.data import Data

    from gnnsys.loaders import pyg as ours

    ei = torch.stack([a["src"], a["dst"]])
    data = Data(x=a["x"], edge_index=ei, num_nodes=a["x"].shape[0])
    label_index = ei[:, edge_seeds(ei.shape[1], args.edges)]
    fanout = [int(f) for f in args.fanout.split(",")]

    def loader(lib: Any, r: int) -> Any:
        torch.manual_seed(r)
        return lib.LinkNeighborLoader(data, num_neighbors=fanout, edge_label_index=label_index,
                                      neg_sampling="binary", batch_size=args.batch_size,
                                      shuffle=True)  # fmt: skip

    runs = {"gnnsys": lambda r: rate(loader(ours, r), args.batches, pyg_count)}
    if args.peer == "pyg":
        import torch_geometric.loader as theirs

        runs["pyg"] = lambda r: rate(loader(theirs, r), args.batches, pyg_count)
    return runs


# ---------------------------------------------------------------------- DGL semantics
def dgl_count(batch: Any) -> tuple:
    inp, blocks = batch[0], batch[-1]
    return int(inp.numel()), sum(int(b.num_edges()) for b in blocks)


def dgl_runs(args: Any, a: Dict[str, torch.Tensor]) -> Dict[str, Callable[[int], Dict]]:
    """gnnsys's DGL front (real DGL blocks when dgl imports, gnnsys's otherwise) and DGL's
    own: ``as_edge_prediction_sampler(NeighborSampler(...), negative_sampler=Uniform(1))``."""
    from gnnsys.loaders import dgl as ours

    n = int(a["x"].shape[0])
    fanout = [int(f) for f in args.fanout.split(",")][::-1]  # DGL lists the input layer first
    if args.peer == "dgl":
        import dgl

        g = dgl.graph((a["src"], a["dst"]), num_nodes=n)
        g.ndata["feat"] = a["x"]
    else:
        from gnnsys.graph import Graph

        g = Graph.from_edge_index(torch.stack([a["src"], a["dst"]]), n)
        g.ndata["feat"] = a["x"]
    eids = edge_seeds(int(a["src"].shape[0]), args.edges)
    block = {"block_type": "dgl" if args.peer == "dgl" else "gnnsys"}

    def sampler(lib: Any) -> Any:
        base = lib.NeighborSampler(fanout, prefetch_node_feats=["feat"])
        neg = lib.negative_sampler.Uniform(1)
        return lib.as_edge_prediction_sampler(base, negative_sampler=neg)

    mine = sampler(ours)
    runs = {
        "gnnsys": lambda r: rate(
            ours.DataLoader(
                g, eids, mine, batch_size=args.batch_size, shuffle=True, seed=r, **block
            ),
            args.batches,
            dgl_count,
        )  # fmt: skip
    }
    if args.peer == "dgl":
        theirs = sampler(dgl.dataloading)
        runs["dgl"] = lambda r: rate(dgl.dataloading.DataLoader(g, eids, theirs,
                                                                batch_size=args.batch_size,
                                                                shuffle=True),
                                     args.batches, dgl_count)  # fmt: skip
    return runs


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peer", choices=("dgl", "pyg", "none"), default="pyg")
    p.add_argument("--front", choices=("dgl", "pyg"), default=None,
                   help="which gnnsys front (default: the peer's; pyg with --peer none)")  # fmt: skip
    p.add_argument("--graph", default="mini", help="a saved folder or a synthetic name")
    p.add_argument("--fanout", default="15,10", help="per hop, first hop first")
    p.add_argument("--batch-size", type=int, default=1024, help="positive edges a batch")
    p.add_argument("--edges", type=int, default=200_000, help="edges to draw batches from")
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    front = args.front or ("dgl" if args.peer == "dgl" else "pyg")
    if {front, args.peer} == {"dgl", "pyg"}:
        raise SystemExit("--front and --peer name different libraries")
    a = {k: torch.from_numpy(v) for k, v in load(resolve_folder(args.graph)).items()}
    runs = (dgl_runs if front == "dgl" else pyg_runs)(args, a)
    common = {"graph": args.graph, "front": front, "fanout": args.fanout,
              "batch_size": args.batch_size, "edges": args.edges, "batches": args.batches,
              "threads": torch.get_num_threads()}  # fmt: skip
    result = run_rounds(runs, args.rounds, common)
    print_summary("link_loaders", result, common, args.rounds, "benchmarks/link_loaders.py", argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())

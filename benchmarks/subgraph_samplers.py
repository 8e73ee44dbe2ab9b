"""ShaDow-KHop subgraph batches/s: gnnsys's DGL and PyG fronts against DGL 2.1's and PyG 2.8's
own ``ShaDowKHopSampler``, in the peer's environment so that both sides hand out the same
objects (real DGL graphs, PyG ``Batch``es), rounds interleaved.

A batch is the subgraph induced by the seeds' sampled k-hop neighbourhood: DGL's one union
subgraph per batch (homogeneous graphs and heterographs), PyG's one subgraph per seed side by
side (homogeneous only, as PyG's). Node features are gathered into the batch on both sides.
Prints one JSON line per (round, system), then a summary with the range over the rounds of
gnnsys / peer batches/s, and the nodes and edges per batch of each side.

Usage (from the repository root; the peer environments come from ../shared/peers/setup.sh):
    /tmp/gnnsys-peers/dgl/bin/python benchmarks/subgraph_samplers.py --peer dgl --graph products
    /tmp/gnnsys-peers/dgl/bin/python benchmarks/subgraph_samplers.py --peer dgl --graph mini-mag
    /tmp/gnnsys-peers/pyg/bin/python benchmarks/subgraph_samplers.py --peer pyg --graph products \\
        --fanout 5,5 --batch-size 64
    python benchmarks/subgraph_samplers.py --peer none --graph tiny --rounds 1 --batches 3
``--peer none`` runs gnnsys's two fronts alone (gnnsys's own batch types where DGL is absent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # gnnsys from this checkout inside a peer environment
from loader_throughput import (  # noqa: E402
    HETERO_NAMES,
    load,
    load_hetero,
    resolve_folder,
    resolve_hetero_folder,
)

WARMUP = 3


def rate(make_iter: Callable[[], Any], batches: int, count: Callable[[Any], tuple]) -> Dict:
    """batches/s over ``batches`` items after ``WARMUP``, and the mean (nodes, edges) a batch;
    a short epoch restarts the iterator."""
    it = make_iter()

    def take():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = make_iter()
            return next(it)

    for _ in range(WARMUP):
        take()
    nodes = edges = 0
    t0 = time.perf_counter()
    for _ in range(batches):
        n, e = count(take())
        nodes += n
        edges += e
    s = time.perf_counter() - t0
    return {"batches_per_s": round(batches / s, 3), "nodes_per_batch": round(nodes / batches, 1),
            "edges_per_batch": round(edges / batches, 1)}  # fmt: skip


# ---------------------------------------------------------------------- DGL semantics
def dgl_count(batch: Any) -> tuple:
    inp, _, sub = batch
    n = sum(v.numel() for v in inp.values()) if isinstance(inp, dict) else inp.numel()
    return n, int(sub.num_edges())


def dgl_runs(args: Any) -> Dict[str, Callable[[int], Dict]]:
    """{system: run(round)}: gnnsys's DGL front (real DGL graphs when dgl imports, gnnsys's
    PairGraph otherwise) and DGL's own, on the same graph, seeds and fanouts."""
    from gnnsys.loaders import dgl as ours

    fanouts = [int(f) for f in args.fanout.split(",")]
    hetero = args.graph in HETERO_NAMES
    if hetero:
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
    else:
        from gnnsys.graph import Graph

        if hetero:
            g = Graph.from_hetero({et: torch.stack(e) for et, e in data.items()}, nodes)
            g.ndata[(t, "feat")] = a["x"]
        else:
            g = Graph.from_edge_index(torch.stack(data), int(a["x"].shape[0]))
            g.ndata["feat"] = a["x"]
    block = "dgl" if args.peer == "dgl" else "gnnsys"
    mine = ours.ShaDowKHopSampler(fanouts, prefetch_node_feats=feats)

    def our_loader(r: int) -> Any:
        return iter(ours.DataLoader(g, seeds, mine, batch_size=args.batch_size, shuffle=True,
                                    seed=r, block_type=block))  # fmt: skip

    runs = {"gnnsys": lambda r: rate(lambda: our_loader(r), args.batches, dgl_count)}
    if args.peer == "dgl":
        theirs = dgl.dataloading.ShaDowKHopSampler(fanouts, prefetch_node_feats=feats)

        def dgl_loader() -> Any:
            return iter(dgl.dataloading.DataLoader(g, seeds, theirs, batch_size=args.batch_size,
                                                   shuffle=True))  # fmt: skip

        runs["dgl"] = lambda r: rate(dgl_loader, args.batches, dgl_count)
    return runs


# ---------------------------------------------------------------------- PyG semantics
def pyg_count(batch: Any) -> tuple:
    return int(batch.num_nodes), int(batch.edge_index.shape[1])


def pyg_runs(args: Any) -> Dict[str, Callable[[int], Dict]]:
    """gnnsys's PyG front and (``--peer pyg``: needs torch-sparse) PyG's own: ``depth`` hops
    of ``num_neighbors`` each (PyG takes one fanout for every hop)."""
    from torch_geometric.data import Data

    from gnnsys.loaders import pyg as ours

    if args.graph in HETERO_NAMES:
        raise SystemExit("PyG's ShaDowKHopSampler is homogeneous only: pick another --graph")
    fanouts = {int(f) for f in args.fanout.split(",")}
    if len(fanouts) != 1:
        raise SystemExit(f"PyG's ShaDowKHopSampler takes one fanout for every hop: {args.fanout}")
    depth, k = len(args.fanout.split(",")), fanouts.pop()
    a = {k_: torch.from_numpy(v) for k_, v in load(resolve_folder(args.graph)).items()}
    data = Data(x=a["x"], edge_index=torch.stack([a["src"], a["dst"]]), num_nodes=a["x"].shape[0])
    seeds = a["train_idx"]

    def loader(cls: Any, r: int) -> Any:
        torch.manual_seed(r)
        return iter(cls(data, depth=depth, num_neighbors=k, node_idx=seeds,
                        batch_size=args.batch_size, shuffle=True))  # fmt: skip

    runs = {"gnnsys": lambda r: rate(lambda: loader(ours.ShaDowKHopSampler, r), args.batches,
                                     pyg_count)}  # fmt: skip
    if args.peer == "pyg":
        from torch_geometric.loader import ShaDowKHopSampler as theirs

        runs["pyg"] = lambda r: rate(lambda: loader(theirs, r), args.batches, pyg_count)
    return runs


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peer", choices=("dgl", "pyg", "none"), default="dgl")
    p.add_argument("--front", choices=("dgl", "pyg"), default=None,
                   help="which gnnsys front (default: the peer's; dgl with --peer none)")  # fmt: skip
    p.add_argument("--graph", default="mini", help="a saved folder, a synthetic name, or mini-mag")
    p.add_argument("--fanout", default="5,5", help="per hop, first hop first")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    front = args.front or ("pyg" if args.peer == "pyg" else "dgl")
    if {front, args.peer} == {"dgl", "pyg"}:
        raise SystemExit("--front and --peer name different libraries")
    runs = (dgl_runs if front == "dgl" else pyg_runs)(args)
    common = {"graph": args.graph, "front": front, "fanout": args.fanout,
              "batch_size": args.batch_size, "batches": args.batches,
              "threads": torch.get_num_threads()}  # fmt: skip
    by: Dict[str, List[Dict]] = {}
    for r in range(args.rounds):
        for system, run in runs.items():  # interleaved: gnnsys, then the peer, each round
            row = {"round": r, "system": system, **common, **run(r)}
            by.setdefault(system, []).append(row)
            print(json.dumps(row), flush=True)
    summary: Dict[str, Any] = {"summary": "subgraph_samplers", **common, "rounds": args.rounds}
    peer = next((s for s in by if s != "gnnsys"), None)
    if peer:
        vals = [x["batches_per_s"] / y["batches_per_s"] for x, y in zip(by["gnnsys"], by[peer])]
        summary[f"gnnsys_over_{peer}_batches_per_s"] = [round(min(vals), 3), round(max(vals), 3)]
    for system, rows in by.items():
        for field in ("batches_per_s", "nodes_per_batch", "edges_per_batch"):
            vals = [row[field] for row in rows]
            summary[f"{system}_{field}"] = [min(vals), max(vals)]
    summary["command"] = "python benchmarks/subgraph_samplers.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

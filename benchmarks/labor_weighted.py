"""Weighted LABOR side by side with DGL 2.1: edges kept per destination and per edge.

Both samplers' random numbers differ, so this compares statistics over ``--draws`` batches of
``LaborSampler([fanout], prob="w", importance_sampling=i)`` on one random graph (edges given
in CSC order, where DGL reads the weights by CSC position; ``--unsorted`` gives them in random
order to show what DGL then reads): mean kept edges per destination (all, and of positive
weight), the largest per-edge keep-frequency gap between the two, and how often zero-weight
edges were kept. Needs dgl (the env of ``../shared/peers/setup.sh dgl``). Prints one JSON
line per importance setting after a line describing the run.

Usage:
    python benchmarks/labor_weighted.py --draws 300 --importance-sampling 0,1
"""

from __future__ import annotations

import argparse
import json
from typing import List, Optional

import numpy as np
import torch


def keep_stats(mod, g, seeds, fanout, iters, draws, gnnsys: bool):
    """(kept edges per destination [N], keep frequency per edge [E]) over ``draws`` batches."""
    import dgl

    n, e = g.num_nodes(), g.num_edges()
    counts, freq = np.zeros(n), np.zeros(e)
    for b in range(draws):
        dgl.seed(b)
        kw = {"seed": b, "block_type": "dgl"} if gnnsys else {}
        sampler = mod.LaborSampler([fanout], prob="w", importance_sampling=iters)
        loader = mod.DataLoader(g, seeds, sampler, batch_size=seeds.numel(), **kw)
        blk = next(iter(loader))[2][0]
        freq[blk.edata[dgl.EID].long().numpy()] += 1
        dst = blk.dstdata[dgl.NID][blk.edges()[1].long()]
        counts += np.bincount(dst.numpy(), minlength=n)
    return counts / draws, freq / draws


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=400)
    p.add_argument("--edges", type=int, default=6000)
    p.add_argument("--fanout", type=int, default=5)
    p.add_argument("--draws", type=int, default=300)
    p.add_argument("--importance-sampling", default="0,1")
    p.add_argument("--unsorted", action="store_true", help="edges not in CSC order")
    args = p.parse_args(argv)
    import dgl

    from gnnsys.loaders import dgl as dl

    torch.manual_seed(0)
    n, e = args.nodes, args.edges
    src, dst = torch.randint(0, n, (e,)), torch.randint(0, n, (e,))
    if not args.unsorted:
        order = torch.argsort(dst * n + src)
        src, dst = src[order], dst[order]
    g = dgl.graph((src, dst), num_nodes=n)
    w = torch.rand(e) ** 2
    w[::6] = 0.0  # every sixth edge weighs nothing
    g.edata["w"] = w
    seeds = torch.arange(0, n, 2)
    positive = (w > 0).numpy()
    print(json.dumps({"nodes": n, "edges": e, "fanout": args.fanout, "draws": args.draws,
                      "csc_order": not args.unsorted, "dgl": dgl.__version__,
                      "torch": torch.__version__}))  # fmt: skip
    for iters in (int(x) for x in args.importance_sampling.split(",")):
        ours = keep_stats(dl, g, seeds, args.fanout, iters, args.draws, True)
        theirs = keep_stats(dgl.dataloading, g, seeds, args.fanout, iters, args.draws, False)
        row = {"importance_sampling": iters}
        for name, (counts, freq) in (("gnnsys", ours), ("dgl", theirs)):
            row[f"{name}_kept_per_dst"] = round(float(counts[seeds].mean()), 3)
            row[f"{name}_positive_kept_per_dst"] = round(
                float(freq[positive].sum()) / len(seeds), 3
            )
            row[f"{name}_zero_weight_kept_per_batch"] = round(float(freq[~positive].sum()), 2)
        gap = np.abs(ours[1] - theirs[1])
        row["max_keep_frequency_gap_positive"] = round(float(gap[positive].max()), 3)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

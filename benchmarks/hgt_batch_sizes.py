"""gnnsys's ``HGTLoader`` against PyG's on the same heterograph: mean and spread of the nodes
per node type and edges per relation of a batch (the sampling law's footprint; which nodes
are drawn is random in both). Runs where PyG's ``HGTLoader`` does (torch-sparse: the PyG env
of ../shared/peers, with this repository on PYTHONPATH). One JSON line per node type and
relation, then the largest relative difference of the means.

Usage:
    PYTHONPATH=. /tmp/gnnsys-peers/pyg/bin/python benchmarks/hgt_batch_sizes.py --graph mini-mag
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loader_throughput import (  # noqa: E402
    HETERO_NAMES,
    hetero_data,
    load_hetero,
    resolve_hetero_folder,
)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", default="mini-mag", choices=HETERO_NAMES)
    p.add_argument("--num-samples", default="512,512,512,512")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=20)
    args = p.parse_args(argv)
    from torch_geometric.loader import HGTLoader as PygHGTLoader

    from gnnsys.loaders.pyg import HGTLoader

    arrays = load_hetero(resolve_hetero_folder(args.graph))
    t = arrays["meta"]["target"]
    data = hetero_data(arrays)
    seeds = arrays["train_idx"][: args.batch_size * args.batches]
    counts = [int(c) for c in args.num_samples.split(",")]
    torch.manual_seed(0)
    sizes = {}
    for name, cls, kw in (("pyg", PygHGTLoader, {}), ("gnnsys", HGTLoader, {"seed": 0})):
        loader = cls(data, num_samples=counts, input_nodes=(t, seeds),
                     batch_size=args.batch_size, **kw)  # fmt: skip
        rows = {k: [] for k in [*data.node_types, *data.edge_types]}
        for b in loader:
            for k in data.node_types:
                rows[k].append(b[k].n_id.numel())
            for et in data.edge_types:
                ei = b[et].get("edge_index")
                rows[et].append(0 if ei is None else ei.shape[1])
        sizes[name] = rows
    worst = 0.0
    for k in [*data.node_types, *data.edge_types]:
        a, b = np.array(sizes["gnnsys"][k]), np.array(sizes["pyg"][k])
        rel = abs(a.mean() - b.mean()) / max(b.mean(), 1.0)
        worst = max(worst, rel)
        print(json.dumps({"what": "nodes" if isinstance(k, str) else "edges", "type": k,
                          "gnnsys_mean": round(a.mean(), 1), "gnnsys_std": round(a.std(), 1),
                          "pyg_mean": round(b.mean(), 1), "pyg_std": round(b.std(), 1),
                          "relative_difference": round(rel, 4)}))  # fmt: skip
    print(json.dumps({"graph": args.graph, "num_samples": counts, "batch_size": args.batch_size,
                      "batches": args.batches, "max_relative_difference": round(worst, 4)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

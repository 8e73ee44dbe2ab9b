"""Host-side torch operators per batch of the Triton neighbour sampler, counted on CPU tensors.

On a GPU the Triton sampler is bound by the host work between its launches (session 24's H200
profile: 149 launches and 10.7 ms a batch, its GPU kernels under 0.5 ms), so the number of torch
operators it issues per batch is a figure of merit that needs no GPU. This runs the sampler under
``TRITON_INTERPRET=1`` on a synthetic graph and counts every aten operator dispatched from the
host code (a ``TorchDispatchMode``), excluding those the interpreter runs inside the Triton
kernels; the Triton launches are counted apart. Views (``slice``, ``select``) are counted too but
launch nothing; ``launching_ops`` leaves them out. One JSON line per relabel mode
(``_sampler_triton.RELABEL``; a tree without it has only the torch one).

Example:
    python benchmarks/sampler_host_ops.py --hops 15,10,5 --batch 1024
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"  # before Triton is imported

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gnnsys.graph import Graph  # noqa: E402
from gnnsys.loaders import NeighborSampler, SampleKey  # noqa: E402
from gnnsys.loaders import _sampler_triton as st  # noqa: E402

KERNELS = ("_count_kernel", "_draw_kernel", "_claim_kernel", "_first_kernel", "_place_kernel")
VIEWS = ("aten.slice", "aten.select", "aten.detach", "aten.lift_fresh", "aten.alias", "aten.view")


class Counter(TorchDispatchMode):
    """Counts aten operators while ``on``."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter = collections.Counter()
        self.launches = 0
        self.on = True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.on:
            self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


class Quiet:
    """A Triton kernel whose launches count once and whose interpreted insides do not."""

    def __init__(self, kernel, mode: Counter) -> None:
        self.kernel, self.mode = kernel, mode

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def run(*args, **kwargs):
            self.mode.on = False
            self.mode.launches += 1
            try:
                return launch(*args, **kwargs)
            finally:
                self.mode.on = True

        return run


def count(graph: Graph, fanouts, seeds: torch.Tensor, relabel: str, semantics: str) -> dict:
    mode = Counter()
    saved = {k: getattr(st, k) for k in KERNELS if hasattr(st, k)}
    default = getattr(st, "RELABEL", None)
    try:
        for k, v in saved.items():
            setattr(st, k, Quiet(v, mode))
        if default is not None:
            st.RELABEL = relabel
        s = NeighborSampler(graph, fanouts, backend="triton", semantics=semantics)
        s.sample(seeds, SampleKey(seed=0))  # warm-up (first-call allocations)
        mode.ops.clear()
        mode.launches = 0
        with mode:
            sub = s.sample(seeds, SampleKey(seed=0, batch=1))
    finally:
        for k, v in saved.items():
            setattr(st, k, v)
        if default is not None:
            st.RELABEL = default
    ops = sum(mode.ops.values())
    views = sum(v for k, v in mode.ops.items() if k in VIEWS)
    return {"relabel": relabel, "semantics": semantics, "torch_ops": ops,
            "launching_ops": ops - views, "triton_launches": mode.launches,
            "batch_nodes": int(sub.nodes.numel()), "batch_edges": int(sub.row.numel()),
            "by_op": dict(mode.ops.most_common())}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nodes", type=int, default=20000)
    p.add_argument("--edges", type=int, default=400000)
    p.add_argument("--hops", default="15,10,5", help="fanouts, first hop first")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--semantics", default="pyg", choices=("pyg", "dgl"))
    a = p.parse_args()
    gen = torch.Generator().manual_seed(0)
    g = Graph.from_edge_index(torch.randint(0, a.nodes, (2, a.edges), generator=gen), a.nodes)
    seeds = torch.randperm(a.nodes, generator=gen)[: a.batch]
    fanouts = [int(f) for f in a.hops.split(",")]
    modes = ["torch", "kernels"] if hasattr(st, "RELABEL") else ["torch"]
    for relabel in modes:
        row = count(g, fanouts, seeds, relabel, a.semantics)
        print(json.dumps({"bench": "sampler_host_ops", "nodes": a.nodes, "edges": a.edges,
                          "fanouts": fanouts, "batch": a.batch, **row}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

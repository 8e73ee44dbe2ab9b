"""Digests of sampled batches on fixed seeds, to prove a sampler redesign changes no result.

``digests()`` samples a fixed set of configurations (both semantics, replacement, weights,
disjoint trees, induced and bidirectional subgraphs, the hash relabel path, serial and
parallel kernels, link sampling, the PyG and DGL fronts) and returns one SHA-256 per
configuration over every array a batch carries. ``tests/data/golden_batches.json`` holds the
digests the homogeneous sampler produced before the typed core (commit 920f7bc);
``test_loaders_golden.py`` checks the current code against it.

Regenerate only on purpose: ``python tests/golden_batches.py > tests/data/golden_batches.json``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Dict, List

import numpy as np
import torch


def _graph(n: int, e: int, seed: int, weights: bool = False):
    from gnnsys.graph import Graph

    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    dst = (torch.rand(e, generator=g) ** 3 * n).long().clamp_max(n - 1)
    ei = torch.stack([src, dst])
    w = torch.rand(e, generator=g) + 0.1 if weights else None
    return ei, Graph.from_edge_index(ei, n, edge_weight=w)


def _digest(arrays: List[Any]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, (list, tuple)):
            a = np.asarray(a, dtype=np.int64)
        elif isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a)
        if a.dtype.kind in "iub":
            a = a.astype(np.int64)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _sub_arrays(sub: Any) -> List[Any]:
    out = [sub.nodes, sub.row, sub.col, sub.edge_ids, sub.num_sampled_nodes, sub.num_sampled_edges]
    if sub.batch is not None:
        out.append(sub.batch)
    for k in sorted(sub.metadata):
        v = sub.metadata[k]
        if isinstance(v, torch.Tensor):
            out.append(v)
    return out


def _sampler_cases() -> Dict[str, Callable[[], List[Any]]]:
    from gnnsys.loaders import LinkSampler, NeighborSampler, SampleKey
    from gnnsys.loaders import neighbor as neighbor_mod

    ei, g = _graph(3000, 40000, 0)
    _, gw = _graph(3000, 40000, 1, weights=True)
    small = torch.tensor([5, 0, 2999, 17, 5, 1234])
    big = torch.randperm(3000, generator=torch.Generator().manual_seed(3))[:1500]
    cases: Dict[str, Callable[[], List[Any]]] = {}

    def node_case(graph, fanouts, seeds, key, **kw):
        def run():
            sub = NeighborSampler(graph, fanouts, **kw).sample(seeds, SampleKey(*key))
            return _sub_arrays(sub)

        return run

    for sem in ("pyg", "dgl"):
        for replace in (False, True):
            for weighted in (False, True):
                graph = gw if weighted else g
                for size, seeds in (("small", small), ("big", big)):
                    name = f"node-{sem}-r{int(replace)}-w{int(weighted)}-{size}"
                    cases[name] = node_case(
                        graph, [15, 10], seeds, (7, 1, 2), replace=replace,
                        weighted=weighted, semantics=sem,
                    )  # fmt: skip
    cases["node-all-neighbours"] = node_case(g, [-1, 3], small, (1, 0, 0))
    cases["node-zero-fanout"] = node_case(g, [4, 0, 2], small, (1, 0, 5))
    cases["node-disjoint"] = node_case(g, [5, 3], small, (2, 3, 4), disjoint=True)
    cases["node-disjoint-big"] = node_case(g, [10, 5], big, (2, 3, 4), disjoint=True)
    cases["node-induced"] = node_case(g, [5, 3], small, (4, 0, 1), subgraph_type="induced")
    cases["node-bidirectional"] = node_case(
        g, [5, 3], small, (4, 0, 1), subgraph_type="bidirectional"
    )
    cases["node-unpacked"] = node_case(g, [6, 4], big, (5, 5, 5), pack_adjacency=False)

    def hash_path():
        old = neighbor_mod.DENSE_MAP_MAX_NODES
        neighbor_mod.DENSE_MAP_MAX_NODES = 0
        try:
            return node_case(g, [8, 4], big, (9, 9, 9))()
        finally:
            neighbor_mod.DENSE_MAP_MAX_NODES = old

    cases["node-hash-relabel"] = hash_path
    label_index = ei[:, :500]
    for mode in (None, "binary", "triplet"):
        for disjoint in (False, True):

            def link(mode=mode, disjoint=disjoint):
                ls = LinkSampler(g, [5, 3], label_index, neg_sampling=mode, disjoint=disjoint)
                return _sub_arrays(ls.sample(torch.arange(40, 90), SampleKey(3, 2, 1)))

            cases[f"link-{mode}-d{int(disjoint)}"] = link
    return cases


def _front_cases() -> Dict[str, Callable[[], List[Any]]]:
    from torch_geometric.data import Data

    from gnnsys.loaders import dgl as dgl_front
    from gnnsys.loaders.pyg import LinkNeighborLoader, NeighborLoader

    ei, g = _graph(2000, 20000, 11)
    x = torch.randn(2000, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(2000) % 7
    data = Data(x=x, y=y, edge_index=ei, edge_attr=torch.arange(ei.shape[1]).float())
    cases: Dict[str, Callable[[], List[Any]]] = {}

    def pyg_nodes():
        loader = NeighborLoader(
            data, [10, 5], input_nodes=torch.arange(0, 2000, 3), batch_size=128,
            shuffle=True, seed=4, num_workers=2,
        )  # fmt: skip
        out = []
        for b in loader:
            out += [b.n_id, b.e_id, b.edge_index, b.x, b.y, b.edge_attr, b.input_id]
            out += [b.num_sampled_nodes, b.num_sampled_edges, [b.batch_size]]
        return out

    def pyg_links():
        loader = LinkNeighborLoader(
            data, [5, 5], edge_label_index=ei[:, :300], neg_sampling="binary",
            batch_size=64, shuffle=True, seed=5,
        )  # fmt: skip
        out = []
        for b in loader:
            out += [b.n_id, b.e_id, b.edge_index, b.edge_label_index, b.edge_label, b.input_id]
        return out

    def dgl_nodes():
        g.ndata["feat"] = x
        g.ndata["label"] = y
        sampler = dgl_front.NeighborSampler(
            [5, 10], prefetch_node_feats=["feat"], prefetch_labels=["label"]
        )
        loader = dgl_front.DataLoader(
            g, torch.arange(0, 2000, 5), sampler, batch_size=100, shuffle=True, seed=6,
            block_type="gnnsys",
        )  # fmt: skip
        out = []
        for input_nodes, output_nodes, blocks in loader:
            out += [
                input_nodes,
                output_nodes,
                blocks[0].srcdata["feat"],
                blocks[-1].dstdata["label"],
            ]
            for blk in blocks:
                src, dst, eid = blk.edges(form="all")
                out += [src, dst, eid, [blk.num_src_nodes(), blk.num_dst_nodes()]]
        return out

    cases["pyg-neighbor-loader"] = pyg_nodes
    cases["pyg-link-loader"] = pyg_links
    cases["dgl-node-loader"] = dgl_nodes
    return cases


def digests() -> Dict[str, str]:
    """One SHA-256 per configuration (see the module docstring)."""
    out = {}
    for name, fn in {**_sampler_cases(), **_front_cases()}.items():
        out[name] = _digest(fn())
    return out


if __name__ == "__main__":
    print(json.dumps(digests(), indent=1, sort_keys=True))

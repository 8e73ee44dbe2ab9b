"""Benchmark: CSC build time for a products-sized edge list, and `products` generation time.

Input: RMAT (Graph500 parameters) edges, symmetrised, ``--edges`` directed edges in all, over
2^``--scale`` node ids. Every implementation builds the CSC of incoming edges from the same
int64 (src, dst) arrays, in this process, one after another:

  gnnsys.from_edge_index         Graph.from_edge_index (public API; keeps edge ids)
  gnnsys.from_edge_index+dedupe  the same with dedupe=True
  gnnsys.datasets+dedupe         the datasets path (numba CSC kernels, int32, no edge ids)
  pyg.coalesce                   torch_geometric.utils.coalesce(sort_by_row=False) + index2ptr
  scipy.tocsc                    scipy.sparse.coo_matrix(...).tocsc() (sums duplicates)

Then ``--products`` times ``gnnsys.datasets.synthetic("products", cache=False)``. One JSON object
per line on stdout. Numba compile time is excluded by a small warm-up run, and reported.

    python benchmarks/build_graph.py                       # 120M edges + products (minutes)
    python benchmarks/build_graph.py --edges 20000000 --no-products   # quick
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import time
from typing import Callable, Dict, List

import numba
import numpy as np
import torch


def _emit(obj: Dict) -> None:
    print(json.dumps(obj), flush=True)


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_gib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def _impls(n: int) -> Dict[str, Callable]:
    from gnnsys import Graph
    from gnnsys.datasets.dataset import graph_from_coo

    def gn_plain(src, dst):
        g = Graph.from_edge_index(torch.stack([torch.from_numpy(src), torch.from_numpy(dst)]), n)
        return g.num_edges

    def gn_dedupe(src, dst):
        ei = torch.stack([torch.from_numpy(src), torch.from_numpy(dst)])
        return Graph.from_edge_index(ei, n, dedupe=True).num_edges

    def gn_datasets(src, dst):
        return graph_from_coo(src, dst, n, dedupe=True).num_edges

    def pyg(src, dst):
        from torch_geometric.utils import coalesce

        try:
            from torch_geometric.index import index2ptr
        except ImportError:  # PyG < 2.5
            from torch_geometric.utils.sparse import index2ptr

        ei = torch.stack([torch.from_numpy(src), torch.from_numpy(dst)])
        ei = coalesce(ei, num_nodes=n, sort_by_row=False)
        index2ptr(ei[1], n)
        return ei.shape[1]

    def scipy_csc(src, dst):
        import scipy.sparse as sp

        a = sp.coo_matrix((np.ones(src.size, dtype=np.float32), (src, dst)), shape=(n, n))
        return a.tocsc().nnz

    return {
        "gnnsys.from_edge_index": gn_plain,
        "gnnsys.from_edge_index+dedupe": gn_dedupe,
        "gnnsys.datasets+dedupe": gn_datasets,
        "pyg.coalesce": pyg,
        "scipy.tocsc": scipy_csc,
    }


def main(argv: List[str] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--edges", type=int, default=120_000_000, help="directed edges (default 120M)")
    p.add_argument("--scale", type=int, default=22, help="node ids: 2^scale (default 22)")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per implementation")
    p.add_argument("--impls", default="all", help="comma-separated subset of implementations")
    p.add_argument("--no-products", dest="products", action="store_false")
    p.add_argument("--products-only", action="store_true")
    args = p.parse_args(argv)

    from gnnsys.datasets import rmat_edges, synthetic

    env = {
        "bench": "env",
        "threads": numba.get_num_threads(),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numba": numba.__version__,
    }
    _emit(env)
    n = 1 << args.scale
    if not args.products_only:
        t = time.perf_counter()
        wsrc, wdst = rmat_edges(10, 4, seed=1)
        for f in _impls(1 << 10).values():  # compile numba kernels, import PyG
            f(wsrc, wdst)
        impls = _impls(n)
        _emit({"bench": "warmup", "seconds": round(time.perf_counter() - t, 2)})
        t = time.perf_counter()
        half = args.edges // 2
        s, d = rmat_edges(args.scale, half / n, seed=0)
        src, dst = np.concatenate([s, d]), np.concatenate([d, s])
        del s, d
        _emit(
            {
                "bench": "rmat_edges",
                "edges": int(src.size),
                "nodes": n,
                "seconds": round(time.perf_counter() - t, 2),
            }
        )
        chosen = list(impls) if args.impls == "all" else args.impls.split(",")
        for name in chosen:
            if name not in impls:
                raise SystemExit(f"unknown impl {name!r}; choose from {list(impls)}")
            times, cpus = [], []
            out_edges = None
            for _ in range(args.repeat):
                gc.collect()
                t, c = time.perf_counter(), _cpu_s()
                out_edges = impls[name](src, dst)
                times.append(time.perf_counter() - t)
                cpus.append(_cpu_s() - c)
            _emit(
                {
                    "bench": "csc_build",
                    "impl": name,
                    "edges": int(src.size),
                    "nodes": n,
                    "out_edges": int(out_edges),
                    "seconds": round(min(times), 2),
                    "all_seconds": [round(x, 2) for x in times],
                    "cpu_seconds": round(cpus[times.index(min(times))], 2),
                    "max_rss_gib": _rss_gib(),
                    "loadavg_1m": round(os.getloadavg()[0], 2),
                }
            )
        del src, dst
        gc.collect()
    if args.products or args.products_only:
        synthetic("tiny", cache=False)  # compile the generator's kernels
        t, c = time.perf_counter(), _cpu_s()
        ds = synthetic("products", cache=False)
        sec, cpu = time.perf_counter() - t, _cpu_s() - c
        deg = ds.graph.in_degrees()
        ei_y = ds.y[ds.graph.indices.long()]
        dst_y = torch.repeat_interleave(ds.y, deg)
        _emit(
            {
                "bench": "products_generation",
                "seconds": round(sec, 2),
                "cpu_seconds": round(cpu, 2),
                "phases": ds.meta["seconds"],
                "num_nodes": ds.num_nodes,
                "num_edges": ds.num_edges,
                "mean_degree": round(ds.num_edges / ds.num_nodes, 2),
                "max_degree": int(deg.max()),
                "edge_homophily": round(float((ei_y == dst_y).double().mean()), 4),
                "feat_shape": list(ds.x.shape),
                "split": [ds.train_idx.numel(), ds.val_idx.numel(), ds.test_idx.numel()],
                "max_rss_gib": _rss_gib(),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
        )


if __name__ == "__main__":
    main()

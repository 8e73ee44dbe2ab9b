"""Benchmark gnnsys.ops.sparse.spmm against torch.sparse.mm (CSR, reduce=) and scatter_reduce.

Forward and forward+backward (gradient of the features) on an RMAT power-law graph, all peers
measured in the same run on the same graph and features. Prints one JSON object per line.

    python benchmarks/sparse_ops.py                       # ~1 minute on a small CPU
    python benchmarks/sparse_ops.py --nodes 2450000 --edges 120000000 --feats 128  # products size

The gnnsys backward reads a transposed CSC that is built once per graph and cached; its one-time
build is reported separately (``transpose_build``), the timed repeats reuse it. torch.sparse.mm
rebuilds what it needs on every backward call.

``--device cuda``: the Triton kernels against cuSPARSE (``torch.sparse.mm`` on a CUDA CSR: sum,
and mean through 1/degree values; it has no max/min) and ``scatter_reduce`` on the GPU; every
step is timed to a synchronisation, and the first call (Triton compiles) is reported apart. The
RMAT graph has power-law rows (the largest degree is printed), the case the blocked and split
kernels are for.

    python benchmarks/sparse_ops.py --device cuda --nodes 1000000 --edges 20000000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Callable, Dict, List

import numpy as np
import torch

from gnnsys import Graph
from gnnsys._checks import check_choice
from gnnsys.ops import sparse

_TORCH_REDUCE = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}


def rmat_edges(num_nodes: int, num_edges: int, seed: int, chunk: int = 1 << 22) -> np.ndarray:
    """[2, E] int64 RMAT edges (a=0.57, b=c=0.19), ids folded into [0, num_nodes), scrambled."""
    rng = np.random.default_rng(seed)
    scale = max(1, int(np.ceil(np.log2(max(num_nodes, 2)))))
    out = np.empty((2, num_edges), dtype=np.int64)
    for lo in range(0, num_edges, chunk):
        n = min(chunk, num_edges - lo)
        src = np.zeros(n, dtype=np.int64)
        dst = np.zeros(n, dtype=np.int64)
        for _ in range(scale):
            r = rng.random(n)
            right = (r >= 0.57) & (r < 0.76) | (r >= 0.95)  # quadrants b and d
            down = r >= 0.76  # quadrants c and d
            src = (src << 1) | down
            dst = (dst << 1) | right
        out[0, lo : lo + n] = src
        out[1, lo : lo + n] = dst
    perm = rng.permutation(1 << scale)  # scramble ids so hubs are not the low ids
    return perm[out] % num_nodes


def timed(fn: Callable[[], object], repeat: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: List[str] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=50_000)
    p.add_argument("--edges", type=int, default=1_000_000)
    p.add_argument("--feats", type=int, default=64)
    p.add_argument("--reduce", default="sum,max", help="comma list of sum,mean,max,min")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch and numba threads (0: keep)")
    p.add_argument("--peers", default="torch_sparse,scatter", help="comma list (or 'none')")
    p.add_argument("--no-backward", action="store_true", help="time the forward only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = p.parse_args(argv)
    dev = torch.device(args.device)

    if args.threads:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    reduces = [r for r in args.reduce.split(",") if r]
    peers = [q for q in args.peers.split(",") if q and q != "none"]
    dtype = getattr(torch, args.dtype)
    common: Dict[str, object] = {
        "bench": "sparse_ops",
        "nodes": args.nodes,
        "edges": args.edges,
        "feats": args.feats,
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": args.device,
    }

    def emit(**kw: object) -> None:
        print(json.dumps({**common, **kw}), flush=True)

    if dev.type == "cuda":
        if not torch.cuda.is_available():
            emit(impl="setup", error="CUDA is not available")
            return 2
        common["gpu"] = torch.cuda.get_device_name(dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    t0 = time.perf_counter()
    ei = torch.from_numpy(rmat_edges(args.nodes, args.edges, args.seed))
    g = Graph.from_edge_index(ei, args.nodes)
    deg = g.in_degrees()
    emit(
        impl="setup",
        phase="graph_build",
        seconds=round(time.perf_counter() - t0, 4),
        max_in_degree=int(deg.max()) if deg.numel() else 0,
    )
    del ei
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.nodes, args.feats, generator=gen, dtype=dtype).to(dev)
    gout = torch.randn(args.nodes, args.feats, generator=gen, dtype=dtype).to(dev)
    src = g.indices.long().to(dev)
    dst = torch.repeat_interleave(torch.arange(args.nodes), deg).to(dev)
    csr = csr_mean = None
    if "torch_sparse" in peers:
        size = (args.nodes, args.nodes)
        ip = g.indptr.to(dev)
        csr = torch.sparse_csr_tensor(ip, src, torch.ones(g.num_edges, dtype=dtype, device=dev),
                                      size=size)  # fmt: skip
        if dev.type == "cuda":  # cuSPARSE has only sums: a mean is a sum with 1/degree values
            inv = (1.0 / deg.clamp(min=1).to(dtype)).repeat_interleave(deg).to(dev)
            csr_mean = torch.sparse_csr_tensor(ip, src, inv, size=size)

    # one-time transposed-CSC build, reused by every gnnsys backward below
    t0 = time.perf_counter()
    sparse._resolve(g, x.device).transposed()
    sync()
    emit(impl="gnnsys", phase="transpose_build", seconds=round(time.perf_counter() - t0, 4))

    impls: Dict[str, Callable[[torch.Tensor, str], torch.Tensor]] = {
        "gnnsys": lambda xx, r: sparse.spmm(g, xx, r),
    }
    peer_name = "cusparse" if dev.type == "cuda" else "torch.sparse.mm"
    if csr is not None and dev.type == "cuda":

        def cusparse(xx: torch.Tensor, r: str) -> torch.Tensor:
            if r == "sum":
                return torch.sparse.mm(csr, xx)
            if r == "mean":
                return torch.sparse.mm(csr_mean, xx)
            raise RuntimeError(f"cuSPARSE has no {r} reduction")

        impls[peer_name] = cusparse
    elif csr is not None:
        impls[peer_name] = lambda xx, r: torch.sparse.mm(csr, xx, _TORCH_REDUCE[r])
    if "scatter" in peers:

        def scatter(xx: torch.Tensor, r: str) -> torch.Tensor:
            idx = dst.view(-1, 1).expand(-1, xx.shape[1])
            out = torch.zeros(args.nodes, xx.shape[1], dtype=xx.dtype, device=xx.device)
            return out.scatter_reduce(0, idx, xx[src], _TORCH_REDUCE[r], include_self=False)

        impls["scatter_reduce"] = scatter
    if dev.type == "cuda":  # the first call compiles the Triton kernels: reported apart
        for r in reduces:
            t0 = time.perf_counter()
            try:
                xg = x.clone().requires_grad_()
                sparse.spmm(g, xg, r).backward(gout)
                sync()
                emit(impl="gnnsys", reduce=r, phase="first_call",
                     seconds=round(time.perf_counter() - t0, 4))  # fmt: skip
            except Exception as exc:
                emit(impl="gnnsys", reduce=r, phase="first_call", error=repr(exc)[:300])

    phases = ["forward"] if args.no_backward else ["forward", "forward_backward"]
    for r in reduces:
        check_choice("reduce", r, sparse.REDUCES)
        results: Dict[str, Dict[str, float]] = {}
        for name, fn in impls.items():
            results[name] = {}
            for phase in phases:
                if phase == "forward":

                    def step(fn=fn, r=r) -> None:
                        with torch.no_grad():
                            fn(x, r)
                        sync()

                else:
                    xg = x.clone().requires_grad_()

                    def step(fn=fn, xg=xg, r=r) -> None:
                        xg.grad = None
                        fn(xg, r).backward(gout)
                        sync()

                try:
                    results[name][phase] = timed(step, args.repeat, args.warmup)
                except (RuntimeError, MemoryError, ValueError) as exc:  # a peer may not
                    emit(impl=name, reduce=r, phase=phase, error=str(exc)[:200])  # support it
        ref = results.get(peer_name, {})
        key = "speedup_vs_" + peer_name.replace(".", "_")
        for name, res in results.items():
            for phase, sec in res.items():
                row = {"impl": name, "reduce": r, "phase": phase, "seconds": round(sec, 5)}
                if phase in ref and name != peer_name:
                    row[key] = round(ref[phase] / sec, 3)
                emit(**row)
        if dev.type == "cuda" and peer_name in impls and r in ("sum", "mean"):
            try:  # the kernels agree with cuSPARSE on this graph
                with torch.no_grad():
                    a, b = impls["gnnsys"](x, r), impls[peer_name](x, r)
                err = float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))
                emit(impl="gnnsys", reduce=r, phase="check", max_rel_diff_vs_cusparse=err)
            except Exception as exc:
                emit(impl="gnnsys", reduce=r, phase="check", error=repr(exc)[:300])
    return 0


if __name__ == "__main__":
    sys.exit(main())

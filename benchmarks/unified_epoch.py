"""GraphSAGE epoch time with features unified (zero-copy from host) vs all on the GPU vs CPU gather
+ copy, on the ``products``-like synthetic graph. Goal: unified within 1.15x of all-on-GPU.

Every mode trains the same model on the same pre-sampled batches (sampling is excluded from the
timed epoch, identical for all modes); only the feature path differs:

- ``gpu``:      the whole feature table on the GPU, ``x_gpu[nodes]``;
- ``unified``:  ``gnnsys.unified(x)``: the GPU gathers rows from host memory (Triton, zero-copy;
  16 programs by default since session 24, ``gather_triton.HOST_READ_PROGRAMS``);
- ``unified_bf16``: the same with bfloat16 storage (half the PCIe bytes);
- ``unified_cache``: the same with the hottest rows (by how often a node is a neighbour) cached on
  the GPU (``--cache`` fraction);
- ``cpu_copy``: the classic path: numba gather on the CPU into pinned memory, then H2D copy;
- ``unified_p<N>`` (e.g. ``unified_p16``): ``unified`` with the gather capped at N programs, so
  that the zero-copy reads, which hold an SM while they wait on PCIe, leave the other SMs to the
  training kernels running beside them (on an H200, 16 programs reached 86-107% of the
  bandwidth of 8 per SM in ``gather_bandwidth.py``); ``unified_p1056`` is the default before
  session 24 on an H200 (8 per SM).

Feature fetches of batch i+1 are issued while batch i trains (each mode gets the same one-batch
lookahead). Node ids come from the CPU, as a loader produces them. Sampling uses
``gnnsys.loaders.NeighborSampler`` when importable, else a plain-torch uniform sampler (reported
in the output); the graph is ``gnnsys.datasets.synthetic(name)`` when importable, else a uniform
random graph of the same size (reported). One JSON object per line.

Example:
    python benchmarks/unified_epoch.py --dataset products --max-batches 60
    python benchmarks/unified_epoch.py --dataset tiny --device cpu   # smoke test, no GPU
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

_OUT = None

SIZES = {  # fallback random graphs: (nodes, average degree, features, classes)
    "tiny": (2_500, 9, 32, 8),
    "mini": (120_000, 16, 100, 47),
    "products": (2_400_000, 50, 100, 47),
}


def emit(rec: dict) -> None:
    line = json.dumps({"bench": "unified_epoch", **rec})
    print(line, flush=True)
    if _OUT:
        with open(_OUT, "a") as f:
            f.write(line + "\n")


# ---------------------------------------------------------------------------- data


def load_data(name: str, seed: int):
    """(indptr, indices, x, y, train_idx, source)."""
    try:
        from gnnsys.datasets import synthetic
        from gnnsys.unified_tensor import aligned_empty

        ds = synthetic(name, seed=seed)
        g = ds.graph
        # In RAM (the cache loads memory-mapped), on a 128-byte boundary as unified()'s copies.
        x = aligned_empty(tuple(ds.x.shape), ds.x.dtype).copy_(ds.x)
        return g.indptr, g.indices, x, ds.y.clone(), ds.train_idx.clone(), "gnnsys.datasets"
    except Exception as e:
        emit({"warning": f"gnnsys.datasets.synthetic({name!r}) failed: {e!r}; random graph"})
    n, deg, f, c = SIZES[name]
    gen = torch.Generator().manual_seed(seed)
    counts = torch.poisson(torch.full((n,), float(deg)), generator=gen).long()
    indptr = torch.zeros(n + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(counts, 0)
    indices = torch.randint(0, n, (int(indptr[-1]),), generator=gen, dtype=torch.int64).int()
    x = torch.randn(n, f, generator=gen)
    y = torch.randint(0, c, (n,), generator=gen)
    train = torch.randperm(n, generator=gen)[: int(0.08 * n)]
    return indptr, indices, x, y, train, "random_fallback"


class TorchSampler:
    """Plain-torch uniform neighbour sampler (with replacement), PyG hop semantics."""

    def __init__(self, indptr, indices, fanouts, seed):
        self.indptr, self.indices = indptr, indices.long()
        self.fanouts, self.seed = fanouts, seed

    def sample(self, seeds, b):
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + b)
        nodes, frontier = seeds, seeds
        rows, cols = [], []
        n_known = len(seeds)
        for f in self.fanouts:
            lo = self.indptr[frontier]
            deg = self.indptr[frontier + 1] - lo
            has = deg > 0
            dst_local = torch.arange(n_known - len(frontier), n_known)[has].repeat_interleave(f)
            lo, deg = lo[has].repeat_interleave(f), deg[has].repeat_interleave(f)
            pick = lo + (torch.rand(len(lo), generator=gen) * deg).long().clamp_max(deg - 1)
            nbr = self.indices[pick]
            allv = torch.cat([nodes, nbr])
            uniq, inv = torch.unique(allv, return_inverse=True)
            first = torch.full((len(uniq),), len(allv), dtype=torch.int64)
            first.scatter_reduce_(0, inv, torch.arange(len(allv)), reduce="amin")
            order = torch.argsort(first)
            rank = torch.empty_like(order)
            rank[order] = torch.arange(len(order))
            loc = rank[inv]
            new_nodes = uniq[order]
            rows.append(loc[len(nodes) :])
            cols.append(dst_local)
            frontier = new_nodes[len(nodes) :]
            nodes = new_nodes
            n_known = len(nodes)
        return nodes, torch.cat(rows), torch.cat(cols)


def make_sampler(indptr, indices, fanouts, seed):
    try:
        from gnnsys.graph import Graph
        from gnnsys.loaders import NeighborSampler, SampleKey

        g = Graph(indptr, indices, validate=False)
        s = NeighborSampler(g, fanouts)

        def sample(seeds, b):
            sub = s.sample(seeds, SampleKey(seed, 0, b))
            return sub.nodes, sub.row, sub.col

        return sample, "gnnsys.loaders.NeighborSampler"
    except Exception as e:
        emit({"warning": f"gnnsys.loaders unavailable ({e!r}); plain-torch sampler"})
        return TorchSampler(indptr, indices, fanouts, seed).sample, "torch_fallback_sampler"


# ---------------------------------------------------------------------------- model


class SAGE(torch.nn.Module):
    """GraphSAGE (mean aggregation) over all sampled edges, plain torch."""

    def __init__(self, f_in, hidden, f_out, layers):
        super().__init__()
        dims = [f_in] + [hidden] * (layers - 1) + [f_out]
        self.lin_l = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.lin_r = torch.nn.ModuleList(
            torch.nn.Linear(a, b, bias=False) for a, b in zip(dims, dims[1:])
        )

    def forward(self, h, row, col, deg_inv):
        for i, (ll, lr) in enumerate(zip(self.lin_l, self.lin_r)):
            agg = torch.zeros_like(h).index_add_(0, col, h[row]) * deg_inv
            h = ll(agg) + lr(h)
            if i < len(self.lin_l) - 1:
                h = F.relu(h)
        return h


# ---------------------------------------------------------------------------- fetchers


class Ready:
    def __init__(self, t):
        self.t = t

    def wait(self):
        return self.t


class CpuCopy:
    """numba gather into one of two pinned buffers, copied on a side stream."""

    def __init__(self, u, dev, max_rows, d):
        self.u, self.dev = u, dev
        self.bufs = [torch.empty(max_rows, d, pin_memory=dev.type == "cuda") for _ in range(2)]
        self.events = [None, None]
        self.stream = torch.cuda.Stream(dev) if dev.type == "cuda" else None
        self.i = 0

    def __call__(self, nodes):
        k = self.i % 2
        self.i += 1
        if self.events[k] is not None:
            self.events[k].synchronize()
        buf = self.bufs[k][: len(nodes)]
        self.u.gather(nodes, out=buf)
        if self.stream is None:
            return Ready(buf.clone())
        self.stream.wait_stream(torch.cuda.current_stream(self.dev))
        with torch.cuda.stream(self.stream):
            out = buf.to(self.dev, non_blocking=True)
            ev = torch.cuda.Event()
            ev.record()
        self.events[k] = ev
        return _Pending(out, ev)


class _Pending:
    def __init__(self, out, ev):
        self.out, self.ev = out, ev

    def wait(self):
        s = torch.cuda.current_stream(self.out.device)
        s.wait_event(self.ev)
        self.out.record_stream(s)
        return self.out


def run_epoch(model, opt, batches, fetch, y_dev, dev, train: bool = True) -> float:
    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    sync()
    t0 = time.perf_counter()
    pending = fetch(batches[0]["nodes"])
    for i, b in enumerate(batches):
        x = pending.wait()
        if train:
            out = model(x, b["row"], b["col"], b["deg_inv"])[: b["bs"]]
            loss = F.cross_entropy(out, y_dev[b["seeds"]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if i + 1 < len(batches):
            pending = fetch(batches[i + 1]["nodes"])  # overlaps with the step just launched
    sync()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    global _OUT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="products", choices=sorted(SIZES))
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--fanouts", type=int, nargs="+", default=[15, 10, 5])
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--max-batches", type=int, default=0, help="0 = the whole epoch")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs per mode (median)")
    p.add_argument("--cache", type=float, default=0.1, help="fraction for unified_cache")
    p.add_argument(
        "--modes",
        nargs="+",
        default=["gpu", "unified", "unified_bf16", "unified_cache", "cpu_copy"],
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    _OUT = args.out
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        emit({"error": "CUDA is not available"})
        return 2
    from gnnsys.unified_tensor import unified

    t0 = time.perf_counter()
    indptr, indices, x, y, train_idx, data_src = load_data(args.dataset, args.seed)
    t_data = time.perf_counter() - t0
    sample, sampler_src = make_sampler(indptr, indices, args.fanouts, args.seed)
    perm = train_idx[torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(1))]
    seeds_list = list(torch.split(perm, args.batch_size))
    if args.max_batches:
        seeds_list = seeds_list[: args.max_batches]
    t0 = time.perf_counter()
    batches = []
    max_rows = 0
    for b, seeds in enumerate(seeds_list):
        nodes, row, col = sample(seeds, b)
        n = len(nodes)
        max_rows = max(max_rows, n)
        deg = torch.bincount(col, minlength=n).clamp_min(1).float().unsqueeze(1)
        batches.append(
            {
                "nodes": nodes.contiguous(),  # CPU ids, as a loader yields them
                "row": row.to(dev),
                "col": col.to(dev),
                "deg_inv": (1.0 / deg).to(dev),
                "seeds": seeds.to(dev),
                "bs": len(seeds),
            }
        )
    t_sample = time.perf_counter() - t0
    emit(
        {
            "method": "config",
            "dataset": args.dataset,
            "data_source": data_src,
            "sampler": sampler_src,
            "nodes": int(x.shape[0]),
            "edges": int(indices.numel()),
            "features": int(x.shape[1]),
            "batches": len(batches),
            "batch_size": args.batch_size,
            "fanouts": args.fanouts,
            "mean_nodes_per_batch": round(sum(len(b["nodes"]) for b in batches) / len(batches)),
            "data_seconds": round(t_data, 2),
            "sample_seconds": round(t_sample, 2),
            "device": str(dev),
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        }
    )
    y_dev = y.to(dev)
    num_classes = int(y.max()) + 1
    results = {}
    for mode in args.modes:
        try:
            fetch, extra = make_fetch(mode, x, dev, max_rows, indptr, indices, args, unified)
        except Exception as e:
            emit({"method": mode, "error": repr(e), "traceback": traceback.format_exc()[-1500:]})
            continue
        try:
            torch.manual_seed(args.seed)
            model = SAGE(x.shape[1], args.hidden, num_classes, len(args.fanouts)).to(dev)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            run_epoch(model, opt, batches[: min(3, len(batches))], fetch, y_dev, dev)  # warm up
            times = [run_epoch(model, opt, batches, fetch, y_dev, dev) for _ in range(args.epochs)]
            fetch_only = run_epoch(model, opt, batches, fetch, y_dev, dev, train=False)
            t = sorted(times)[len(times) // 2]
            results[mode] = t
            rec = {
                "method": mode,
                "epoch_seconds": round(t, 4),
                "fetch_only_seconds": round(fetch_only, 4),
                "batches": len(batches),
                **extra,
            }
            if "gpu" in results and mode != "gpu":
                rec["vs_gpu"] = round(t / results["gpu"], 3)
            emit(rec)
        except Exception as e:
            emit({"method": mode, "error": repr(e), "traceback": traceback.format_exc()[-1500:]})
        finally:
            fetch = None
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    summary = {"method": "summary", "goal": "unified <= 1.15x gpu"}
    if "gpu" in results:
        for m, t in results.items():
            if m != "gpu":
                summary[f"{m}_vs_gpu"] = round(t / results["gpu"], 3)
    emit(summary)
    return 0


def make_fetch(mode, x, dev, max_rows, indptr, indices, args, unified):
    if mode == "gpu":
        if dev.type != "cuda":
            raise ValueError("mode gpu needs --device cuda")
        x_gpu = x.to(dev)

        def fetch(nodes):
            return Ready(x_gpu[nodes.to(dev, non_blocking=True)])

        return fetch, {"gpu_feature_bytes": x_gpu.nbytes}
    if mode == "cpu_copy":
        return CpuCopy(unified(x), dev, max_rows, x.shape[1]), {}
    if mode.startswith("unified"):
        kw = {}
        capped = re.fullmatch(r"unified_p(\d+)", mode)
        programs = int(capped.group(1)) if capped else None
        if programs is not None and programs < 1:
            raise ValueError(f"{mode}: the program cap must be >= 1")
        if not capped and mode not in ("unified", "unified_bf16", "unified_cache"):
            raise ValueError(f"unknown mode {mode!r}")
        if mode == "unified_bf16":
            kw["storage_dtype"] = torch.bfloat16
        if mode == "unified_cache":
            from gnnsys.graph import Graph

            kw["cache"] = args.cache
            kw["cache_order"] = Graph(indptr, indices, validate=False)
        if dev.type != "cuda":
            kw.pop("cache", None)
            kw.pop("cache_order", None)
        u = unified(x, **kw)
        extra = {"registered": u.is_registered}
        if u.cache is not None:
            extra["cache_rows"] = u.cache.num_rows
            extra["cache_bytes"] = u.cache.nbytes
        if programs is not None:
            extra["max_programs"] = programs

        def fetch(nodes):
            return u.gather_async(nodes, device=dev, max_programs=programs)

        return fetch, extra
    raise ValueError(f"unknown mode {mode!r}")


if __name__ == "__main__":
    raise SystemExit(main())

"""Neighbour sampling on the GPU against our CPU sampler, in the same run.

Systems, interleaved per round on the same seeds and keys:
- ``cpu``: the numba sampler on all CPU threads (the graph in host memory);
- ``cuda``: the Triton sampler with the graph copied to GPU memory once;
- ``cuda_kernels``: the same with ``_sampler_triton.RELABEL = "kernels"`` (the dense relabel in
  three Triton kernels a hop instead of ~25 torch ops; ``--relabel-ab 0`` leaves it out);
- ``uva``: the Triton sampler reading a pinned host graph in place (``Graph.pin_memory_()``);
- ``graphbolt``: DGL's GraphBolt GPU sampler when ``dgl`` is importable (skipped otherwise).
Each GPU batch is timed to a synchronisation. The first batch of every system is checked equal
to the CPU sampler's (nodes, row, col): the Triton kernels share its counter-based randomness.

Prints one JSON object per line: the setup, one row per (round, system) with batches/s and
sampled edges/s, then a summary with each system's range over the rounds and the per-round
ratios to the CPU sampler.

Example:
    python benchmarks/gpu_sampling.py --device cuda --graph products --rounds 3 --batches 30
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from gnnsys.datasets import synthetic  # noqa: E402
from gnnsys.graph import Graph  # noqa: E402
from gnnsys.loaders import NeighborSampler, SampleKey  # noqa: E402
from gnnsys.loaders import _sampler_triton as st  # noqa: E402


def emit(obj: Dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def pinned_copy(g: Graph) -> Graph:
    """A host copy of ``g`` whose CSC is page-locked for UVA reads."""
    out = Graph(
        g.indptr.clone(), g.indices.clone(),
        edge_ids=None if g.edge_ids is None else g.edge_ids.clone(),
        validate=False,
    )  # fmt: skip
    return out.pin_memory_()


def time_system(sampler: NeighborSampler, seeds: List[torch.Tensor], round_: int) -> Dict:
    cuda = sampler.backend == "triton"
    edges = 0
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i, s in enumerate(seeds):
        sub = sampler.sample(s, SampleKey(seed=round_, epoch=0, batch=i))
        edges += sum(sub.num_sampled_edges)
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"batches_per_s": round(len(seeds) / dt, 2), "edges_per_s": round(edges / dt)}


def profile(
    sampler: NeighborSampler, seeds: List[torch.Tensor], top: int = 25, system: str = "cuda"
) -> None:
    """torch.profiler over ``len(seeds)`` batches: one JSON line per operator among the ``top``
    by self CPU time and by self CUDA time (per batch), the wall time and the kernel launches
    (runtime and driver API calls) per batch."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch_profile(activities=acts) as prof:
        t0 = time.perf_counter()
        for i, s in enumerate(seeds):
            sampler.sample(s, SampleKey(seed=77, batch=i))
        sync()
        wall = time.perf_counter() - t0
    n = len(seeds)
    emit({"system": system, "profile": "wall", "batches": n,
          "ms_per_batch": round(wall / n * 1e3, 3)})  # fmt: skip
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernelEx"))
    syncs = sum(e.count for e in events if e.key == "cudaStreamSynchronize")
    emit({"system": system, "profile": "launches", "launches_per_batch": round(launches / n, 2),
          "syncs_per_batch": round(syncs / n, 2)})  # fmt: skip

    def cuda_us(e: Any) -> float:  # the attribute's name changed across torch versions
        return float(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0)))

    for by, key in (("cpu", lambda e: e.self_cpu_time_total), ("cuda", cuda_us)):
        for e in sorted(events, key=key, reverse=True)[:top]:
            emit({"system": system, "profile": by, "op": e.key,
                  "calls_per_batch": round(e.count / n, 2),
                  "self_cpu_ms_per_batch": round(e.self_cpu_time_total / n / 1e3, 4),
                  "self_cuda_ms_per_batch": round(cuda_us(e) / n / 1e3, 4)})  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda", help="the GPU to sample on")
    p.add_argument("--graph", default="products", help="a gnnsys synthetic dataset name")
    p.add_argument("--fanout", default="15,10,5", help="per hop, first hop first")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=30, help="timed batches per system and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--semantics", default="pyg", choices=("pyg", "dgl"))
    p.add_argument(
        "--profile", type=int, default=0,
        help="after the rounds, profile this many batches of the GPU-memory graph with torch.profiler and "
        "print the top operators by CPU and by CUDA time (where a GPU batch's time goes)",
    )  # fmt: skip
    p.add_argument(
        "--relabel-ab", type=int, default=1, choices=(0, 1),
        help="also time a CUDA sampler with _sampler_triton.RELABEL = 'kernels' (the dense "
        "relabel in three Triton kernels instead of ~25 torch ops a hop), rounds interleaved",
    )  # fmt: skip
    a = p.parse_args()
    if not torch.cuda.is_available():
        emit({"skipped": "no CUDA device"})
        return
    dev = torch.device(a.device)
    fan = [int(f) for f in a.fanout.split(",")]
    t0 = time.perf_counter()
    g = synthetic(a.graph, seed=0).graph
    emit({"setup": True, "graph": a.graph, "nodes": g.num_nodes, "edges": g.num_edges,
          "load_s": round(time.perf_counter() - t0, 1), "fanout": fan,
          "batch_size": a.batch_size, "semantics": a.semantics, "gpu": torch.cuda.get_device_name(dev),
          "cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count()})  # fmt: skip
    kw = dict(semantics=a.semantics)
    systems = {"cpu": NeighborSampler(g, fan, backend="numba", **kw)}
    systems["cuda"] = NeighborSampler(g, fan, device=dev, **kw)
    if a.relabel_ab:  # the same, its dense relabel in kernels instead of torch ops
        default, st.RELABEL = st.RELABEL, "kernels"
        try:
            systems["cuda_kernels"] = NeighborSampler(g, fan, device=dev, **kw)
        finally:
            st.RELABEL = default
    try:
        systems["uva"] = NeighborSampler(pinned_copy(g), fan, **kw)
    except Exception as e:  # registration refused: report it, keep the others
        emit({"system": "uva", "error": repr(e)[:300]})
    try:
        import dgl  # noqa: F401

        emit({"system": "graphbolt", "skipped": "dgl importable, GraphBolt not wired here yet"})
    except ImportError:
        emit({"system": "graphbolt", "skipped": "dgl is not installed on this machine"})
    gen = torch.Generator().manual_seed(0)
    seeds = [
        torch.randint(0, g.num_nodes, (a.batch_size,), generator=gen) for _ in range(a.batches)
    ]
    seeds_dev = [s.to(dev) for s in seeds]
    ref = systems["cpu"].sample(seeds[0], SampleKey(seed=99))
    for name, s in systems.items():
        if name == "cpu":
            continue
        sub = s.sample(seeds_dev[0], SampleKey(seed=99))  # also the warm-up (compilation)
        same = all(
            torch.equal(getattr(ref, f), getattr(sub, f).cpu()) for f in ("nodes", "row", "col")
        )
        emit({"system": name, "equal_to_cpu": same})
    for name, s in systems.items():  # a few batches of other sizes: caches, allocator, compiles
        for i in range(1, 4):
            s.sample(seeds[i] if name == "cpu" else seeds_dev[i], SampleKey(seed=98, batch=i))
    if systems["cuda"].backend == "triton":
        torch.cuda.synchronize()
    rows: Dict[str, List[float]] = {k: [] for k in systems}
    for r in range(a.rounds):
        order = list(systems) if r % 2 == 0 else list(reversed(systems))
        for name in order:
            res = time_system(systems[name], seeds if name == "cpu" else seeds_dev, r)
            rows[name].append(res["batches_per_s"])
            emit({"round": r, "system": name, **res})
    if a.profile:
        profile(systems["cuda"], seeds_dev[: a.profile])
        if "cuda_kernels" in systems:
            profile(systems["cuda_kernels"], seeds_dev[: a.profile], top=12, system="cuda_kernels")
    summary: Dict[str, Any] = {"summary": True, "graph": a.graph}
    for name, v in rows.items():
        summary[name] = [min(v), max(v)]
        if name != "cpu":
            summary[f"{name}_over_cpu"] = [round(x / c, 2) for x, c in zip(v, rows["cpu"])]
    emit(summary)


if __name__ == "__main__":
    main()

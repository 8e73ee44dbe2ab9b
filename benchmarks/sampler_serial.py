"""The neighbour sampler alone, one thread, interleaved across source trees: kernel A/B timing.

A kernel change is judged by the serial batch time of ``NeighborSampler.sample`` (no loader,
no feature gather, one numba thread) on a typed graph (``mini-mag``: 7 relations, DGL
semantics, fanout 15,10, 1024 papers a batch) and a homogeneous one (``rmat20``: fanout
15,10,5, 1024 seeds, PyG and DGL semantics), because a change can help one and hurt the other
(session 13 found a typed-only 3x regression that rmat20 timing had missed). Each
``--trees`` entry is a source tree (a checkout or ``git archive`` of another commit) whose
``gnnsys`` is imported in its own subprocess; rounds alternate between the trees so box drift
hits them alike. Each round times ``--batches`` batches after a warm-up and also records a
digest of the last batch, so trees that should sample the same batches can be checked to.

Prints one JSON line per (round, tree, workload) and a summary line per workload with each
tree's median and range of ms a batch.

``--in-process``: one process instead, which loads each tree's ``gnnsys/loaders/_kernels.py``
as a module of its own (the rest of ``gnnsys`` is the running one's) and alternates blocks of
``--batches`` batches between them (A B, B A, ...) for ``--rounds`` pairs, on one sampler and
one graph: no per-process luck (heap layout, page placement, which core) and drift between
neighbouring blocks only. It times kernel changes only; a change elsewhere in the package
needs the subprocess mode. Noise floor (session 34, one kernel source twice, 40 rounds of 15
batches; ``cpu-2core-vm_sampler_inproc_s34.jsonl``): 0.999x on mini-mag (middle half of the
block ratios 0.982-1.017), 0.965x rmat20-dgl (0.917-1.031), 1.016x rmat20-pyg (0.945-1.085);
5 subprocess rounds of one kernel had ranged +-10%.

Usage:
    python benchmarks/sampler_serial.py --trees /tmp/base,. --rounds 7
    python benchmarks/sampler_serial.py --workloads mini-mag --rounds 3 --batches 20
    python benchmarks/sampler_serial.py --trees /tmp/base,. --in-process --rounds 60 --batches 20
    python benchmarks/sampler_serial.py --trees /tmp/base,. --workloads folder:/data/papers
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional

from ab_trees import load_tree_module, trees_and_workloads

HERE = Path(__file__).resolve().parent
# rmat20-disjoint: PyG semantics with disjoint=True, one tree per seed: the hash-table relabel
# map (as graphs over DENSE_MAP_MAX_NODES, e.g. papers, take), which the others never run.
# Also ``folder:DIR``: a dataset folder (``gnnsys data papers DIR``), its mapped CSC sampled
# with fanout 15,10,5, DGL semantics, its training nodes in a seeded order (the CSC is read
# through the page cache: a first run warms it).
WORKLOADS = ("mini-mag", "rmat20-pyg", "rmat20-dgl", "rmat20-disjoint")
FOLDER = "folder:"  # the prefix of a dataset folder workload
DEFAULT_WORKLOADS = WORKLOADS[:3]


def _digest(*tensors: Any) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def make_sampler(workload: str) -> Callable[[int, int], Any]:
    """``batch(i, epoch)``: the i-th batch of ``workload`` (one numba and torch thread)."""
    import numba
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    import loader_throughput as lt

    from gnnsys.graph import Graph
    from gnnsys.loaders import NeighborSampler
    from gnnsys.loaders.base import SampleKey

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    if workload.startswith(FOLDER):  # a dataset folder (e.g. papers), mapped from disk
        import scale

        from gnnsys.datasets import load_folder

        ds = load_folder(workload[len(FOLDER) :])
        seeds = scale._seeds(ds, ds.train_idx.numel())  # (scale.py's seeded training order)
        sampler = NeighborSampler(ds.graph, [15, 10, 5], semantics="dgl")
    elif workload == "mini-mag":
        arrays = lt.load_hetero(lt.resolve_hetero_folder("mini-mag"))
        meta = arrays["meta"]
        graph = Graph.from_hetero(arrays["edges"], meta["node_types"])
        target = meta["target"]
        offset = int(graph.type_offsets()[graph.node_type_id(target)])
        seeds = arrays["train_idx"] + offset
        sampler = NeighborSampler(graph, [15, 10], semantics="dgl")
    else:
        g = lt.load(lt.resolve_folder("rmat20"))
        n = g["x"].shape[0]
        graph = Graph.from_edge_index(torch.from_numpy(np.stack([g["src"], g["dst"]])), n)
        seeds = torch.from_numpy(g["train_idx"]).long()
        mode = workload.split("-")[1]
        disjoint = mode == "disjoint"
        sampler = NeighborSampler(graph, [15, 10, 5], semantics="pyg" if disjoint else mode,
                                  disjoint=disjoint)  # fmt: skip
    per = 1024
    count = max(1, seeds.numel() // per)

    def batch(i: int, epoch: int) -> Any:
        j = i % count
        return sampler.sample(seeds[j * per : (j + 1) * per], SampleKey(0, epoch, i))

    return batch


def run_one(workload: str, batches: int, warmup: int) -> Dict[str, Any]:
    """Time ``batches`` serial batches of ``workload`` in this process (one numba thread)."""
    batch = make_sampler(workload)
    for i in range(warmup):
        batch(i, 1)
    t0 = time.perf_counter()
    for i in range(batches):
        out = batch(i, 0)
    ms = (time.perf_counter() - t0) / batches * 1e3
    return {
        "ms_per_batch": round(ms, 4),
        "edges_per_batch": int(out.row.numel()),
        "nodes_per_batch": int(out.nodes.numel()),
        "last_batch_digest": _digest(out.nodes, out.row, out.col, out.edge_ids),
    }


def load_kernels(tree: str) -> ModuleType:
    """``tree``'s ``gnnsys/loaders/_kernels.py`` as a module of its own, with its own numba
    dispatchers (``ab_trees.load_tree_module``); its imports of other ``gnnsys`` modules
    resolve to the running package."""
    return load_tree_module(tree, "gnnsys/loaders/_kernels.py", "_sampler_kernels_")


def alternate(run: Dict[str, Callable[[], None]], rounds: int) -> Dict[str, List[float]]:
    """Seconds of each ``run[name]()`` call, the names taking turns: round r runs them in
    order when r is even, reversed when odd, so each pair of neighbouring blocks shares the
    box's state of that moment."""
    names = list(run)
    out: Dict[str, List[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            run[k]()
            out[k].append(time.perf_counter() - t0)
    return out


def run_in_process(trees: List[str], workload: str, rounds: int, batches: int,
                   warmup: int) -> Dict[str, Any]:  # fmt: skip
    """Each tree's sampler kernels on one ``workload`` sampler, alternating blocks of
    ``batches`` batches for ``rounds`` rounds; raises when the trees sample different batches."""
    from gnnsys.loaders import neighbor

    mods = {t: load_kernels(t) for t in trees}
    batch = make_sampler(workload)
    counter = [0]

    def block(m: ModuleType) -> Callable[[], None]:
        def go() -> None:
            neighbor._kernels = m
            for _ in range(batches):
                batch(counter[0], 0)
                counter[0] += 1

        return go

    digests = {}
    try:  # (the package's own kernels are put back however this ends)
        for t, m in mods.items():
            neighbor._kernels = m
            for i in range(max(warmup, 1)):  # (at least one: its batch is compared)
                out = batch(i, 1)
            digests[t] = _digest(out.nodes, out.row, out.col, out.edge_ids)
        if len(set(digests.values())) > 1:
            raise SystemExit(f"the trees sample different batches: {digests}")
        secs = alternate({t: block(m) for t, m in mods.items()}, rounds)
    finally:
        neighbor._kernels = sys.modules["gnnsys.loaders._kernels"]
    base = trees[0]
    row: Dict[str, Any] = {"summary": True, "workload": workload, "in_process": True,
                           "rounds": rounds, "batches": batches,
                           "last_warmup_digest": digests[base]}  # fmt: skip
    for t in trees:
        row[t] = {"ms_per_batch": round(sum(secs[t]) / (rounds * batches) * 1e3, 4)}
        if t != base:
            ratios = sorted(a / b for a, b in zip(secs[t], secs[base]))
            q = [ratios[int(p * (len(ratios) - 1))] for p in (0.25, 0.5, 0.75)]
            row[t]["vs_first"] = round(sum(secs[t]) / sum(secs[base]), 4)
            row[t]["block_ratio_quartiles"] = [round(x, 4) for x in q]
    return row


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trees", default=".", help="source trees, comma-separated (default: .)")
    p.add_argument(
        "--workloads", default=",".join(DEFAULT_WORKLOADS), help=f"of {', '.join(WORKLOADS)}"
    )
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument(
        "--in-process",
        action="store_true",
        help="one process: the trees' kernel modules take turns (module docstring)",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: one workload in this process
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.batches, args.warmup)))
        return 0
    folders = tuple(w for w in args.workloads.split(",") if w.startswith(FOLDER))
    for w in folders:
        if not Path(w[len(FOLDER) :]).is_dir():
            p.error(f"{w}: no such folder")
    trees, workloads = trees_and_workloads(p, args.trees, args.workloads, WORKLOADS + folders)
    print(json.dumps({"command": " ".join([Path(sys.executable).name] + sys.argv),
                      "trees": trees, "workloads": workloads, "rounds": args.rounds,
                      "batches": args.batches, "cpu_count": os.cpu_count()}))  # fmt: skip
    if args.in_process:
        for w in workloads:
            print(json.dumps(run_in_process(trees, w, args.rounds, args.batches, args.warmup)))
        return 0
    times: Dict[tuple, List[float]] = {}
    for rnd in range(args.rounds):
        for w in workloads:
            order = trees if rnd % 2 == 0 else trees[::-1]
            for t in order:
                env = dict(os.environ, PYTHONPATH=t, NUMBA_NUM_THREADS="1")
                cmd = [sys.executable, __file__, "--child", w, "--batches", str(args.batches),
                       "--warmup", str(args.warmup)]  # fmt: skip
                res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                row = json.loads(res.stdout.strip().splitlines()[-1])
                row.update(round=rnd, tree=t, workload=w)
                print(json.dumps(row), flush=True)
                times.setdefault((w, t), []).append(row["ms_per_batch"])
    for w in workloads:
        summary = {"summary": True, "workload": w}
        for t in trees:
            v = times[(w, t)]
            summary[t] = {"median_ms": round(statistics.median(v), 3),
                          "range_ms": [min(v), max(v)]}  # fmt: skip
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

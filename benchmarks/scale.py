"""The cost curve from tiny to papers100M's size: generate, build, sample, gather, train.

For each graph (``tiny``, ``mini``, ``products``: the in-memory generators, saved as CSC
folders; ``papers-mini``, ``papers``: generated to disk in chunks within ``--budget``), every
stage runs in a fresh child process, so each stage's peak RSS (``VmHWM``) is its own:

- ``gen``: generation and CSC build: seconds, peak RSS, on-disk size (a folder that already
  holds a finished dataset is reused: its meta.json has the generation's numbers, marked
  ``reused``);
- ``load``: ``load_folder`` (memory-mapped graph and float16 features), then the gnnsys Loader
  (fanout 15,10,5, batches of 1024 random training seeds, features and labels gathered):
  batches/s, peak RSS, resident anonymous vs file-backed memory, major page faults per gathered
  row (the page-cache miss rate of the feature gather) and the gather's GB/s on its own (as
  loaded, with ids sorted first, and with the kernel's default readahead);
- ``train``: one GraphSAGE epoch (3 layers, hidden 256, the trainer's own step) over a fixed
  subset of up to ``--train-seeds`` training nodes;
- with ``--peers dgl,pyg,graphbolt``: DGL's DataLoader + NeighborSampler, PyG's NeighborLoader
  (torch-sparse) and DGL's GraphBolt pipeline on the same CSC folder
  (benchmarks/peers/scale_{dgl,pyg,graphbolt}.py in the peer envs), where they fit; where one
  fails, how (exit status, the last line of its error).

One JSON object per line on stdout (and appended to ``--out``). Usage:
    python benchmarks/scale.py --root /work/data --graphs tiny,mini,papers-mini --peers dgl,pyg
    python benchmarks/scale.py --root /work/data --graphs papers --budget 8G
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
LARGE = ("papers-tiny", "papers-mini", "papers")
PEERS = {
    "dgl": Path(os.environ.get("GNNSYS_PEER_DGL", "/tmp/gnnsys-peers/dgl/bin/python")),
    "pyg": Path(os.environ.get("GNNSYS_PEER_PYG", "/tmp/gnnsys-peers/pyg/bin/python")),
}
PEERS["graphbolt"] = PEERS["dgl"]  # DGL 2.1's GraphBolt, in the DGL env


def proc_status() -> Dict[str, int]:
    """Peak and current resident memory of this process, in bytes (Linux /proc)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------- child stages
def stage_gen(args: argparse.Namespace) -> Dict[str, Any]:
    folder = Path(args.folder)
    if (folder / "meta.json").is_file():
        meta = json.loads((folder / "meta.json").read_text())
        out = {"reused": True, "seconds": meta.get("seconds"), "num_nodes": meta.get("num_nodes"),
               "num_edges": meta.get("num_edges"), "peak_rss_bytes": meta.get("peak_rss_bytes"),
               "csc_build": meta.get("csc_build")}  # fmt: skip
        out["disk_bytes"] = folder_bytes(folder)
        return out
    t0 = time.perf_counter()
    if args.graph in LARGE:
        from gnnsys.datasets.large import generate_large

        generate_large(args.graph, folder, memory_budget=args.budget)
        meta = json.loads((folder / "meta.json").read_text())
        seconds = meta["seconds"]
    else:
        import torch

        from gnnsys.datasets import save_folder, synthetic

        ds = synthetic(args.graph, cache=False)
        seconds = dict(ds.meta["seconds"])
        save_folder(ds, folder, layout="csc", x_dtype=torch.float16)
        meta = json.loads((folder / "meta.json").read_text())
        meta["seconds"] = seconds
        meta["peak_rss_bytes"] = proc_status()["VmHWM"]
        (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return {"reused": False, "wall_seconds": round(time.perf_counter() - t0, 2),
            "seconds": seconds, "num_nodes": meta["num_nodes"], "num_edges": meta["num_edges"],
            "peak_rss_bytes": proc_status()["VmHWM"], "disk_bytes": folder_bytes(folder),
            "csc_build": meta.get("csc_build")}  # fmt: skip


def _seeds(ds: Any, count: int, seed: int = 0, cycle: bool = False) -> Any:
    """``count`` training nodes in a seeded random order (all of them, repeated when
    ``cycle`` and there are fewer: the loader stages time a fixed number of batches)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    idx = ds.train_idx
    order = idx[torch.randperm(idx.numel(), generator=g)]
    if cycle and order.numel() < count:
        order = order.repeat(-(-count // order.numel()))
    return order[:count]


def stage_load(args: argparse.Namespace) -> Dict[str, Any]:
    import numpy as np
    import torch

    from gnnsys import _mapped
    from gnnsys.datasets import load_folder
    from gnnsys.datasets.outofcore import parse_bytes
    from gnnsys.features import FeatureStore
    from gnnsys.graph_io import madvise
    from gnnsys.loaders import Loader, NeighborSampler
    from gnnsys.loaders.base import SampleKey

    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    ds = load_folder(args.folder)
    table, cache_s = _table(ds, args)
    load_s = time.perf_counter() - t0
    fanout = [int(f) for f in args.fanout.split(",")]
    sampler = NeighborSampler(ds.graph, fanout, semantics="dgl")  # as the DGL peer samples
    seeds = _seeds(ds, (args.batches + args.warmup) * args.batch_size, seed=args.seed, cycle=True)
    loader = Loader(sampler, seeds, batch_size=args.batch_size, shuffle=False, seed=0,
                    features=FeatureStore(x=table), labels=ds.y)  # fmt: skip
    it = iter(loader)
    tw = time.perf_counter()
    for _ in range(args.warmup):
        next(it)
    warmup_s = time.perf_counter() - tw
    flt0 = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    t1 = time.perf_counter()
    nodes = 0
    stamps = []
    for _ in range(args.batches):
        batch = next(it)
        nodes += batch.subgraph.nodes.numel()
        stamps.append(time.perf_counter())
    loader_s = time.perf_counter() - t1
    # the rate over the second half of the timed batches: the page cache's steady state
    half = args.batches // 2
    late = (args.batches - half) / (stamps[-1] - stamps[half - 1]) if half else None
    # and over each tenth of them, to show the page cache warming
    marks = [t1] + stamps
    tenths = [round(len(c) / (marks[c[-1] + 1] - marks[c[0]]), 3)
              for c in np.array_split(np.arange(args.batches), 10) if len(c)]  # fmt: skip
    flt1 = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    # The gather alone, on node sets of batches not loaded before (other sample keys): as the
    # loader does it (load_folder advised the map by its size) and with the ids sorted first
    # (ascending file offsets) and the rows put back in order, interleaved; then a few batches
    # with the kernel's default readahead (MADV_NORMAL), last, as it floods the page cache.
    bs = args.batch_size
    gathers = args.batches if args.gather_batches < 0 else args.gather_batches
    plan = ["plain", "sorted"] * gathers + ["madv_normal"] * args.normal_batches
    other = _seeds(ds, len(plan) * bs, seed=args.seed + 1, cycle=True)
    gather: Dict[str, Dict[str, float]] = {how: {} for how in ("plain", "sorted", "madv_normal")}
    for i, how in enumerate(plan):
        ids = sampler.sample(other[i * bs : (i + 1) * bs], SampleKey(1, 0, i)).nodes
        if how == "madv_normal" and not gather[how]:
            madvise(ds.x, "MADV_NORMAL")
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
        t = time.perf_counter()
        if how == "sorted":
            order = ids.sort()
            rows = _gather(table, order.values)
            out = torch.empty_like(rows)
            out[order.indices] = rows
        else:
            _gather(table, ids)
        dt = time.perf_counter() - t
        g = gather[how]
        g["seconds"] = g.get("seconds", 0.0) + dt
        g["rows"] = g.get("rows", 0) + ids.numel()
        g["faults"] = g.get("faults", 0) + resource.getrusage(resource.RUSAGE_SELF).ru_majflt - f0
    madvise(ds.x, "MADV_RANDOM")
    row_bytes = ds.x.shape[1] * ds.x.element_size()
    return {
        "load_seconds": round(load_s, 3),
        "row_cache_bytes": parse_bytes(args.cache) if args.cache != "0" else 0,
        "row_cache_seconds": cache_s,
        "batches": args.batches,
        "warmup_batches": args.warmup,
        "warmup_seconds": round(warmup_s, 2),
        "batches_per_s": round(args.batches / loader_s, 3),
        "batches_per_s_second_half": round(late, 3) if late else None,
        "batches_per_s_by_tenth": tenths,
        "node_order": ds.meta.get("node_order", "given"),
        "sampled_nodes_per_batch": nodes // args.batches,
        "loader_major_faults_per_row": round((flt1 - flt0) / max(nodes, 1), 5),
        "gather": {
            how: {
                "rows": g["rows"],
                "gb_per_s": round(g["rows"] * row_bytes / g["seconds"] / 1e9, 3),
                "major_faults_per_row": round(g["faults"] / g["rows"], 5),
            }
            for how, g in gather.items()
            if g
        },  # fmt: skip
        "feature_table_bytes": int(ds.x.numel() * ds.x.element_size()),
        "mapped_rss_limit_bytes": _mapped.RESIDENT_LIMIT,
        "io_threads": _mapped.IO_THREADS,
        **{k.lower() + "_bytes": v for k, v in proc_status().items()},
    }


def _table(ds: Any, args: argparse.Namespace) -> Any:
    """The feature table the loader gathers from: ``ds.x`` (the mapped float16 file), or with
    ``--cache B`` a ``gnnsys.unified.from_file`` table keeping the B bytes of rows most often
    sampled (by how often each node is a neighbour) in RAM, the rest read from the file."""
    if args.cache == "0":
        return ds.x, 0.0
    from gnnsys.datasets.outofcore import parse_bytes
    from gnnsys.graph_io import advise_random
    from gnnsys.unified_tensor.tensor import from_file

    t = time.perf_counter()
    table = from_file(Path(args.folder) / "x.npy", cache=parse_bytes(args.cache),
                      cache_order=ds.graph, cache_device="cpu")  # fmt: skip
    advise_random(table._rows_np, hot_first=ds.meta.get("node_order") == "degree")
    return table, round(time.perf_counter() - t, 2)


def _gather(table: Any, ids: Any) -> Any:
    """Rows ``ids`` of a mapped tensor (the numba gather) or of a ``UnifiedTensor``."""
    import torch

    from gnnsys.features import gather_rows

    return gather_rows(table, ids) if isinstance(table, torch.Tensor) else table[ids]


def stage_train(args: argparse.Namespace) -> Dict[str, Any]:
    import torch

    from gnnsys.cli import build_parser, validate_train_args
    from gnnsys.datasets import load_folder
    from gnnsys.features import FeatureStore
    from gnnsys.trainer import NodeTask

    torch.manual_seed(0)
    parser = build_parser()
    targs = parser.parse_args(["train", "--dataset", f"folder:{args.folder}", "--fanout",
                               args.fanout, "--hidden", "256", "--batch-size",
                               str(args.batch_size), "--eval", "sampled"])  # fmt: skip
    validate_train_args(targs, targs.parser)
    ds = load_folder(args.folder)
    task = NodeTask(targs, ds, torch.device("cpu"))
    task.features = FeatureStore(x=_table(ds, args)[0])
    opt = torch.optim.Adam(task.model.parameters(), lr=targs.lr)
    seeds = _seeds(ds, args.train_seeds)
    task.model.train()
    t0 = time.perf_counter()
    steps = 0
    loss_sum = 0.0
    for batch in task.loader(seeds, 1):
        logits, target = task.step(task.model, batch)
        loss = torch.nn.functional.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += float(loss)
        steps += 1
    sec = time.perf_counter() - t0
    return {"train_seeds": int(seeds.numel()), "steps": steps, "epoch_seconds": round(sec, 2),
            "mean_loss": round(loss_sum / max(steps, 1), 4),
            **{k.lower() + "_bytes": v for k, v in proc_status().items()}}  # fmt: skip


STAGES = {"gen": stage_gen, "load": stage_load, "train": stage_train}


# ---------------------------------------------------------------------- the parent
def run_child(stage: str, args: argparse.Namespace, graph: str, folder: Path) -> Dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", stage, "--graph", graph,
           "--folder", str(folder), "--budget", args.budget, "--fanout", args.fanout,
           "--batch-size", str(args.batch_size), "--batches", str(args.batches),
           "--warmup", str(args.warmup), "--seed", str(args.seed), "--train-seeds", str(args.train_seeds), "--cache", args.cache,
           "--normal-batches", str(args.normal_batches),
           "--gather-batches", str(args.gather_batches)]  # fmt: skip
    return _run(cmd, args.timeout)


def run_peer(peer: str, args: argparse.Namespace, folder: Path) -> Dict[str, Any]:
    python = PEERS[peer]
    if not python.is_file():
        return {"ok": False, "error": f"no {peer} peer env at {python}"}
    cmd = [str(python), str(HERE / "peers" / f"scale_{peer}.py"), "--folder", str(folder),
           "--fanout", args.fanout, "--batch-size", str(args.batch_size), "--batches",
           str(args.batches)]  # fmt: skip
    return _run(cmd, args.timeout)


def _run(cmd: List[str], timeout: float) -> Dict[str, Any]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        how = "killed (SIGKILL: out of memory?)" if p.returncode == -9 else f"exit {p.returncode}"
        return {"ok": False, "error": f"{how}: {tail[:300]}",
                "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    return {"ok": True, **json.loads(lines[-1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default="/work/data/scale", help="folder of the dataset folders")
    p.add_argument("--graphs", default="tiny,mini,products,papers-mini,papers")
    p.add_argument("--budget", default="8G", help="memory budget of the on-disk generators")
    p.add_argument("--fanout", default="15,10,5")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3, help="loader batches before the timed ones")
    p.add_argument("--seed", type=int, default=0, help="seed of the loader's training-node order")
    p.add_argument("--train-seeds", type=int, default=100_000)
    p.add_argument("--stages", default="gen,load,train")
    p.add_argument("--cache", default="0", help="RAM for the hottest feature rows, e.g. 6G")
    p.add_argument(
        "--gather-batches",
        type=int,
        default=-1,
        help="load stage: node sets gathered alone, plain and sorted (-1: --batches)",
    )
    p.add_argument("--normal-batches", type=int, default=3,
                   help="gather batches with default readahead (0 for tables beyond RAM: with "
                   "8 MB readahead a fault each row, hours)")  # fmt: skip
    p.add_argument("--peers", default="", help="peers on the same folders: dgl,pyg,graphbolt")
    p.add_argument("--timeout", type=float, default=7200)
    p.add_argument("--out", default=None, help="also append the JSON lines to this file")
    p.add_argument("--child", choices=sorted(STAGES), help=argparse.SUPPRESS)
    p.add_argument("--graph", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args()
    unknown = set(filter(None, args.peers.split(","))) - set(PEERS)
    if unknown:
        p.error(f"--peers: unknown {sorted(unknown)}; known: {','.join(PEERS)}")
    if args.child:
        print(json.dumps(STAGES[args.child](args)), flush=True)
        return
    root = Path(args.root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    machine = {"machine": platform.node(), "cpus": os.cpu_count(),
               "mem_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")}  # fmt: skip
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    for graph in args.graphs.split(","):
        folder = root / graph
        for stage in filter(None, args.stages.split(",")):
            row = {"bench": "scale", "graph": graph, "stage": stage, "system": "gnnsys",
                   **run_child(stage, args, graph, folder), **machine, "command": command}  # fmt: skip
            _emit(row, args.out)
            if stage == "gen" and not row["ok"]:
                break
        for peer in args.peers.split(",") if args.peers else []:
            if folder.is_dir():
                row = {"bench": "scale", "graph": graph, "stage": "load", "system": peer,
                       **run_peer(peer, args, folder), **machine, "command": command}  # fmt: skip
                _emit(row, args.out)


def _emit(row: Dict[str, Any], out: Any) -> None:
    line = json.dumps(row)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()

"""DGL drop-in throughput: ``gnnsys.loaders.dgl.DataLoader`` vs DGL's own, same folder, same run.

The workload of issue #4 (DGL measured 25.7 batches/s on RMAT scale 20 here): fanout 15,10,5,
batches of 1024 shuffled seeds, ``prefetch_node_feats=["feat"]`` and ``prefetch_labels=["label"]``
as a DGL training script asks for them. The graph is written once with
``gnnsys.datasets.save_folder`` and both sides read that folder. Prints one JSON object per line:

- ``system: gnnsys``: the DGL adapter (blocks are ``gnnsys.Block`` here; real DGL blocks when
  ``--gnnsys-python`` points at an interpreter where dgl imports, e.g. the torch 2.2 peer env);
- ``peer: dgl``: /work/shared/peers/peer_dgl.py run with the DGL peer env's python;
- ``ratio``: gnnsys batches/s over DGL's.

Usage:
    python benchmarks/dgl_loader_throughput.py --graph rmat20 --batches 30
    python benchmarks/dgl_loader_throughput.py --graph mini --batches 10 --no-peer
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

PEERS_DIR = Path(os.environ.get("GNNSYS_PEERS_DIR", "/work/shared/peers"))
PEER_DGL_PYTHON = os.environ.get("GNNSYS_PEER_DGL", "/tmp/gnnsys-peers/dgl/bin/python")


def emit(obj: Dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def resolve_folder(graph: str) -> Path:
    """A saved folder for ``graph``: an existing folder, or a synthetic name written once."""
    path = Path(graph).expanduser()
    if path.is_dir():
        return path
    from gnnsys.datasets import default_root, save_folder, synthetic

    folder = default_root() / "bench-dgl" / f"{graph}-seed0"
    if not (folder / "train_idx.npy").is_file():
        try:
            save_folder(synthetic(graph, seed=0), folder)
        except FileExistsError:  # another run wrote it meanwhile
            pass
    return folder


def run_gnnsys(folder: Path, args: argparse.Namespace) -> Dict[str, Any]:
    """Time the DGL adapter over ``args.batches`` batches after ``args.warmup`` (in-process)."""
    import torch

    import gnnsys
    from gnnsys.datasets import load_folder
    from gnnsys.loaders import dgl as dgl_loading

    ds = load_folder(folder, mmap=False)
    g = ds.graph
    g.ndata["feat"], g.ndata["label"] = ds.x, ds.y
    fanout = [int(f) for f in args.fanout.split(",")][::-1]  # DGL lists the input layer first
    sampler = dgl_loading.NeighborSampler(
        fanout, prefetch_node_feats=["feat"], prefetch_labels=["label"]
    )
    loader = dgl_loading.DataLoader(
        g,
        ds.train_idx,
        sampler,
        batch_size=args.batch_size,
        shuffle=True,
        seed=0,
        num_workers=args.threads,
        block_type=args.block_type,
    )
    it = iter(loader)

    def take():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(loader)
            return next(it)

    for _ in range(args.warmup):
        take()
    t0 = time.perf_counter()
    nodes = 0
    block_kind = ""
    for _ in range(args.batches):
        input_nodes, _, blocks = take()
        assert blocks[0].srcdata["feat"].shape[0] == input_nodes.numel()
        nodes += input_nodes.numel()
        block_kind = type(blocks[0]).__module__.split(".")[0]
    seconds = time.perf_counter() - t0
    return {
        "system": "gnnsys",
        "api": "gnnsys.loaders.dgl.DataLoader",
        "version": gnnsys.__version__,
        "torch": torch.__version__,
        "blocks": block_kind,
        "threads": args.threads or None,
        "batch_size": args.batch_size,
        "fanout": args.fanout,
        "batches": args.batches,
        "seconds": round(seconds, 4),
        "batches_per_s": round(args.batches / seconds, 3),
        "seeds_per_s": round(args.batches * args.batch_size / seconds, 1),
        "sampled_nodes_per_batch": round(nodes / args.batches, 1),
        "graph": str(folder),
    }


def run_subprocess(cmd: List[str], timeout: int, what: str) -> Dict[str, Any]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"peer": what, "error": f"{type(err).__name__}: {err}"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"peer": what, "error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    return json.loads(lines[-1])


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", default="rmat20", help="a saved folder or a synthetic name")
    p.add_argument("--batches", type=int, default=30, help="timed batches per system")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", default="15,10,5", help="PyG order (first hop first), as the peers")
    p.add_argument("--threads", type=int, default=0, help="gnnsys sampling threads (0: all)")
    p.add_argument("--block-type", default="auto", choices=("auto", "dgl", "gnnsys"))
    p.add_argument("--no-peer", action="store_true", help="skip DGL itself")
    p.add_argument("--peer-python", default=PEER_DGL_PYTHON, help="python of the DGL peer env")
    p.add_argument(
        "--gnnsys-python",
        default=None,
        help="run the gnnsys side with this interpreter (e.g. the DGL peer env: real DGL blocks)",
    )
    p.add_argument("--peer-timeout", type=int, default=900)
    p.add_argument("--only-gnnsys", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    folder = resolve_folder(args.graph)
    if args.only_gnnsys:
        emit(run_gnnsys(folder, args))
        return 0
    if args.gnnsys_python:
        cmd = [args.gnnsys_python, __file__, "--only-gnnsys", "--graph", str(folder)]
        for flag in ("batches", "warmup", "batch_size", "fanout", "threads", "block_type"):
            cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        ours = run_subprocess(cmd, args.peer_timeout, "gnnsys")
    else:
        ours = run_gnnsys(folder, args)
    emit(ours)
    if args.no_peer:
        return 0
    peer = run_subprocess(
        [
            args.peer_python,
            str(PEERS_DIR / "peer_dgl.py"),
            str(folder),
            "--batches",
            str(args.batches),
            "--batch-size",
            str(args.batch_size),
            "--fanout",
            args.fanout,
        ],
        args.peer_timeout,
        "dgl",
    )
    emit(peer)
    if "batches_per_s" in ours and "batches_per_s" in peer:
        emit(
            {
                "ratio": "gnnsys/dgl",
                "batches_per_s": round(ours["batches_per_s"] / peer["batches_per_s"], 3),
                "goal": 2.0,
            }
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GNNPipe vs graph parallelism vs hybrid: communication volume, accuracy, epoch time.

Prints one JSON object per line. Every number is measured in this run: bytes are counted by the
ranks' Transport (what was handed to gloo), accuracies come from exact evaluation passes, epoch
seconds are the slowest rank's wall time on this machine (CPU ranks over gloo, so they say
little about GPU speed).

Parts (each can be skipped):

* volume: a products-like graph scaled down (the ``products`` recipe of
  ``gnnsys.datasets.synthetic``: RMAT, 85% of edges inside a class, 100-d features, 47 classes,
  at ``--scale``), ``--nproc`` ranks, one epoch per depth in ``--layers``: graph-parallel (one
  part per rank), GNNPipe (one stage per rank) and hybrid (stages x groups), naming the
  partitioner. The ratio graph/GNNPipe compares per-epoch training traffic (boundaries, halos,
  gradient all-reduce; the one-time warm fill is reported apart).
* timing (``--timing``): epoch time of graph-parallel, GNNPipe and hybrid per depth in
  ``--timing-layers`` on each graph of ``--timing-graphs``, with no modeled network and with
  each bandwidth of ``--nets`` (Gb/s, latency ``--net-latency-us``), profiled: the per-section
  breakdown of every rank, the analytic model's prediction (from the run's own profile and
  from the loopback profile of the same configuration), the GPipe bubble. ``--dilation K``
  adds runs at ``gbps / K`` and ``latency * K``: this CPU's compute against a network K times
  slower is the same ratio as compute K times faster (a GPU) against the named network, so
  ``seconds / K`` is that machine's epoch, with every non-network cost also K times faster.
  ``--rounds`` repeats the whole set, interleaved. ``--chunk-sweep`` adds GNNPipe at those
  chunk counts (GPipe and 1F1B; hybrid too with ``--sweep-hybrid``) beside graph-parallel.
* accuracy: deep GCNII (``--acc-layers``) on ``--acc-dataset`` for single-process,
  graph-parallel, GNNPipe with M in ``--chunks`` and hybrid, then GNNPipe with each convergence
  technique ablated (all on minus one, and none).

Example (short):
    python benchmarks/gnnpipe.py --scale 13 --layers 8,32 --acc-dataset tiny --acc-epochs 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any, Dict, List

import torch

from gnnsys.datasets import rmat_dataset, synthetic
from gnnsys.pipeline_parallel import run, run_many

TRAIN_KINDS = ("activation", "gradient", "halo", "halo_grad", "allreduce", "refresh", "clip")
ALL_ON = {
    "warm_fill": True,
    "smoothing": True,
    "refresh_every": 10,
    "shuffle_chunks": True,
    "clip_norm": 1.0,
    "fresh_grad": True,
}
NONE = {
    "warm_fill": False,
    "smoothing": False,
    "refresh_every": 0,
    "shuffle_chunks": False,
    "clip_norm": None,
    "fresh_grad": False,
}


def emit(obj: Dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def train_bytes(row: Dict[str, Any]) -> int:
    return sum(b for k, b in row["bytes"].items() if k in TRAIN_KINDS)


def volume(args: argparse.Namespace) -> None:
    ds = products_like(args)
    g = ds.graph
    emit({"part": "volume", "graph": ds.name, "nodes": g.num_nodes, "edges": g.num_edges})
    stages, groups = args.hybrid
    specs = []
    for layers in args.layers:
        model = {"kind": args.volume_model, "hidden": args.hidden, "num_layers": layers}
        train = {"epochs": 1, "eval_every": 0, "seed": args.seed}
        common = {"model": model, "train": train, "partition_method": args.partition}
        specs += [
            {"mode": "graph", **common},
            {"mode": "pipe", "chunks": args.volume_chunks, **common},
            {
                "mode": "hybrid",
                "stages": stages,
                "groups": groups,
                "chunks": args.volume_chunks,
                **common,
            },
        ]
    t0 = time.perf_counter()
    outs = run_many(ds, specs, args.nproc)
    by_layers: Dict[int, Dict[str, Any]] = {}
    for spec, out in zip(specs, outs):
        layers = spec["model"]["num_layers"]
        row = out["epochs"][0]
        rec = {
            "part": "volume",
            "layers": layers,
            "mode": out["mode"],
            "model": args.volume_model,
            "hidden": args.hidden,
            "nproc": args.nproc,
            "stages": out["stages"],
            "groups": out["groups"],
            "chunks": out["chunks"],
            "partitioner": {k: v["method"] for k, v in out["partition"].items()},
            "total_halo": {k: v["total_halo"] for k, v in out["partition"].items()},
            "bytes_per_epoch": row["bytes"],
            "train_bytes_per_epoch": train_bytes(row),
            "warm_bytes": sum(out["warm"]["bytes"].values()),
            "epoch_seconds_this_cpu": round(row["seconds"], 3),
        }
        by_layers.setdefault(layers, {})[out["mode"]] = rec
        emit(rec)
    for layers, recs in sorted(by_layers.items()):
        gp = recs["graph"]["train_bytes_per_epoch"]
        emit(
            {
                "part": "volume_ratio",
                "layers": layers,
                "graph_over_pipe": round(gp / max(recs["pipe"]["train_bytes_per_epoch"], 1), 2),
                "graph_over_hybrid": round(gp / max(recs["hybrid"]["train_bytes_per_epoch"], 1), 2),
                "graph_over_pipe_excl_allreduce": round(
                    (gp - recs["graph"]["bytes_per_epoch"].get("allreduce", 0))
                    / max(recs["pipe"]["train_bytes_per_epoch"], 1),
                    2,
                ),
            }
        )
    emit({"part": "volume_done", "seconds": round(time.perf_counter() - t0, 1)})


def products_like(args: argparse.Namespace):
    """The products-like RMAT graph of the volume part, at ``--scale``."""
    return rmat_dataset(
        scale=args.scale,
        edge_factor=16,
        feat_dim=100,
        num_classes=47,
        intra=0.85,
        noise=4.0,
        seed=args.seed,
        cache=False,
    )


def timing(args: argparse.Namespace) -> None:
    nets = [(None, 1)] + [(g, 1) for g in args.nets]
    nets += [(g, k) for k in args.dilation for g in args.dilation_nets]
    for name in args.timing_graphs:
        ds = products_like(args) if name == "products-like" else synthetic(name, seed=args.seed)
        g = ds.graph
        emit({"part": "timing", "graph": name, "nodes": g.num_nodes, "edges": g.num_edges})
        t0 = time.perf_counter()
        for rnd in range(args.rounds):
            for layers in args.timing_layers:
                timing_group(args, ds, name, rnd, layers, nets)
            if args.chunk_sweep:
                # GNNPipe at the sweep's depth: chunk counts beyond 16 and both schedules,
                # with no modeled network and the dilated 10 Gb/s one.
                sweep = [("graph", 1, "gpipe")]
                sweep += [("pipe", c, s) for c in args.chunk_sweep for s in ("gpipe", "1f1b")]
                if args.sweep_hybrid:
                    sweep += [("hybrid", c, "gpipe") for c in args.chunk_sweep]
                sweep_nets = [(None, 1)] + [(g, k) for k in args.dilation[-1:] for g in
                                            args.dilation_nets[:1]]  # fmt: skip
                timing_group(args, ds, name, rnd, args.sweep_layers, sweep_nets, sweep,
                             part="chunk_sweep")  # fmt: skip
        emit({"part": "timing_done", "graph": name, "seconds": round(time.perf_counter() - t0, 1)})


def timing_group(
    args, ds, name: str, rnd: int, layers: int, nets, variants=None, part: str = "timing"
) -> None:
    """One round at one depth: every network x variant in one set of ranks, emitted at the end.

    ``variants``: (mode, chunks, schedule) triples; default graph, pipe and hybrid at
    ``--volume-chunks`` with ``--schedule``."""
    from gnnsys.pipeline_parallel.cost_model import gpipe_bubble, predict
    from gnnsys.pipeline_parallel.netmodel import NetModel

    stages, groups = args.hybrid
    m = args.volume_chunks
    variants = variants or [(v, m, args.schedule) for v in ("graph", "pipe", "hybrid")]
    specs, keys = [], []
    model = {"kind": args.volume_model, "hidden": args.hidden, "num_layers": layers}
    for gbps, k in nets:
        for mode, chunks, sched in variants:
            train = {
                "epochs": args.timing_epochs,
                "eval_every": 0,
                "seed": args.seed,
                "profile": True,
                "schedule": sched,
                "net_gbps": None if gbps is None else gbps / k,
                "net_latency_us": 0.0 if gbps is None else args.net_latency_us * k,
            }
            spec = {"mode": mode, "model": model, "train": train}
            spec["partition_method"] = args.partition
            if mode != "graph":
                spec["chunks"] = chunks
            if mode == "hybrid":
                spec.update(stages=stages, groups=groups)
            specs.append(spec)
            keys.append((gbps, k, (mode, chunks, sched)))
    outs = run_many(ds, specs, args.nproc)
    loopback = {key[2]: out for key, out in zip(keys, outs) if key[0] is None}
    for (gbps, k, variant), out in zip(keys, outs):
        mode, _, sched = variant
        net = None if gbps is None else NetModel(gbps / k, args.net_latency_us * k)
        rows = out["epochs"][1:] or out["epochs"]
        secs = sorted(r["seconds"] for r in rows)
        row = rows[-1]
        own = predict(out, net, cores=args.cores)
        base = predict(loopback[variant], net, cores=args.cores)
        emit(
            {
                "part": part,
                "graph": name,
                "round": rnd,
                "layers": layers,
                "mode": mode,
                "stages": out["stages"],
                "groups": out["groups"],
                "chunks": out["chunks"],
                "schedule": sched,
                "net_gbps": gbps,
                "net_latency_us": None if gbps is None else args.net_latency_us,
                "dilation": k,
                "modeled_gbps": None if gbps is None else gbps / k,
                "epoch_seconds": round(secs[len(secs) // 2], 4),
                "epoch_seconds_dilated": round(secs[len(secs) // 2] / k, 5),
                "predicted_own_profile": round(own["epoch_seconds"], 4),
                "predicted_from_loopback": round(base["epoch_seconds"], 4),
                "predicted_bubble": round(own["bubble"], 4),
                "core_bound": round(own.get("core_bound", 0.0), 4),
                "gpipe_bubble": round(gpipe_bubble(out["stages"], out["chunks"]), 4)
                if mode != "graph"
                else 0.0,
                "bytes": row["bytes"],
                "messages": row["messages"],
                "breakdown": row["breakdown"],
                "breakdown_cpu": row["breakdown_cpu"],
                # per rank (kind, chunk, busy wall, busy cpu): what the model replays
                "steps": row["steps"],
                "ranks_bytes": [r["bytes"].get(row["epoch"], {}) for r in out["ranks"]],
            }
        )


def accuracy(args: argparse.Namespace) -> None:
    ds = synthetic(args.acc_dataset, seed=args.seed)
    g = ds.graph
    emit({"part": "accuracy", "dataset": ds.name, "nodes": g.num_nodes, "edges": g.num_edges})
    stages, groups = args.hybrid
    for layers in args.acc_layers:
        model = {
            "kind": "gcnii",
            "hidden": args.acc_hidden,
            "num_layers": layers,
            "dropout": args.dropout,
            "alpha": 0.1,
            "theta": 0.5,
        }
        train = {
            "epochs": args.acc_epochs,
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "layer_weight_decay": args.layer_weight_decay,
            "lr_schedule": args.lr_schedule,
            "eval_every": args.eval_every,
            "seed": args.seed,
        }
        if "single" in args.acc_modes:
            t0 = time.perf_counter()
            single = run("single", ds, model, train={**train, "threads": args.single_threads})
            report(args, layers, "single", {"mode": "single"}, single, time.perf_counter() - t0)
        m = args.ablation_chunks
        specs: List[Dict[str, Any]] = []
        if "graph" in args.acc_modes:
            specs.append({"mode": "graph", "label": "n/a"})
        tech = args.techniques
        label = "default" if not tech else "default+" + json.dumps(tech, sort_keys=True)
        if "pipe" in args.acc_modes:
            for c in args.chunks:
                specs.append({"mode": "pipe", "chunks": c, "techniques": tech, "label": label})
        if "hybrid" in args.acc_modes:
            specs.append(
                {
                    "mode": "hybrid",
                    "stages": stages,
                    "groups": groups,
                    "chunks": m,
                    "techniques": tech,
                    "label": label,
                }
            )
        for label in args.ablation:
            if label == "none":
                tech = dict(NONE)
            elif label == "all":
                tech = dict(ALL_ON)
            else:
                name = label[len("all-") :]
                if not label.startswith("all-") or name not in ALL_ON:
                    raise SystemExit(f"unknown ablation {label!r}: none, all or all-<technique>")
                tech = {**ALL_ON, name: NONE[name]}
            specs.append({"mode": "pipe", "chunks": m, "techniques": tech, "label": label})
        if not specs:
            continue
        labels = [s.pop("label", "") for s in specs]
        t0 = time.perf_counter()
        outs = run_many(
            ds,
            [
                {**s, "model": model, "train": train, "partition_method": args.partition}
                for s in specs
            ],
            args.nproc,
        )
        seconds = time.perf_counter() - t0
        for spec, label, out in zip(specs, labels, outs):
            report(args, layers, label, spec, out, seconds / len(specs))


def report(args, layers, label, spec, out, wall) -> None:
    rows = [r for r in out["epochs"] if "test_acc" in r]
    best = max(rows, key=lambda r: r["val_acc"]) if rows else {}
    last = rows[-1] if rows else {}
    secs = [r["seconds"] for r in out["epochs"][1:]] or [out["epochs"][0]["seconds"]]
    rec = {
        "part": "accuracy",
        "layers": layers,
        "mode": out.get("mode", spec.get("mode")),
        "chunks": out.get("chunks"),
        "techniques": label,
        "epochs": len(out["epochs"]),
        "final_loss": round(out["epochs"][-1]["loss"], 4),
        "test_acc_at_best_val": round(best.get("test_acc", float("nan")), 4),
        "best_val_acc": round(best.get("val_acc", float("nan")), 4),
        "last_test_acc": round(last.get("test_acc", float("nan")), 4),
        "median_epoch_seconds_this_cpu": round(sorted(secs)[len(secs) // 2], 3),
        "wall_seconds": round(wall, 1),
        # [epoch, training loss, val acc, test acc] at every evaluation: convergence is judged
        # from these, not from the last row alone.
        "curve": [
            [r["epoch"], round(r["loss"], 4), round(r["val_acc"], 4), round(r["test_acc"], 4)]
            for r in rows
        ],
    }
    if "epochs" in out and out["epochs"] and "bytes" in out["epochs"][-1]:
        rec["train_bytes_per_epoch"] = train_bytes(out["epochs"][-1])
    if "max_stale_age" in out:
        rec["max_stale_age"] = out["max_stale_age"]
    emit(rec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    ap.add_argument("--nproc", type=int, default=4)
    ap.add_argument("--hybrid", type=ints, default=[2, 2], help="stages,groups")
    ap.add_argument("--partition", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-volume", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--scale", type=int, default=15, help="products-like RMAT scale (2^scale ids)")
    ap.add_argument("--layers", type=ints, default=[8, 16, 32, 64])
    ap.add_argument("--hidden", type=int, default=16, help="width for the volume runs")
    ap.add_argument("--volume-model", default="gcn", choices=["gcn", "gcnii", "sage", "gat"])
    ap.add_argument("--volume-chunks", type=int, default=8)
    ap.add_argument("--timing", action="store_true", help="run the timing part")
    ap.add_argument(
        "--timing-graphs",
        type=lambda v: v.split(","),
        default=["products-like", "mini"],
        help="products-like (the volume graph at --scale) or gnnsys.datasets.synthetic names",
    )
    ap.add_argument("--timing-layers", type=ints, default=[16, 32, 64])
    ap.add_argument("--timing-epochs", type=int, default=3, help="the first epoch is dropped")
    floats = lambda s: [float(x) for x in s.split(",") if x]  # noqa: E731
    ap.add_argument("--nets", type=floats, default=[10.0, 25.0, 100.0], help="Gb/s")
    ap.add_argument("--net-latency-us", type=float, default=5.0)
    ap.add_argument("--dilation", type=ints, default=[], help="compute speed-ups K to emulate")
    ap.add_argument("--dilation-nets", type=floats, default=[10.0])
    ap.add_argument("--schedule", default="gpipe", choices=["gpipe", "1f1b"])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--chunk-sweep", type=ints, default=[], help="GNNPipe chunk counts to sweep")
    ap.add_argument("--sweep-layers", type=int, default=32)
    ap.add_argument(
        "--sweep-hybrid", action="store_true", help="also sweep hybrid (--hybrid grid, GPipe)"
    )
    ap.add_argument(
        "--cores", type=int, default=os.cpu_count() or 1, help="cores for the model's bound"
    )
    ap.add_argument("--acc-dataset", default="mini")
    ap.add_argument("--acc-layers", type=ints, default=[16, 32])
    ap.add_argument("--acc-hidden", type=int, default=64)
    ap.add_argument("--acc-epochs", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--chunks", type=ints, default=[4, 8, 16])
    ap.add_argument(
        "--acc-modes", type=lambda v: v.split(","), default=["single", "graph", "pipe", "hybrid"]
    )
    ap.add_argument(
        "--ablation",
        type=lambda v: [x for x in v.split(",") if x],
        default=["none", "all"] + [f"all-{k}" for k in ALL_ON],
        help="GNNPipe technique sets at --ablation-chunks: none, all, all-<technique>",
    )
    ap.add_argument("--ablation-chunks", type=int, default=8)
    ap.add_argument(
        "--techniques",
        type=json.loads,
        default={},
        help='JSON Techniques overrides for the default pipe/hybrid runs, e.g. {"momentum": 0.9}',
    )
    ap.add_argument(
        "--single-threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads of the single-process reference (distributed ranks use 1 each)",
    )
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument(
        "--layer-weight-decay",
        type=float,
        default=None,
        help="weight decay of the graph layers (GCNII's recipe: 0.01); default --weight-decay",
    )
    ap.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"])
    ap.add_argument("--dropout", type=float, default=0.5)
    args = ap.parse_args(argv)
    emit(
        {
            "bench": "gnnpipe",
            "machine": platform.machine(),
            "cpus": torch.get_num_threads(),
            "torch": torch.__version__,
            "args": vars(args),
        }
    )
    if args.timing:
        timing(args)
    if not args.skip_volume:
        volume(args)
    if not args.skip_accuracy:
        accuracy(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Plot the cost curves of benchmarks/scale.py's JSON lines (one panel per measure, log-log
against the number of edges; the last line of each graph/stage/system wins, files read in
order).

Usage:
    python benchmarks/scale_plot.py benchmarks/results/cpu-2core-vm_scale.jsonl \
        benchmarks/results/cpu-2core-vm_scale_hotfirst.jsonl \
        benchmarks/results/cpu-2core-vm_scale_s13.jsonl \
        --out benchmarks/results/cpu-2core-vm_scale.png
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List, Tuple


def latest(paths: List[str]) -> Dict[Tuple[str, str, str], Dict[str, Any]]:
    rows: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    rows[(r["graph"], r["stage"], r["system"])] = r
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+")
    p.add_argument("--out", default="scale.png")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = latest(args.results)
    edges = {g: r["num_edges"] for (g, st, _), r in rows.items() if st == "gen" and r.get("ok")}
    order = sorted(edges, key=edges.get)
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    panels = [
        ("generation + CSC build (s)", "gen", lambda r: sum(r["seconds"].values())),
        ("loader batches/s (15,10,5, batch 1024)", "load", lambda r: r["batches_per_s"]),
        ("peak RSS (GiB)", None, None),
        (
            "GraphSAGE training step, batch 1024 (s)",
            "train",
            lambda r: r["epoch_seconds"] / r["steps"],
        ),  # fmt: skip
    ]
    for ax, (title, stage, get) in zip(axes, panels):
        ax.set_title(title, fontsize=10)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("edges")
        if stage is None:  # peak RSS of generation and of loading
            for st, key, label in (("gen", "peak_rss_bytes", "generate"),
                                   ("load", "vmhwm_bytes", "load")):  # fmt: skip
                pts = [(edges[g], rows[(g, st, "gnnsys")][key] / 2**30) for g in order
                       if rows.get((g, st, "gnnsys"), {}).get("ok")]  # fmt: skip
                if pts:
                    ax.plot(*zip(*pts), "o-", label=f"gnnsys {label}")
            for peer in ("dgl", "pyg", "graphbolt"):
                pts = [(edges[g], rows[(g, "load", peer)]["vmhwm_bytes"] / 2**30) for g in order
                       if rows.get((g, "load", peer), {}).get("ok")]  # fmt: skip
                if pts:
                    ax.plot(*zip(*pts), "s--", label=f"{peer} load")
            ax.axhline(24, color="grey", lw=0.8, ls=":")
            ax.legend(fontsize=8)
            continue
        for system in ("gnnsys", "dgl", "pyg", "graphbolt"):
            pts = [(edges[g], get(rows[(g, stage, system)])) for g in order
                   if rows.get((g, stage, system), {}).get("ok")]  # fmt: skip
            if pts:
                ax.plot(*zip(*pts), "o-" if system == "gnnsys" else "s--", label=system)
        ax.legend(fontsize=8)
    for g in order:
        axes[0].annotate(g, (edges[g], sum(rows[(g, "gen", "gnnsys")]["seconds"].values())),
                         fontsize=7)  # fmt: skip
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()

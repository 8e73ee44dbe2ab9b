"""Rounds of gnnsys against a peer, interleaved, for the benchmarks that run inside a peer's
environment (subgraph_samplers.py, link_loaders.py): batches/s of a built loader, the JSON row
of each (round, system), and the summary of ranges over the rounds."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
from loader_throughput import time_iter

WARMUP = 3


def rate(loader: Any, batches: int, count: Callable[[Any], tuple]) -> Dict[str, float]:
    """batches/s of ``loader`` (built before, untimed) over ``batches`` items after
    ``WARMUP``, and the mean (nodes, edges) a batch; a short epoch goes on with the next one
    (``iter(loader)`` again: its start-up cost counted, as a user's next epoch pays it).
    ``loader_throughput.time_iter`` times it."""
    t = time_iter(lambda: iter(loader), batches, WARMUP, lambda b: np.array(count(b), np.int64))
    nodes, edges = t["nodes"]
    return {"batches_per_s": round(batches / t["seconds"], 3),
            "nodes_per_batch": round(float(nodes) / batches, 1),
            "edges_per_batch": round(float(edges) / batches, 1)}  # fmt: skip


def run_rounds(
    runs: Dict[str, Callable[[int], Dict]], rounds: int, common: Dict[str, Any]
) -> Dict[str, Any]:
    """Each round runs every system in turn (gnnsys first) and prints its JSON row; returns
    {system: [rows]} of those that ran and {system: reason} of those that could not."""
    by: Dict[str, List[Dict]] = {}
    skipped: Dict[str, str] = {}
    for r in range(rounds):
        for system, run in runs.items():
            row = {"round": r, "system": system, **common, **run(r)}
            print(json.dumps(row), flush=True)
            if row.get("skipped"):
                skipped[system] = row["reason"]
            else:
                by.setdefault(system, []).append(row)
    return {"ran": by, "skipped": skipped}


def print_summary(
    name: str, result: Dict[str, Any], common: Dict[str, Any], rounds: int, command: str,
    argv: Optional[Sequence[str]],
) -> None:  # fmt: skip
    """The summary line: per system the range of batches/s, nodes and edges a batch, the range
    of gnnsys / peer batches/s per round, the peers that could not run, and the command."""
    import sys

    by, skipped = result["ran"], result["skipped"]
    summary: Dict[str, Any] = {"summary": name, **common, "rounds": rounds}
    summary.update({f"{system}_skipped": why for system, why in skipped.items()})
    peer = next((s for s in by if s != "gnnsys"), None)
    if peer and "gnnsys" in by:
        vals = [x["batches_per_s"] / y["batches_per_s"] for x, y in zip(by["gnnsys"], by[peer])]
        summary[f"gnnsys_over_{peer}_batches_per_s"] = [round(min(vals), 3), round(max(vals), 3)]
    for system, rows in by.items():
        for field in ("batches_per_s", "nodes_per_batch", "edges_per_batch"):
            vals = [row[field] for row in rows]
            summary[f"{system}_{field}"] = [min(vals), max(vals)]
    summary["command"] = f"python {command} " + " ".join(sys.argv[1:] if argv is None else argv)
    print(json.dumps(summary), flush=True)

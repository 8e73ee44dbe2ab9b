"""Tables from ``benchmarks/gnnpipe.py --timing`` output: epoch seconds per mode and network.

Reads the JSON lines (a file or stdin) and prints, per graph, depth and network, the range
over rounds of each mode's epoch seconds (divided by the dilation K for emulated faster
compute), graph-parallel / GNNPipe and graph-parallel / hybrid per round, and the cost model's
predictions next to the measurements. Also the chunk sweep (GNNPipe by M and schedule).

Example:
    python benchmarks/gnnpipe_summary.py benchmarks/results/cpu-2core-vm_gnnpipe_timing.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from typing import Any, Dict, List


def load(path: str) -> List[Dict[str, Any]]:
    f = sys.stdin if path == "-" else open(path)
    rows = [json.loads(line) for line in f if line.strip().startswith("{")]
    return [r for r in rows if r.get("part") in ("timing", "chunk_sweep") and "mode" in r]


def span(values: List[float], digits: int = 3) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.{digits}f}" if abs(hi - lo) < 10**-digits else f"{lo:.{digits}f}-{hi:.{digits}f}"


def net_name(r: Dict[str, Any]) -> str:
    if r["net_gbps"] is None:
        return "loopback"
    k = r.get("dilation", 1)
    return f"{r['net_gbps']:g} Gb/s" + (f" @K={k}" if k > 1 else "")


def timing_table(rows: List[Dict[str, Any]]) -> None:
    groups: Dict[tuple, Dict[str, List[Dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["part"] == "timing":
            key = (r["graph"], r["layers"], r["net_gbps"] or 0.0, r.get("dilation", 1))
            groups[key][r["mode"]].append(r)
    print("graph | layers | network | graph-parallel s | GNNPipe s | hybrid s | graph/pipe "
          "| graph/hybrid | pipe predicted (own / loopback profile)")  # fmt: skip
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[3], k[2])):
        by = groups[key]
        k = key[3]
        secs = {m: [r["epoch_seconds"] / k for r in by[m]] for m in by}
        per_round = defaultdict(dict)
        for m in by:
            for r in by[m]:
                per_round[r["round"]][m] = r["epoch_seconds"]
        ratio_p = [
            v["graph"] / v["pipe"] for v in per_round.values() if {"graph", "pipe"} <= set(v)
        ]
        ratio_h = [
            v["graph"] / v["hybrid"] for v in per_round.values() if {"graph", "hybrid"} <= set(v)
        ]
        pred = [
            f"{r['predicted_own_profile'] / k:.3f}/{r['predicted_from_loopback'] / k:.3f}"
            for r in by.get("pipe", [])
        ]
        digits = 5 if k > 1 else 3
        print(
            " | ".join(
                [
                    key[0],
                    str(key[1]),
                    net_name(by[next(iter(by))][0]),
                    span(secs.get("graph", [0]), digits),
                    span(secs.get("pipe", [0]), digits),
                    span(secs.get("hybrid", [0]), digits),
                    span(ratio_p, 2) if ratio_p else "",
                    span(ratio_h, 2) if ratio_h else "",
                    ", ".join(pred),
                ]
            )
        )


def sweep_table(rows: List[Dict[str, Any]]) -> None:
    sweep: Dict[tuple, List[float]] = defaultdict(list)
    for r in rows:
        if r["part"] == "chunk_sweep":
            key = (r["graph"], r["layers"], net_name(r), r["mode"], r["chunks"], r["schedule"])
            sweep[key].append(r["epoch_seconds"] / r.get("dilation", 1))
    if not sweep:
        return
    print("\nchunk sweep: graph | layers | network | mode | M | schedule | epoch s")
    for key in sorted(sweep, key=lambda k: (k[0], k[1], k[2], k[3], k[4], k[5])):
        print(" | ".join(map(str, key)) + " | " + span(sweep[key], 5))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default="-")
    args = ap.parse_args(argv)
    rows = load(args.path)
    timing_table(rows)
    sweep_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

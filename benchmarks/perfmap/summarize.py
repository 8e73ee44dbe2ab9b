"""Summarise ``perf report --stdio --sort dso,sym`` text (stdin) as one JSON line: each
symbol's share of the samples, and the shares by kind (numba kernels named by the perf map,
unnamed JIT code, the OS kernel, the Python interpreter, other libraries).

    perf report -i perf.data --stdio --sort dso,sym | python benchmarks/perfmap/summarize.py
"""

import json
import re
import sys
from typing import Dict, Iterable

_ROW = re.compile(r"^\s*([0-9.]+)%\s+(\S.*?)\s+\[(.)\]\s+(.*?)\s*$")


def kind_of(dso: str, sym: str) -> str:
    if dso.startswith("[JIT]"):
        return "jit_unnamed" if sym.startswith("0x") else "numba"
    if dso == "[kernel.kallsyms]":
        return "os_kernel"
    if dso.startswith("libpython"):
        return "python"
    return "other"


def summarize(lines: Iterable[str], top: int = 40) -> Dict[str, object]:
    """{"by_kind": {kind: percent}, "by_numba_function": {...}, "top": [[percent, dso, sym]]}"""
    rows = []
    for line in lines:
        if line.startswith("#"):
            continue
        m = _ROW.match(line)
        if m:
            pct, dso, _, sym = m.groups()
            rows.append((float(pct), dso.strip(), sym))
    by_kind: Dict[str, float] = {}
    by_fn: Dict[str, float] = {}
    for pct, dso, sym in rows:
        k = kind_of(dso, sym)
        by_kind[k] = by_kind.get(k, 0.0) + pct
        if k == "numba":  # (one row per process: the same kernel in several processes adds up)
            by_fn[sym] = by_fn.get(sym, 0.0) + pct
    rnd = {k: round(v, 2) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])}
    fns = {k: round(v, 2) for k, v in sorted(by_fn.items(), key=lambda kv: -kv[1])}
    return {"by_kind": rnd, "by_numba_function": fns,
            "top": [[p, d, s] for p, d, s in rows[:top]]}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(summarize(sys.stdin)))

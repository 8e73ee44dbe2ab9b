"""Where the test suite's time goes to numba: a pytest plugin that logs every real compile.

A fresh clone's ``make test`` starts with an empty numba cache, so every kernel variant a test
reaches compiles once (the sampler's mode variants take 10-30 s each on a 2-core VM). This
plugin wraps numba's ``Dispatcher.compile`` and writes one JSON line per outermost compile that
ended in a cache save (a cache hit or a callee compiled inside it is not counted) to the file
named by ``GNNSYS_COMPILE_LOG``: process id, module, function, seconds, the test running.
Running this file summarises such a log: total compile seconds, per module, per function, and
the functions compiled by more than one process (pytest-xdist workers racing on a cold cache).

Usage (from a fresh clone, so that the cache is cold):
    GNNSYS_COMPILE_LOG=/tmp/compiles.jsonl PYTHONPATH=benchmarks \\
        python -m pytest -p suite_compiles -n 2 --dist loadfile -m "not slow" tests
    python benchmarks/suite_compiles.py /tmp/compiles.jsonl --top 20
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Dict, Iterable, List, Optional

LOG_ENV = "GNNSYS_COMPILE_LOG"
_local = threading.local()


def install(log_path: str) -> Callable[[], None]:
    """Wrap numba's compile and cache save so that real compiles are logged to ``log_path``;
    returns the function that puts numba's own back."""
    import numba.core.caching as caching
    import numba.core.dispatcher as dispatcher

    if getattr(dispatcher.Dispatcher.compile, "_suite_compiles", False):
        raise RuntimeError("suite_compiles is already installed in this process")
    compile_ = dispatcher.Dispatcher.compile
    save = caching.Cache.save_overload

    def logged_compile(self: Any, sig: Any) -> Any:
        depth = getattr(_local, "depth", 0)
        saves = getattr(_local, "saves", 0)
        _local.depth = depth + 1
        t0 = time.perf_counter()
        try:
            return compile_(self, sig)
        finally:
            _local.depth = depth
            if depth == 0 and getattr(_local, "saves", 0) > saves:
                row = {
                    "pid": os.getpid(),
                    "module": self.py_func.__module__,
                    "function": self.py_func.__qualname__,
                    "seconds": round(time.perf_counter() - t0, 3),
                    "test": os.environ.get("PYTEST_CURRENT_TEST", ""),
                }
                with open(log_path, "a") as f:
                    f.write(json.dumps(row) + "\n")

    def counted_save(self: Any, sig: Any, data: Any) -> Any:
        _local.saves = getattr(_local, "saves", 0) + 1
        return save(self, sig, data)

    def uninstall() -> None:
        dispatcher.Dispatcher.compile = compile_
        caching.Cache.save_overload = save

    logged_compile._suite_compiles = True  # type: ignore[attr-defined]
    dispatcher.Dispatcher.compile = logged_compile
    caching.Cache.save_overload = counted_save
    return uninstall


def pytest_configure(config: Any) -> None:  # pragma: no cover - exercised through pytest
    path = os.environ.get(LOG_ENV)
    if path:
        install(path)


def summarize(rows: Iterable[Dict[str, Any]], top: int = 20) -> Dict[str, Any]:
    """Totals of a compile log: seconds overall, per module and per function (top ``top``),
    and the functions that more than one process compiled."""
    rows = list(rows)
    per_module: Dict[str, float] = defaultdict(float)
    per_function: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for r in rows:
        per_module[r["module"]] += r["seconds"]
        per_function[f"{r['module']}.{r['function']}"].append(r)

    def total(rs: List[Dict[str, Any]]) -> float:
        return round(sum(r["seconds"] for r in rs), 2)

    functions = sorted(per_function.items(), key=lambda kv: -total(kv[1]))
    return {
        "compiles": len(rows),
        "compile_seconds": round(sum(r["seconds"] for r in rows), 2),
        "processes": len({r["pid"] for r in rows}),
        "per_module": {
            k: round(v, 2) for k, v in sorted(per_module.items(), key=lambda kv: -kv[1])
        },
        "top_functions": [
            {
                "function": k,
                "seconds": total(v),
                "compiles": len(v),
                "processes": len({r["pid"] for r in v}),
            }
            for k, v in functions[:top]
        ],  # fmt: skip
        "in_several_processes": [
            {"function": k, "seconds": total(v), "processes": len({r["pid"] for r in v})}
            for k, v in functions
            if len({r["pid"] for r in v}) > 1
        ],
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("log", help=f"a log the plugin wrote (the file {LOG_ENV} named)")
    p.add_argument("--top", type=int, default=20, help="functions listed (default: 20)")
    args = p.parse_args(argv)
    with open(args.log) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    print(json.dumps({"log": args.log, **summarize(rows, args.top)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

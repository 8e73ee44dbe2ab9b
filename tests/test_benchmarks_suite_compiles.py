"""benchmarks/suite_compiles.py: real compiles are logged once, cache hits are not."""

import importlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import suite_compiles  # noqa: E402


def test_a_compile_is_logged_once_and_a_cache_hit_not(tmp_path, monkeypatch):
    (tmp_path / "nbmod_suite.py").write_text(
        "from numba import njit\n\n\n@njit(cache=True)\ndef add_one(x):\n    return x + 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    log = tmp_path / "log.jsonl"
    restore = suite_compiles.install(str(log))
    try:
        with pytest.raises(RuntimeError, match="already installed"):
            suite_compiles.install(str(log))
        mod = importlib.import_module("nbmod_suite")
        assert mod.add_one(1) == 2 and mod.add_one(5) == 6  # one signature: one compile
        assert mod.add_one(1.5) == 2.5  # a second signature
        rows = [json.loads(x) for x in log.read_text().splitlines()]
        assert [(r["module"], r["function"]) for r in rows] == [("nbmod_suite", "add_one")] * 2
        assert all(r["seconds"] > 0 for r in rows)
        # the same source in a new dispatcher reads the cache: nothing to log
        sys.modules.pop("nbmod_suite")
        again = importlib.import_module("nbmod_suite")
        assert again.add_one(2) == 3 and len(log.read_text().splitlines()) == 2
    finally:
        restore()
        sys.modules.pop("nbmod_suite", None)
    import numba.core.dispatcher as dispatcher

    assert not getattr(dispatcher.Dispatcher.compile, "_suite_compiles", False)


def test_summary_totals_and_processes(tmp_path, capsys):
    rows = [
        {"pid": 1, "module": "m", "function": "f", "seconds": 2.0, "test": "a"},
        {"pid": 2, "module": "m", "function": "f", "seconds": 3.0, "test": "b"},
        {"pid": 1, "module": "n", "function": "g", "seconds": 1.0, "test": "a"},
    ]
    s = suite_compiles.summarize(rows, top=1)
    assert (s["compiles"], s["compile_seconds"], s["processes"]) == (3, 6.0, 2)
    assert s["per_module"] == {"m": 5.0, "n": 1.0}
    assert s["top_functions"] == [{"function": "m.f", "seconds": 5.0, "compiles": 2,
                                   "processes": 2}]  # fmt: skip
    assert s["in_several_processes"] == [{"function": "m.f", "seconds": 5.0, "processes": 2}]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert suite_compiles.main([str(log), "--top", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["compile_seconds"] == 6.0 and len(out["top_functions"]) == 2

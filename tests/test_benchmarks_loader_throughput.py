"""benchmarks/loader_throughput.py's summary: same-round ratios keep 3 decimals, and each
gnnsys system gets its ratio to the fastest peer of every round, naming that peer."""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import loader_throughput as lt  # noqa: E402


def _rows(system, rates):
    return [{"system": system, "round": i, "batches_per_s": r} for i, r in enumerate(rates)]


def test_ratios_to_the_fastest_peer_of_each_round(capsys):
    results = {
        "gnnsys-dgl": _rows("gnnsys-dgl", [269.4, 263.2]),
        "dgl": _rows("dgl", [89.9, 76.2]),
        "graphbolt": _rows("graphbolt", [66.5, 77.1]),
    }
    lt.summarize(results, [("gnnsys-dgl", "dgl")])
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    pair = next(x for x in lines if x.get("ratio") == "gnnsys-dgl / dgl")
    assert pair["per_round"] == [2.997, 3.454]  # (2 decimals printed 3.0 for the first)
    best = next(x for x in lines if x.get("ratio") == "gnnsys-dgl / fastest peer")
    assert best["per_round"] == [2.997, 3.414]
    assert best["peer_per_round"] == ["dgl", "graphbolt"]
    assert best["range"] == [2.997, 3.414] and best["rounds"] == 2


def test_no_fastest_peer_line_without_peers(capsys):
    lt.summarize({"gnnsys-pyg": _rows("gnnsys-pyg", [100.0])}, [("gnnsys-pyg", "pyg")])
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x.get("system") for x in lines] == ["gnnsys-pyg"]

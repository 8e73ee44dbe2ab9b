"""benchmarks/interleaved.py: rounds run every system in turn, a peer that cannot run is
reported skipped, and the summary gives ranges and the gnnsys / peer ratio per round."""

import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_a_peer_that_cannot_run_is_summarised_as_skipped(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    from interleaved import print_summary, run_rounds

    ok = {"batches_per_s": 2.0, "nodes_per_batch": 3.0, "edges_per_batch": 4.0}
    runs = {"gnnsys": lambda r: dict(ok), "peer": lambda r: {"skipped": True, "reason": "no X"}}
    result = run_rounds(runs, 2, {"graph": "g"})
    print_summary("s", result, {"graph": "g"}, 2, "benchmarks/x.py", ["--a"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["peer_skipped"] == "no X" and "gnnsys_over_peer_batches_per_s" not in summary
    assert summary["gnnsys_batches_per_s"] == [2.0, 2.0]
    assert summary["command"] == "python benchmarks/x.py --a"


def test_rate_restarts_a_short_epoch_and_averages_per_batch(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    from interleaved import WARMUP, rate

    class Epochs:  # 2 batches an epoch, each (nodes, edges) = (epoch start index, 1)
        starts = 0

        def __iter__(self):
            Epochs.starts += 1
            return iter([(10, 1), (20, 1)])

    out = rate(Epochs(), 4, lambda b: b)
    assert Epochs.starts == 1 + (WARMUP + 4 - 1) // 2  # iter() again at each epoch's end
    assert out["edges_per_batch"] == 1.0 and out["batches_per_s"] > 0
    assert out["nodes_per_batch"] == 15.0  # two of each batch kind among the 4 timed


def test_ratio_per_round(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    from interleaved import print_summary, run_rounds

    speed = {"gnnsys": [4.0, 6.0], "peer": [2.0, 2.0]}

    def system(name):
        return lambda r: {"batches_per_s": speed[name][r], "nodes_per_batch": 1.0,
                          "edges_per_batch": 1.0}  # fmt: skip

    result = run_rounds({"gnnsys": system("gnnsys"), "peer": system("peer")}, 2, {})
    print_summary("s", result, {}, 2, "benchmarks/x.py", [])
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [(r["round"], r["system"]) for r in lines[:-1]] == [
        (0, "gnnsys"), (0, "peer"), (1, "gnnsys"), (1, "peer")
    ]  # fmt: skip
    assert lines[-1]["gnnsys_over_peer_batches_per_s"] == [2.0, 3.0]

"""gnnsys.pipeline_parallel.cost_model: the replay against closed forms, and against runs on a
modeled network (the model's validation: compute made negligible, network dominant)."""

import pytest

from gnnsys.pipeline_parallel.cost_model import (
    StageCosts,
    choose_chunks,
    fit_chunk_overhead,
    gpipe_bubble,
    predict,
    scale_chunks,
    simulate,
)
from gnnsys.pipeline_parallel.netmodel import NetModel

NET = NetModel(gbps=0.00005, latency_us=20_000.0)


def _stage(m, f=1.0, b=2.0, nbytes=0, **kw):
    return StageCosts([f] * m, [b] * m, [nbytes] * m, [nbytes] * m, **kw)


@pytest.mark.parametrize("stages, chunks", [(2, 4), (4, 8), (3, 1), (1, 5)])
def test_gpipe_free_network_is_the_textbook_bubble(stages, chunks):
    out = simulate([_stage(chunks) for _ in range(stages)])
    # (M + S - 1) slots per direction, forward 1 s and backward 2 s each.
    assert out["steps_seconds"] == pytest.approx((chunks + stages - 1) * 3.0)
    assert out["bubble"] == pytest.approx(gpipe_bubble(stages, chunks))


def test_1f1b_has_the_same_bubble_with_equal_stages():
    s = [_stage(8) for _ in range(4)]
    assert simulate(s, schedule="1f1b")["steps_seconds"] == pytest.approx(
        simulate(s)["steps_seconds"]
    )


def test_network_only_pipeline():
    # S=2, M=4, no compute: stage 0's link sends 4 activations back to back (w each), stage 1's
    # link 4 gradients: 8 w + 2 latencies under GPipe.
    net = NetModel(gbps=1.0, latency_us=1000.0)
    w = 125_000 * net.seconds_per_byte
    out = simulate([_stage(4, 0.0, 0.0, 125_000) for _ in range(2)], net)
    assert out["steps_seconds"] == pytest.approx(8 * w + 2 * net.latency)


def test_halo_rounds_and_allreduce_tail():
    net = NetModel(gbps=8.0, latency_us=10.0)  # 1 ns per byte
    st = StageCosts(
        [0.5],
        [0.5],
        [0],
        [0],
        halo_rounds=3,
        halo_bytes=[1_000_000],
        allreduce_bytes=4_000_000,
        allreduce_group=4,
        tail=0.1,
    )
    out = simulate([st], net)
    halo = 3 * (10e-6 + 1e-3)
    assert out["steps_seconds"] == pytest.approx(1.0 + 2 * halo)
    assert out["epoch_seconds"] == pytest.approx(
        1.0 + 2 * halo + 0.1 + net.allreduce_seconds(4e6, 4)
    )


def test_core_bound():
    s = [_stage(4) for _ in range(2)]
    out = simulate(s, cores=1, ranks_per_stage=1)
    assert out["core_bound"] == pytest.approx(24.0)  # both ranks' 12 s on one core
    assert out["epoch_seconds"] == pytest.approx(24.0)
    assert simulate(s, cores=1, process_cpu=30.0)["core_bound"] == pytest.approx(30.0)


def test_chunk_fit_and_choice():
    # A stage with 8 s of work and 0.05 s per step: measured at M=4 and M=16.
    def costs(m):
        return [_stage(m, 4.0 / m + 0.05, 4.0 / m + 0.05, 1000) for _ in range(4)]

    fit = fit_chunk_overhead(costs(4), 4, costs(16), 16)
    assert fit[0] == pytest.approx((8.0, 0.05))
    scaled = scale_chunks(costs(4), 4, fit, 8)
    assert scaled[0].fwd[0] == pytest.approx(0.5 + 0.05) and len(scaled[0].fwd) == 8
    with pytest.raises(ValueError, match="two different chunk counts"):
        fit_chunk_overhead(costs(4), 4, costs(4), 4)


def test_choose_chunks_prefers_fewer_chunks_when_steps_cost():
    def result(m, over):
        steps = [
            [("F", c, 0.0, 1.0 / m + over) for c in range(m)]
            + [("B", c, 0.0, 1.0 / m + over) for c in range(m)]
            for _ in range(4)
        ]
        return {
            "mode": "pipe",
            "stages": 4,
            "groups": 1,
            "chunks": m,
            "train": {},
            "model": {"num_layers": 8},
            "layer_ranges": [[0, 2], [2, 4], [4, 6], [6, 8]],
            "ranks": [{"bytes": {1: {}}, "messages": {1: {}}} for _ in range(4)],
            "epochs": [{"epoch": 1, "steps": steps, "breakdown": [{}] * 4}],
        }

    free = choose_chunks(result(4, 0.0), result(16, 0.0), None)
    assert free["chunks"] == 32  # no per-step cost: the bubble shrinks until 64 (within 5%)
    costly = choose_chunks(result(4, 0.05), result(16, 0.05), None)
    assert costly["chunks"] < free["chunks"]
    assert costly["predicted"][costly["chunks"]] <= min(costly["predicted"].values()) * 1.05


@pytest.fixture(scope="module")
def modeled_runs():
    from gnnsys.datasets import synthetic
    from gnnsys.pipeline_parallel import run_many

    # Negligible compute (hidden 1, 4 layers, the tiny graph, ~0.05 s an epoch on a busy
    # 2-core box), a slow modeled link (~2 s an epoch): the network is nearly all of it.
    train = {
        "epochs": 2,
        "eval_every": 0,
        "profile": True,
        "net_gbps": NET.gbps,
        "net_latency_us": NET.latency_us,
    }
    model = {"kind": "gcn", "hidden": 1, "num_layers": 4}
    specs = [
        {"mode": "graph", "model": model, "train": train},
        {"mode": "pipe", "chunks": 4, "model": model, "train": train},
    ]
    return run_many(synthetic("tiny"), specs, 2)


def test_modeled_network_matches_bytes_over_bandwidth_plus_latencies(modeled_runs):
    graph, pipe = modeled_runs
    net = NET
    row = graph["epochs"][-1]
    # Graph parallelism with 2 ranks: exchanges are sequential, each rank sends one message per
    # exchange: an epoch is a rank's bytes / bandwidth + its messages x latency (+ all-reduces).
    sent = [r["bytes"][row["epoch"]] for r in graph["ranks"]]
    msgs = graph["ranks"][0]["messages"][row["epoch"]]
    # Both ranks send at once; an exchange lasts as long as the larger of the two messages.
    halo = max(b["halo"] for b in sent) + max(b["halo_grad"] for b in sent)
    expected = halo * net.seconds_per_byte + (msgs["halo"] + msgs["halo_grad"]) * net.latency
    expected += net.allreduce_seconds(sent[0]["allreduce"], 2) + net.allreduce_seconds(8, 2)
    assert row["seconds"] == pytest.approx(expected, rel=0.10)
    # The replay of the run's own profile predicts both modes within 10%.
    for out in (graph, pipe):
        assert predict(out, net)["epoch_seconds"] == pytest.approx(
            out["epochs"][-1]["seconds"], rel=0.10
        )


def test_profiled_rows_carry_breakdown_and_steps(modeled_runs):
    graph, pipe = modeled_runs
    row = pipe["epochs"][-1]
    assert len(row["breakdown"]) == 2 and len(row["steps"]) == 2
    kinds = sorted((k, p) for k, p, *_ in row["steps"][0])
    assert kinds == sorted([("F", c) for c in range(4)] + [("B", c) for c in range(4)])
    assert row["breakdown"][1]["wait:activation"] > 0  # stage 1 waits for stage 0
    assert row["messages"]["activation"] == 4 and row["messages"]["gradient"] == 4
    assert graph["epochs"][-1]["breakdown"][0]["wait:halo"] > 0
    # CPU seconds per section beside the wall ones: a wait on the modeled link sleeps (wall
    # seconds, next to no CPU); the gloo thread's CPU is in other_threads.
    cpu = graph["epochs"][-1]["breakdown_cpu"]
    assert len(cpu) == 2 and "other_threads" in cpu[0]
    wall = graph["epochs"][-1]["breakdown"][0]
    assert cpu[0]["wait:halo"] < 0.5 * wall["wait:halo"]
    # (each entry is rounded to 1e-6, so the sum may exceed by half of that per entry)
    assert sum(cpu[0].values()) <= wall["process_cpu"] + len(cpu[0]) * 1e-6
    with pytest.raises(ValueError, match="was not profiled"):
        predict({**graph, "epochs": [{"epoch": 1}]}, None)

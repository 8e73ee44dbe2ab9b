"""gnnsys.pipeline_parallel.stages: cost-balanced layer ranges and pipeline schedules."""

import itertools

import pytest

from gnnsys.pipeline_parallel.config import ModelConfig
from gnnsys.pipeline_parallel.stages import balance, layer_costs, schedule


def _best_max(costs, s):
    # Brute force over all cut positions.
    n = len(costs)
    best = float("inf")
    for cuts in itertools.combinations(range(1, n), s - 1):
        bounds = (0,) + cuts + (n,)
        best = min(best, max(sum(costs[a:b]) for a, b in zip(bounds, bounds[1:])))
    return best


@pytest.mark.parametrize(
    "costs", [[1, 1, 1, 1], [5, 1, 1, 1, 1, 5], [1, 2, 3, 4, 5, 6, 7], [3.5, 0.5, 2, 2, 9]]
)
@pytest.mark.parametrize("stages", [1, 2, 3, 4])
def test_balance_is_contiguous_and_optimal(costs, stages):
    if stages > len(costs):
        return
    ranges = balance(costs, stages)
    assert len(ranges) == stages
    assert ranges[0].start == 0 and ranges[-1].stop == len(costs)
    assert all(len(r) >= 1 for r in ranges)
    assert all(a.stop == b.start for a, b in zip(ranges, ranges[1:]))
    worst = max(sum(costs[r.start : r.stop]) for r in ranges)
    assert worst == pytest.approx(_best_max(costs, stages))


def test_layer_costs_charge_projection_and_head():
    costs = layer_costs(ModelConfig(num_layers=4, hidden=8), 100, 1000, 50, 5)
    assert costs[1] == costs[2] == 1000 * 8 + 100 * 64
    assert costs[0] == costs[1] + 100 * 50 * 8
    assert costs[3] == costs[1] + 100 * 8 * 5


@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
@pytest.mark.parametrize("chunks, stages", [(1, 1), (3, 2), (5, 3), (2, 4)])
def test_schedules_run_every_step_once_in_dependency_order(kind, chunks, stages):
    for s in range(stages):
        steps = schedule(kind, chunks, s, stages)
        assert sorted(steps) == sorted(
            [("F", c) for c in range(chunks)] + [("B", c) for c in range(chunks)]
        )
        for c in range(chunks):
            assert steps.index(("F", c)) < steps.index(("B", c))
        fwd = [c for k, c in steps if k == "F"]
        assert fwd == sorted(fwd)


def test_gpipe_and_1f1b_orders():
    assert schedule("gpipe", 3, 0, 2) == [
        ("F", 0),
        ("F", 1),
        ("F", 2),
        ("B", 2),
        ("B", 1),
        ("B", 0),
    ]
    assert schedule("1f1b", 3, 0, 2) == [("F", 0), ("F", 1), ("B", 0), ("F", 2), ("B", 1), ("B", 2)]
    assert schedule("1f1b", 3, 1, 2) == [("F", 0), ("B", 0), ("F", 1), ("B", 1), ("F", 2), ("B", 2)]


def test_errors():
    with pytest.raises(ValueError, match="num_stages must be in 1..3"):
        balance([1, 1, 1], 4)
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedule("pipedream", 2, 0, 2)
    with pytest.raises(ValueError, match="stage must be in 0..1, got 2"):
        schedule("gpipe", 2, 2, 2)

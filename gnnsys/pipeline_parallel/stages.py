"""Stages: which rank runs which layers, and the pipeline schedules.

Ranks own contiguous layer ranges balanced by estimated cost (the first stage also runs the
input projection, the last one the head), so every stage boundary sits between two graph
layers and carries ``boundary_dim`` floats per node. A schedule is the list of forward and
backward steps one stage runs in an epoch: GPipe (all chunks forward, then backward in reverse)
or 1F1B (after a warm-up, one forward then one backward). Both apply one optimizer step per
epoch, so they compute the same gradients.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

from gnnsys._checks import check_choice
from gnnsys.pipeline_parallel.config import SCHEDULES, ModelConfig

Step = Tuple[str, int]  # ("F" | "B", chunk position)


def layer_costs(
    model: ModelConfig, num_nodes: int, num_edges: int, in_dim: int, num_classes: int
) -> List[float]:
    """Estimated multiply-adds of each graph layer; the input projection is charged to the first
    layer and the head to the last (they run on the first and last stage).

    Example:
        >>> layer_costs(ModelConfig(num_layers=4, hidden=64), 1000, 10000, 100, 10)
    """
    d = model.hidden
    per_layer = float(num_edges) * d + float(num_nodes) * d * d
    if model.kind == "sage":
        per_layer += float(num_nodes) * d * d
    if model.kind == "gat":
        per_layer += float(num_edges) * (2 * model.heads)
    costs = [per_layer] * model.num_layers
    costs[0] += float(num_nodes) * in_dim * d
    costs[-1] += float(num_nodes) * d * num_classes
    return costs


def balance(costs: Sequence[float], num_stages: int) -> List[range]:
    """Split layers into ``num_stages`` contiguous non-empty ranges minimising the largest cost.

    Exact dynamic programme over split points (L and S are small). Ties favour earlier stages
    being no larger than later ones.

    Example:
        >>> balance([1, 1, 1, 1, 4], 2)
        [range(0, 4), range(4, 5)]
    """
    n = len(costs)
    if isinstance(num_stages, bool) or not isinstance(num_stages, int):
        raise TypeError(f"num_stages must be an int, got {num_stages!r}")
    if not 1 <= num_stages <= n:
        raise ValueError(
            f"num_stages must be in 1..{n} (one layer per stage at least), got {num_stages}"
        )
    prefix = [0.0]
    for c in costs:
        prefix.append(prefix[-1] + float(c))
    inf = float("inf")
    # best[s][i]: the smallest max-cost of splitting layers [0, i) into s stages.
    best = [[inf] * (n + 1) for _ in range(num_stages + 1)]
    cut = [[0] * (n + 1) for _ in range(num_stages + 1)]
    best[0][0] = 0.0
    for s in range(1, num_stages + 1):
        for i in range(s, n + 1):
            for j in range(s - 1, i):
                cost = max(best[s - 1][j], prefix[i] - prefix[j])
                if cost < best[s][i] - 1e-12 * max(1.0, cost):
                    best[s][i], cut[s][i] = cost, j
    ranges: List[range] = []
    i = n
    for s in range(num_stages, 0, -1):
        j = cut[s][i]
        ranges.append(range(j, i))
        i = j
    return ranges[::-1]


def schedule(kind: str, num_chunks: int, stage: int, num_stages: int) -> List[Step]:
    """The ordered steps of ``stage`` for one epoch over ``num_chunks`` chunk positions.

    "gpipe": F0..F(M-1), then B(M-1)..B0. "1f1b": ``num_stages - 1 - stage`` warm-up forwards,
    then alternate one forward and one backward (oldest chunk first), then the remaining
    backwards. Sends never block, so both orders are deadlock-free.

    Example:
        >>> schedule("1f1b", 3, 0, 2)
        [('F', 0), ('F', 1), ('B', 0), ('F', 2), ('B', 1), ('B', 2)]
    """
    check_choice("schedule", kind, SCHEDULES)
    if not 0 <= stage < num_stages:
        raise ValueError(f"stage must be in 0..{num_stages - 1}, got {stage}")
    if kind == "gpipe":
        return [("F", c) for c in range(num_chunks)] + [
            ("B", c) for c in reversed(range(num_chunks))
        ]
    warm = min(num_stages - 1 - stage, num_chunks)
    steps: List[Step] = [("F", c) for c in range(warm)]
    next_f, next_b = warm, 0
    while next_f < num_chunks:
        steps.append(("F", next_f))
        next_f += 1
        steps.append(("B", next_b))
        next_b += 1
    steps += [("B", c) for c in range(next_b, num_chunks)]
    return steps

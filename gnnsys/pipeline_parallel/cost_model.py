"""An analytic model of epoch time: measured per-step compute + counted bytes + a network.

A profiled run (``TrainConfig(profile=True)``) records, per rank, each pipeline step's busy
seconds (``timing.StageTimer.step``) and the bytes and messages of every kind it sent. This
module replays those steps on a model of the machine: each rank runs its steps in schedule
order, a step starts when the rank is free and its input message has arrived, each rank's
link sends its messages one after another at the modeled bandwidth and adds the latency
(``netmodel.NetModel``; the same link model the modeled Transport uses), and halo exchanges
inside a step (graph parallelism, hybrid) cost one round per layer. The epoch ends with the
all-reduces and the optimizer step. What the replay leaves out is what the model cannot know:
contention for cores (``cores`` gives a lower bound: the ranks' total busy time over the
cores), caches, and the real transport's own overhead beyond the modeled link.

Uses: predict a measured run's epoch on another network (``predict``), and choose the chunk
count (``choose_chunks``) and hybrid grid (``choose_grid``) from one or two profiled runs.

For GPipe with S equal stages of per-chunk time t, M chunks and a free network the replay gives
the textbook ``(M + S - 1) t`` per direction: a bubble of ``(S-1)/(M+S-1)`` (``gpipe_bubble``).

Example:
    >>> out = run("pipe", ds, model, nproc=4, chunks=8, train={"profile": True, "epochs": 2})
    >>> predict(out, NetModel(gbps=10, latency_us=5))["epoch_seconds"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from gnnsys.pipeline_parallel.netmodel import Link, NetModel
from gnnsys.pipeline_parallel.stages import schedule as make_schedule

Steps = List[Tuple[str, int, float]]  # (kind, chunk position, busy seconds)


@dataclass
class StageCosts:
    """What one pipeline stage does in an epoch (the slowest group's numbers in hybrid runs).

    Attributes:
        fwd, bwd: busy seconds of each chunk position's forward and backward step.
        send_fwd, send_bwd: bytes sent per position to the next / previous stage.
        halo_rounds: halo exchanges per step (the stage's layers; 0 without groups).
        halo_bytes: bytes this stage's busiest rank sends per exchange round, per position.
        allreduce_bytes: weight-gradient bytes all-reduced at the end of the epoch.
        allreduce_group: ranks in that all-reduce.
        tail: busy seconds after the last step (optimizer, loss sums), not overlapped.
    """

    fwd: List[float]
    bwd: List[float]
    send_fwd: List[int]
    send_bwd: List[int]
    halo_rounds: int = 0
    halo_bytes: List[int] = field(default_factory=list)
    allreduce_bytes: int = 0
    allreduce_group: int = 1
    tail: float = 0.0


def gpipe_bubble(num_stages: int, num_chunks: int) -> float:
    """The idle fraction of a GPipe epoch with equal stages and a free network.

    Example:
        >>> round(gpipe_bubble(4, 8), 4)
        0.2727
    """
    return (num_stages - 1) / (num_chunks + num_stages - 1)


def simulate(
    stages: Sequence[StageCosts],
    net: Optional[NetModel] = None,
    schedule: str = "gpipe",
    cores: Optional[int] = None,
    ranks_per_stage: int = 1,
    process_cpu: float = 0.0,
) -> Dict[str, Any]:
    """Replay one epoch of ``stages`` under ``schedule`` on ``net`` (None: a free network).

    Each stage runs its steps in schedule order; a step starts once the stage is free and its
    input message arrived, computes, then spends its halo rounds on the network (no CPU), then
    sends its output on the stage's link. With ``cores`` the ranks share that many cores
    (processor sharing: when more ranks compute than there are cores, each runs at
    cores / computing ranks of full speed; a stage stands for ``ranks_per_stage`` ranks), and
    ``process_cpu``, the processes' measured CPU seconds when larger than the steps' (gloo's
    own threads), scales every step's work up in proportion. Without ``cores`` every rank has
    a core of its own.

    Returns ``epoch_seconds``, ``steps_seconds`` (until the last step ends), ``busy`` per
    stage, ``bubble`` (the fraction of the steps' span the average stage is not computing)
    and, with ``cores``, ``core_bound`` (all ranks' CPU seconds over the cores).

    Example:
        >>> s = StageCosts([1.0] * 4, [1.0] * 4, [0] * 4, [0] * 4)
        >>> simulate([s, s])["steps_seconds"]     # (M + S - 1) per direction
        10.0
    """
    num_stages = len(stages)
    num_chunks = len(stages[0].fwd)
    plans = [make_schedule(schedule, num_chunks, s, num_stages) for s in range(num_stages)]
    busy = [sum(st.fwd) + sum(st.bwd) for st in stages]
    tails = [st.tail for st in stages]
    cpu_total = (sum(busy) + sum(tails)) * ranks_per_stage
    inflate = max(1.0, process_cpu / cpu_total) if cores and process_cpu and cpu_total else 1.0
    clock = [0.0]  # the replay's time, read by the stages' links (the Transport's token bucket)
    links = [Link(net, clock=lambda: clock[0]) for _ in range(num_stages)] if net else []
    arrive: Dict[Tuple[str, int, int], float] = {}  # (kind, stage receiving, pos) -> time
    nxt = [0] * num_stages
    phase = ["idle"] * num_stages  # idle (waiting for input), cpu, net (halo rounds)
    rem = [0.0] * num_stages  # CPU seconds left of the running step
    until = [0.0] * num_stages  # end of the running step's network phase
    now = 0.0
    while any(n < len(p) for n, p in zip(nxt, plans)):
        events = []
        for s in range(num_stages):  # start every step whose input is here
            if phase[s] != "idle" or nxt[s] >= len(plans[s]):
                continue
            kind, pos = plans[s][nxt[s]]
            needs = (kind == "F" and s > 0) or (kind == "B" and s < num_stages - 1)
            ready = arrive.get((kind, s, pos), None if needs else 0.0)
            if ready is None:
                continue
            if ready > now:
                events.append(ready)
                continue
            st = stages[s]
            phase[s] = "cpu"
            rem[s] = (st.fwd[pos] if kind == "F" else st.bwd[pos]) * inflate
        computing = [s for s in range(num_stages) if phase[s] == "cpu"]
        load = len(computing) * ranks_per_stage
        rate = min(1.0, cores / load) if cores and load else 1.0
        events += [now + rem[s] / rate for s in computing]
        events += [until[s] for s in range(num_stages) if phase[s] == "net"]
        if not events:
            raise RuntimeError("schedule deadlocks: a step waits for a message never sent")
        step = max(min(events), now)
        for s in computing:
            rem[s] -= rate * (step - now)
        now = step
        for s in range(num_stages):
            if phase[s] == "cpu" and rem[s] <= 1e-12:
                st = stages[s]
                kind, pos = plans[s][nxt[s]]
                halo = st.halo_bytes[pos] if st.halo_bytes else 0
                wire = st.halo_rounds * net.transfer_seconds(halo) if net else 0.0
                phase[s], until[s] = "net", now + wire
            if phase[s] == "net" and until[s] <= now:
                kind, pos = plans[s][nxt[s]]
                out = _send_target(kind, s, num_stages)
                if out is not None:
                    st = stages[s]
                    nbytes = (st.send_fwd if kind == "F" else st.send_bwd)[pos]
                    clock[0] = now
                    arrive[(kind, out, pos)] = links[s].book(nbytes) if net else now
                phase[s] = "idle"
                nxt[s] += 1
    steps_end = now
    tail = max(
        st.tail * inflate
        + (net.allreduce_seconds(st.allreduce_bytes, st.allreduce_group) if net else 0.0)
        for st in stages
    )
    out: Dict[str, Any] = {
        "epoch_seconds": steps_end + tail,
        "steps_seconds": steps_end,
        "busy": busy,
        "bubble": 1.0 - (sum(busy) / num_stages) / steps_end if steps_end > 0 else 0.0,
    }
    if cores:
        out["core_bound"] = max(cpu_total, process_cpu) / cores
    return out


def _send_target(kind: str, stage: int, num_stages: int) -> Optional[int]:
    if kind == "F":
        return stage + 1 if stage + 1 < num_stages else None
    return stage - 1 if stage > 0 else None


# ---------------------------------------------------------------------- from a profiled run
def stage_costs(
    result: Dict[str, Any], epoch_index: int = -1, use: str = "cpu"
) -> List[StageCosts]:
    """Per-stage costs of one profiled epoch of a ``launch.run`` result.

    ``use`` picks the busy measure: "cpu" (this thread's CPU seconds: what a rank costs on
    its own core, the right input when ranks outnumbered the cores) or "wall".

    Example:
        >>> costs = stage_costs(run("pipe", ds, m, nproc=4, train={"profile": True}))
    """
    if use not in ("cpu", "wall"):
        raise ValueError(f"use must be 'cpu' or 'wall', got {use!r}")
    ranks = result["ranks"]
    row = result["epochs"][epoch_index]
    if "steps" not in row:
        raise ValueError("the run was not profiled: pass train={'profile': True, ...}")
    stages_n = int(result.get("stages", 1))
    groups = int(result.get("groups", len(ranks)))
    mode = result.get("mode", "pipe")
    if mode == "graph":
        stages_n, groups = 1, len(ranks)
    chunks = int(result.get("chunks") or 1)
    layer_ranges = result.get("layer_ranges") or [[0, int(result["model"]["num_layers"])]]
    col = 3 if use == "cpu" else 2
    epoch = row["epoch"]
    out = []
    for s in range(stages_n):
        members = [s * groups + g for g in range(groups)]
        fwd, bwd = [0.0] * chunks, [0.0] * chunks
        tail = 0.0
        for r in members:
            steps = row["steps"][r]
            for step in steps:
                kind, pos, busy = step[0], int(step[1]), float(step[col])
                arr = fwd if kind == "F" else bwd
                arr[pos] = max(arr[pos], busy)
            bd = row["breakdown"][r]
            tail = max(tail, bd.get("optimizer", 0.0))
        sent = [
            ranks[r]["bytes"].get(epoch, ranks[r]["bytes"].get(str(epoch), {})) for r in members
        ]
        msgs = [
            ranks[r]
            .get("messages", {})
            .get(epoch, ranks[r].get("messages", {}).get(str(epoch), {}))
            for r in members
        ]
        act = max(b.get("activation", 0) for b in sent)
        grad = max(b.get("gradient", 0) for b in sent)
        weights = [c + 1e-12 for c in fwd] if chunks > 1 else [1.0]
        share = [w / sum(weights) for w in weights]
        rounds = 0
        halo_per_round: List[int] = []
        if groups > 1:
            lo, hi = layer_ranges[s]
            rounds = hi - lo  # one exchange per layer and step (forward; backward alike)
            # bytes per exchange round of the busiest sender: halo (forward) and halo_grad
            # (backward), each over chunks x layers rounds.
            per_rank = max(b.get("halo", 0) for b in sent) + max(
                b.get("halo_grad", 0) for b in sent
            )
            per_round = per_rank / max(2 * rounds * chunks, 1)
            halo_per_round = [int(per_round * w * chunks) for w in share]
        ar = max(b.get("allreduce", 0) for b in sent)
        ar_msgs = max(m.get("allreduce", 0) for m in msgs) or 1
        out.append(
            StageCosts(
                fwd=fwd,
                bwd=bwd,
                send_fwd=[int(act * w) for w in share],
                send_bwd=[int(grad * w) for w in share],
                halo_rounds=rounds,
                halo_bytes=halo_per_round,
                allreduce_bytes=ar // ar_msgs,
                allreduce_group=groups if groups > 1 else len(ranks),
                tail=tail,
            )
        )
    return out


def predict(
    result: Dict[str, Any],
    net: Optional[NetModel],
    *,
    epoch_index: int = -1,
    use: str = "cpu",
    cores: Optional[int] = None,
) -> Dict[str, Any]:
    """The modeled epoch of a profiled run on ``net`` (its own schedule and grid).

    Example:
        >>> predict(out, NetModel(10, 5), cores=2)["epoch_seconds"]
    """
    costs = stage_costs(result, epoch_index, use)
    per_stage = len(result["ranks"]) // len(costs)
    sched = (result.get("train") or {}).get("schedule", "gpipe")
    breakdowns = result["epochs"][epoch_index].get("breakdown") or []
    cpu = sum(b.get("process_cpu", 0.0) for b in breakdowns)
    return simulate(costs, net, sched, cores, per_stage, cpu)


def fit_chunk_overhead(
    a: List[StageCosts], m_a: int, b: List[StageCosts], m_b: int
) -> List[Tuple[float, float]]:
    """Per stage (work, per-step overhead) from two profiled chunk counts ``m_a != m_b``:
    a stage's total busy time is ``work + 2 M overhead`` (a forward and a backward per chunk).

    Example:
        >>> fit_chunk_overhead(costs4, 4, costs16, 16)[0]     # (seconds, seconds)
    """
    if m_a == m_b:
        raise ValueError("two different chunk counts are needed to separate work from overhead")
    out = []
    for sa, sb in zip(a, b):
        ta, tb = sum(sa.fwd) + sum(sa.bwd), sum(sb.fwd) + sum(sb.bwd)
        over = max((tb - ta) / (2 * (m_b - m_a)), 0.0)
        out.append((max(ta - 2 * m_a * over, 0.0), over))
    return out


def scale_chunks(
    base: List[StageCosts], m_base: int, fit: List[Tuple[float, float]], m: int
) -> List[StageCosts]:
    """``base`` re-cut into ``m`` equal chunks: per step work / M + overhead, bytes / M.

    Example:
        >>> scale_chunks(costs4, 4, fit, 32)[0].fwd[:2]
    """
    out = []
    for st, (work, over) in zip(base, fit):
        total_f, total_b = sum(st.fwd), sum(st.bwd)
        share_f = total_f / (total_f + total_b) if total_f + total_b > 0 else 0.5
        out.append(
            StageCosts(
                fwd=[work * share_f / m + over] * m,
                bwd=[work * (1 - share_f) / m + over] * m,
                send_fwd=[sum(st.send_fwd) // m] * m,
                send_bwd=[sum(st.send_bwd) // m] * m,
                halo_rounds=st.halo_rounds,
                halo_bytes=[sum(st.halo_bytes) // m] * m if st.halo_bytes else [],
                allreduce_bytes=st.allreduce_bytes,
                allreduce_group=st.allreduce_group,
                tail=st.tail,
            )
        )
    return out


def choose_chunks(
    a: Dict[str, Any],
    b: Dict[str, Any],
    net: Optional[NetModel],
    candidates: Sequence[int] = (2, 4, 8, 16, 32, 64),
    *,
    tolerance: float = 0.05,
    cores: Optional[int] = None,
    use: str = "cpu",
) -> Dict[str, Any]:
    """Pick M from two profiled runs that differ only in chunk count.

    Every candidate is replayed; the choice is the smallest M whose predicted epoch is within
    ``tolerance`` of the best (fewer chunks: fewer stale history reads, the accuracy side of
    the trade that the time model does not see). Returns ``chunks`` and ``predicted`` {M: s}.

    Example:
        >>> choose_chunks(run4, run16, NetModel(10, 5))["chunks"]
    """
    ca, cb = stage_costs(a, use=use), stage_costs(b, use=use)
    m_a, m_b = int(a["chunks"]), int(b["chunks"])
    fit = fit_chunk_overhead(ca, m_a, cb, m_b)
    groups = int(a.get("groups", 1))
    sched = (a.get("train") or {}).get("schedule", "gpipe")
    predicted = {
        m: simulate(scale_chunks(ca, m_a, fit, m), net, sched, cores, groups)["epoch_seconds"]
        for m in candidates
    }
    best = min(predicted.values())
    chosen = min(m for m, t in predicted.items() if t <= best * (1 + tolerance))
    return {"chunks": chosen, "predicted": predicted, "fit": fit}


def choose_grid(
    results: Sequence[Dict[str, Any]],
    net: Optional[NetModel],
    *,
    cores: Optional[int] = None,
    use: str = "cpu",
) -> Dict[str, Any]:
    """Pick the hybrid grid (stages x groups) from one profiled run per candidate grid: the
    one whose replay on ``net`` is shortest. Returns ``stages``, ``groups``, ``predicted``.

    Example:
        >>> choose_grid([run_4x1, run_2x2, run_1x4], NetModel(10, 5))["stages"]
    """
    if not results:
        raise ValueError("choose_grid needs at least one profiled run")
    predicted = {}
    for out in results:
        grid = (int(out["stages"]), int(out["groups"]))
        predicted[grid] = predict(out, net, cores=cores, use=use)["epoch_seconds"]
    stages, groups = min(predicted, key=lambda g: (predicted[g], g))
    return {
        "stages": stages,
        "groups": groups,
        "predicted": {f"{s}x{g}": t for (s, g), t in predicted.items()},
    }

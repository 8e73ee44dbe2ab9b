"""Where an epoch's time goes: cheap exclusive section timers for the distributed trainers.

A ``StageTimer`` charges every moment of an epoch to exactly one section. Sections nest: while
a transport wait runs inside a layer's forward, the clock of "compute" stops and the wait's
starts, so the sections of an epoch add up to its wall time (what no section claims is
"other"). Each section keeps wall seconds and this thread's CPU seconds: on a machine with
fewer cores than ranks, wall time includes time spent descheduled, CPU time does not.

Sections the trainers and ``Transport`` use:

* ``compute``: layers, input projection, head, loss, their backward;
* ``history``: history reads and writes (GNNPipe, hybrid);
* ``pack``: building messages (halo row gathers, ``.contiguous()`` copies, gradient scatter);
* ``post``: handing messages to the backend (gloo ``isend``/``irecv`` calls);
* ``wait:<kind>``: blocked until a peer's message of that kind arrived (activation,
  gradient, halo, halo_grad, ...): the pipeline bubble and the transfer time together;
* ``flush``: waiting until this rank's own sends completed;
* ``allreduce``, ``metrics``, ``clip``: collectives (weight gradients, loss sums, norms);
* ``optimizer``: zeroing and the optimizer step;
* ``exact``: warm-fill and refresh passes; ``eval``: evaluation passes.

Per step the trainers also record the compute seconds of each forward and backward step
(``steps``), which the cost model (``cost_model.py``) replays under other schedules and
networks. On CUDA each boundary synchronises the device (only while profiling), so a section
holds the kernels it launched.

Example:
    >>> timer = StageTimer(enabled=True)
    >>> with timer.section("compute"):
    ...     with timer.section("wait:activation"):
    ...         pass
    >>> sorted(timer.take())   # {"compute": {...}, "wait:activation": {...}}
    ['compute', 'wait:activation']
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch


class StageTimer:
    """Exclusive per-section wall and CPU timers; a no-op when ``enabled`` is False.

    Args:
        enabled: record (False: every call returns at once; the trainers' default).
        device: a CUDA device is synchronised at every section boundary while recording.
    """

    def __init__(self, enabled: bool = False, device: Optional[torch.device] = None) -> None:
        self.enabled = bool(enabled)
        self._sync = enabled and device is not None and torch.device(device).type == "cuda"
        self._wall: Dict[str, float] = {}
        self._cpu: Dict[str, float] = {}
        self._count: Dict[str, int] = {}
        self._stack: List[str] = []
        self._mark: Tuple[float, float] = (0.0, 0.0)
        self._waited = 0.0  # wall seconds in wait:* sections so far
        self._process_mark = time.process_time()
        self.steps: List[Tuple[str, int, float, float]] = []

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Charge the time inside the block to ``name`` (exclusive of nested sections)."""
        if not self.enabled:
            yield
            return
        self._switch()
        self._stack.append(name)
        self._count[name] = self._count.get(name, 0) + 1
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    @contextlib.contextmanager
    def step(self, kind: str, position: int) -> Iterator[None]:
        """A pipeline step (``"F"``/``"B"`` of a chunk position) in the "compute" section.

        ``steps`` gets ``(kind, position, busy wall, busy cpu)``: the step's seconds minus
        those it spent blocked on peers (``wait:*``), i.e. what the rank itself had to do
        (compute, history, packing, posting)."""
        if not self.enabled:
            yield
            return
        self._switch()
        wall0, cpu0, waited0 = self._mark[0], self._mark[1], self._waited
        with self.section("compute"):
            yield
        waited = self._waited - waited0
        # CPU seconds spent waiting (polling) are small; they are not subtracted.
        self.steps.append((kind, position, self._mark[0] - wall0 - waited, self._mark[1] - cpu0))

    def take(self) -> Dict[str, Dict[str, float]]:
        """{section: {"wall": s, "cpu": s, "count": n}} since the last ``take``; resets."""
        out = {
            k: {"wall": self._wall[k], "cpu": self._cpu.get(k, 0.0), "count": self._count.get(k, 0)}
            for k in sorted(self._wall)
        }
        self._wall, self._cpu, self._count = {}, {}, {}
        return out

    def process_cpu(self) -> float:
        """CPU seconds of the whole process (every thread: gloo's too) since the last call."""
        now = time.process_time()
        last, self._process_mark = self._process_mark, now
        return now - last

    def take_steps(self) -> List[Tuple[str, int, float, float]]:
        """The (kind, position, busy wall, busy cpu) of each step since the last call; resets."""
        out, self.steps = self.steps, []
        return out

    def _switch(self) -> None:
        # Close the running interval: charge it to the innermost open section (if any).
        if self._sync:
            torch.cuda.synchronize()
        now = (time.perf_counter(), time.thread_time())
        if self._stack:
            name = self._stack[-1]
            self._wall[name] = self._wall.get(name, 0.0) + now[0] - self._mark[0]
            if name.startswith("wait:"):
                self._waited += now[0] - self._mark[0]
            self._cpu[name] = self._cpu.get(name, 0.0) + now[1] - self._mark[1]
        self._mark = now


def summarise(sections: Dict[str, Dict[str, float]], epoch_seconds: float) -> Dict[str, float]:
    """Wall seconds per section of one epoch, plus ``other`` (the epoch's unclaimed rest) and
    ``wait`` (all ``wait:*`` sections together).

    Example:
        >>> summarise({"compute": {"wall": 1.0, "cpu": 0.9}}, 1.2)["other"]
        0.2
    """
    out = {k: round(v["wall"], 6) for k, v in sections.items()}
    out["wait"] = round(sum(v for k, v in out.items() if k.startswith("wait:")), 6)
    claimed = sum(v["wall"] for v in sections.values())
    out["other"] = round(max(epoch_seconds - claimed, 0.0), 6)
    return out


def summarise_cpu(sections: Dict[str, Dict[str, float]], process_cpu: float) -> Dict[str, float]:
    """CPU seconds per section of one epoch on the rank's own thread, plus ``other_threads``:
    the process's CPU beyond them (the communication library's threads, e.g. gloo's TCP loop,
    and intra-op threads). Beside the wall-clock breakdown it tells time spent working from
    time spent descheduled: on a machine with fewer cores than ranks a ``post`` or ``wait``
    section's wall time is mostly waiting for a core, not work.

    Example:
        >>> summarise_cpu({"compute": {"wall": 1.0, "cpu": 0.9}}, 1.2)["other_threads"]
        0.3
    """
    out = {k: round(v["cpu"], 6) for k, v in sections.items()}
    own = sum(v["cpu"] for v in sections.values())
    out["other_threads"] = round(max(process_cpu - own, 0.0), 6)
    return out


def profile_row(row: Dict[str, Any], timer: StageTimer, seconds: float) -> None:
    """Add the epoch's breakdowns (wall seconds, ``breakdown``; CPU seconds,
    ``breakdown_cpu``) and per-step compute seconds to ``row`` when profiling."""
    if timer.enabled:
        sections = timer.take()
        process_cpu = timer.process_cpu()
        row["breakdown"] = summarise(sections, seconds)
        row["breakdown"]["process_cpu"] = round(process_cpu, 6)
        row["breakdown_cpu"] = summarise_cpu(sections, process_cpu)
        row["steps"] = timer.take_steps()

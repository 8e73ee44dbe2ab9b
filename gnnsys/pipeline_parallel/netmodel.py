"""A modeled network for the distributed trainers: what an epoch costs on a 10/25/100 Gb/s link.

Loopback is nearly free, so runs on one machine cannot show the cost of a real network. With
a ``NetModel`` the ``Transport`` delays every message as a NIC of that bandwidth and latency
would: each rank owns one link (its NIC) whose egress is a token bucket; a message of ``b``
bytes leaves when the link is free, occupies it ``8 b / bandwidth`` seconds and arrives
``latency`` later. The sender does not wait: a courier thread hands the message to gloo at its
modeled arrival time, while the rank computes on. Collectives are modeled as a ring
all-reduce: ``2 (G-1)`` steps of ``b / G`` bytes, each paying the latency.

What it leaves out: ingress contention (two peers sending to one rank at full rate each),
switch queues, and the real loopback time underneath (tens of microseconds per message; a
run without the model measures it).

Example:
    >>> net = NetModel(gbps=10, latency_us=5)
    >>> round(net.transfer_seconds(1_250_000), 6)      # 1.25 MB at 10 Gb/s + 5 us
    0.001005
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple


@dataclass(frozen=True)
class NetModel:
    """Link bandwidth (Gb/s, 1e9 bits per second) and one-way latency (microseconds).

    Example:
        >>> NetModel(gbps=25, latency_us=2).seconds_per_byte
        3.2e-10
    """

    gbps: float
    latency_us: float = 0.0

    def __post_init__(self) -> None:
        for name, lo_open in (("gbps", True), ("latency_us", False)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
                raise TypeError(f"net {name} must be a number, got {v!r}")
            if v < 0 or (lo_open and v == 0) or v == float("inf"):
                bound = "> 0" if lo_open else ">= 0"
                raise ValueError(f"net {name} must be finite and {bound}, got {v}")

    @property
    def seconds_per_byte(self) -> float:
        return 8.0 / (self.gbps * 1e9)

    @property
    def latency(self) -> float:
        """One-way latency in seconds."""
        return self.latency_us * 1e-6

    def transfer_seconds(self, nbytes: int) -> float:
        """Time on the wire of one message alone on an idle link: latency + bytes / bandwidth."""
        return self.latency + nbytes * self.seconds_per_byte

    def allreduce_seconds(self, nbytes: int, group_size: int) -> float:
        """A ring all-reduce of ``nbytes`` over ``group_size`` ranks (0 for one rank)."""
        if group_size <= 1:
            return 0.0
        steps = 2 * (group_size - 1)
        return steps * (self.latency + nbytes / group_size * self.seconds_per_byte)


def net_model(gbps: Optional[float], latency_us: Optional[float] = None) -> Optional[NetModel]:
    """A ``NetModel`` from optional settings (None/0 bandwidth: no model, the real network).

    Example:
        >>> net_model(None) is None, net_model(10, 5).latency_us
        (True, 5.0)
    """
    if gbps in (None, 0, 0.0):
        if latency_us:
            raise ValueError("a modeled latency needs a modeled bandwidth (net_gbps) too")
        return None
    return NetModel(float(gbps), float(latency_us or 0.0))


class Courier:
    """The sending half of the modeled NIC: delays each message, then posts it.

    ``send(nbytes, post)`` books the message on the link (token bucket) and schedules
    ``post()`` (which calls the real ``isend`` and returns its work) at the modeled arrival
    time; ``drain()`` waits until every booked message was posted and returns their works.
    ``busy`` is the link's total occupied seconds, ``messages`` the count.

    Example:
        >>> c = Courier(NetModel(1.0, 100.0)); c.send(125, lambda: None); c.drain()
        [None]
    """

    def __init__(self, net: NetModel, clock: Callable[[], float] = time.perf_counter) -> None:
        self.net = net
        self._clock = clock
        self._free_at = 0.0
        self._queue: List[Tuple[float, int, Callable[[], Any]]] = []
        self._posted: List[Any] = []
        self._error: Optional[BaseException] = None
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self.busy = 0.0
        self.messages = 0
        self._thread = threading.Thread(target=self._run, name="gnnsys-courier", daemon=True)
        self._thread.start()

    def send(self, nbytes: int, post: Callable[[], Any]) -> float:
        """Book ``nbytes`` on the link now; ``post`` runs at the arrival time (returned)."""
        now = self._clock()
        start = max(now, self._free_at)
        wire = nbytes * self.net.seconds_per_byte
        self._free_at = start + wire
        arrive = self._free_at + self.net.latency
        self.busy += wire
        self.messages += 1
        with self._cond:
            heapq.heappush(self._queue, (arrive, next(self._seq), post))
            self._cond.notify()
        return arrive

    def occupy(self, seconds: float) -> None:
        """Mark the link busy for ``seconds`` from now (a collective that used it)."""
        self._free_at = max(self._clock(), self._free_at) + seconds

    def drain(self) -> List[Any]:
        """Wait until every booked message has been posted; returns their works, in post order."""
        with self._cond:
            while self._queue and self._error is None:
                self._cond.wait(0.05)
            if self._error is not None:
                raise RuntimeError(f"modeled network courier failed: {self._error}")
            out, self._posted = self._posted, []
        return out

    def close(self) -> None:
        """Stop the courier thread (after ``drain``)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._queue:
                    self._cond.wait()
                    continue
                due = self._queue[0][0] - self._clock()
                if due > 0:
                    self._cond.wait(due)
                    continue
                _, _, post = heapq.heappop(self._queue)
                try:
                    self._posted.append(post())
                except BaseException as e:  # reported to the rank by drain()
                    self._error = e
                self._cond.notify_all()

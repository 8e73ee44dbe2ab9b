"""A modeled network for the distributed trainers: what an epoch costs on a 10/25/100 Gb/s link.

Loopback is nearly free, so runs on one machine cannot show the cost of a real network. With
a ``NetModel`` the ``Transport`` delays every message as a NIC of that bandwidth and latency
would: each rank owns one link (its NIC) whose egress is a token bucket (``Link``); a message
of ``b`` bytes leaves when the link is free, occupies it ``8 b / bandwidth`` seconds and arrives
``latency`` later. The sender does not wait: it hands the message to gloo at once with the
modeled arrival time stamped ahead of the payload (``stamp``), and the receiver holds it until
that time (every process of a machine reads the same monotonic clock). No extra thread: on a
machine with fewer cores than ranks a helper thread's wake-ups would add their own delays.
Collectives are modeled as a ring all-reduce: ``2 (G-1)`` steps of ``b / G`` bytes, each
paying the latency.

What it leaves out: ingress contention (two peers sending to one rank at full rate each) and
switch queues. The real loopback transfer runs underneath, in parallel with the modeled
delay: it shows only where it takes longer than the model.

Example:
    >>> net = NetModel(gbps=10, latency_us=5)
    >>> round(net.transfer_seconds(1_250_000), 6)      # 1.25 MB at 10 Gb/s + 5 us
    0.001005
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch


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


class Link:
    """One rank's egress link: a token bucket that books messages one after another.

    ``book(nbytes)`` returns the modeled arrival time (``time.perf_counter`` seconds, the same
    clock in every process of a machine) of a message sent now: it leaves when the link is
    free, occupies it ``8 nbytes / bandwidth`` seconds and arrives ``latency`` later. ``busy``
    is the link's total occupied seconds, ``messages`` the count.

    Example:
        >>> link = Link(NetModel(1.0, 100.0))
        >>> a, b = link.book(125), link.book(125)   # 1 us each, back to back
        >>> round((b - a) * 1e6)
        1
    """

    def __init__(self, net: NetModel, clock: Callable[[], float] = time.perf_counter) -> None:
        self.net = net
        self._clock = clock
        self._free_at = 0.0
        self.busy = 0.0
        self.messages = 0

    def book(self, nbytes: int) -> float:
        """Put ``nbytes`` on the link now; returns their modeled arrival time."""
        start = max(self._clock(), self._free_at)
        wire = nbytes * self.net.seconds_per_byte
        self._free_at = start + wire
        self.busy += wire
        self.messages += 1
        return self._free_at + self.net.latency

    def occupy(self, seconds: float) -> None:
        """Mark the link busy for ``seconds`` from now (a collective that used it)."""
        self._free_at = max(self._clock(), self._free_at) + seconds


def stamp(t: torch.Tensor, arrive: float) -> torch.Tensor:
    """``t``'s bytes behind an 8-byte header holding ``arrive`` (float64): the message a
    modeled link sends (the header is not counted as traffic).

    Example:
        >>> arrive, payload = unstamp(stamp(torch.ones(2), 5.0)); arrive, payload.numel()
        (5.0, 8)
    """
    header = torch.tensor([arrive], dtype=torch.float64).view(torch.uint8)
    return torch.cat([header, t.detach().contiguous().reshape(-1).view(torch.uint8)])


def unstamp(buf: torch.Tensor) -> Tuple[float, torch.Tensor]:
    """(arrival time, payload bytes) of a ``stamp``-ed buffer."""
    return float(buf[:8].view(torch.float64)[0]), buf[8:]

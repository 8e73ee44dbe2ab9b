"""Transport: the one door every send, receive and collective of the trainers goes through.

It counts the bytes of every tensor handed to the network, per (epoch, kind), so reported
communication volume is measured rather than computed from a formula. Every blocking wait has
a timeout, so a dead peer turns into a clear error on the other ranks instead of a hang.

Kinds used by the trainers: ``"activation"`` and ``"gradient"`` (pipeline boundaries),
``"halo"`` and ``"halo_grad"`` (graph-parallel exchanges), ``"allreduce"`` (weight gradients),
``"warm"``, ``"refresh"`` and ``"eval"`` (exact passes), ``"metrics"`` (loss and accuracy sums),
``"clip"`` (the global gradient norm).

With a ``NetModel`` (``netmodel.py``) every message is delayed as a link of that bandwidth and
latency would delay it (the sender books it on its link and stamps the modeled arrival time
ahead of the payload; the receiver holds it until then); with a ``StageTimer`` (``timing.py``) every call charges its time to a
section (``post``, ``wait:<kind>``, ``flush``, the collective's kind).
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections import defaultdict
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

from gnnsys.pipeline_parallel.netmodel import Link, NetModel, stamp, unstamp
from gnnsys.pipeline_parallel.timing import StageTimer

# Tag layout: ((epoch mod 16) * 1024 + chunk) * 256 + slot, times 2, plus direction.
_EPOCHS, _CHUNKS, _SLOTS = 16, 1024, 256
MAX_CHUNKS = _CHUNKS - 4  # the last ids name the exact passes
WARM_CHUNK, REFRESH_CHUNK, EVAL_CHUNK = _CHUNKS - 1, _CHUNKS - 2, _CHUNKS - 3
HALO_SLOT = 128  # slots below are pipeline boundaries, from here on halo layers
# The most layers a run may have: a halo slot per layer (the trainers have always kept one
# slot spare).
MAX_LAYERS = _SLOTS - HALO_SLOT - 1
FWD, BWD = 0, 1


def make_tag(epoch: int, chunk: int, slot: int, direction: int) -> int:
    """A message tag unique per (epoch mod 16, chunk, slot, direction) for gloo's tag matching.

    ``slot`` is a pipeline boundary (0..127) or ``HALO_SLOT + layer``; chunk ids at and above
    ``MAX_CHUNKS`` are reserved for the exact passes. Messages of one epoch finish before the next
    starts, so the epoch needs only a few bits.

    Example:
        >>> make_tag(epoch=3, chunk=2, slot=0, direction=FWD) != make_tag(3, 2, 0, BWD)
        True
    """
    if not 0 <= chunk < _CHUNKS:
        raise ValueError(f"chunk must be in 0..{_CHUNKS - 1}, got {chunk}")
    if not 0 <= slot < _SLOTS:
        raise ValueError(f"slot must be in 0..{_SLOTS - 1}, got {slot}")
    if direction not in (FWD, BWD):
        raise ValueError(f"direction must be FWD (0) or BWD (1), got {direction}")
    return (((epoch % _EPOCHS) * _CHUNKS + chunk) * _SLOTS + slot) * 2 + direction


class Transport:
    """Counting, timed wrapper over ``torch.distributed`` point-to-point and collectives.

    Args:
        timeout: seconds any single wait may block before it raises.
        batched: post every point-to-point operation through ``batch_isend_irecv`` (default:
            on when the backend is NCCL). NCCL runs a pair's operations in order on one stream,
            so two ranks that each ``isend`` to the other and then ``recv`` would wait forever
            on each other's send; batched, an ``isend`` is held back and posted together with
            the next ``recv``/``exchange`` (or at ``flush``/before a collective) in one group.
        net: a modeled network (``NetModel``): sends leave through this rank's modeled link and
            reach the peer at their modeled arrival time; collectives take a ring all-reduce's
            modeled time. Not with ``batched`` (NCCL runs have a real network).

    ``epoch`` is set by the trainer; ``sent[(epoch, kind)]`` and ``received[(epoch, kind)]`` hold
    the bytes this rank sent and received, ``messages[(epoch, kind)]`` the messages it sent.
    Collectives count the bytes of the tensor this rank contributes. ``timer`` (a disabled
    ``StageTimer`` unless the trainer sets one) gets each call's time.

    Example:
        >>> t = Transport(timeout=30.0)
        >>> t.isend(torch.ones(4), dst=1, tag=make_tag(0, 0, 0, FWD), kind="activation")
        >>> t.flush()
        >>> t.sent[(0, "activation")]
        16
    """

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        batched: Optional[bool] = None,
        net: Optional[NetModel] = None,
    ) -> None:
        if not dist.is_initialized():
            raise RuntimeError("Transport needs torch.distributed to be initialised first")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.timeout = datetime.timedelta(seconds=float(timeout))
        self.batched = dist.get_backend() == "nccl" if batched is None else bool(batched)
        self.epoch = 0
        self.sent: Dict[Tuple[int, str], int] = defaultdict(int)
        self.received: Dict[Tuple[int, str], int] = defaultdict(int)
        self.messages: Dict[Tuple[int, str], int] = defaultdict(int)
        self.timer = StageTimer(enabled=False)
        if net is not None and self.batched:
            raise ValueError(
                "a modeled network runs on gloo's point-to-point path; batched (NCCL) runs "
                "use their real network: drop net_gbps/net_latency_us or use backend='gloo'"
            )
        self.net = net
        self._link = Link(net) if net is not None else None
        self._pending: List[Tuple[Any, torch.Tensor, str]] = []
        self._deferred: List[Tuple[Any, torch.Tensor, str]] = []  # batched isends not yet posted
        if self.batched and dist.get_backend() == "nccl":
            # PyTorch: a batch_isend_irecv that is a group's first collective must involve
            # every rank; a barrier first makes the ranks' first batches free to be partial.
            self.barrier()

    # ------------------------------------------------------------------ point to point
    def isend(self, tensor: torch.Tensor, dst: int, tag: int, kind: str) -> None:
        """Start sending ``tensor`` to rank ``dst``; ``flush`` waits for it. Empty tensors are
        skipped (the receiver knows the size and skips too)."""
        with self.timer.section("pack"):
            t = tensor.detach().contiguous()
        if t.numel() == 0:
            return
        what = f"send of {kind} to rank {dst} (tag {tag})"
        self._count_sent(t, kind)
        self.messages[(self.epoch, kind)] += 1
        if self.batched:
            self._deferred.append((dist.P2POp(dist.isend, t, dst, tag=tag), t, what))
            return
        with self.timer.section("post"):
            self._send(t, dst, tag, what)

    def _send(self, t: torch.Tensor, dst: int, tag: int, what: str) -> None:
        """Post one unbatched send now; on a modeled link, stamped with its arrival time."""
        if self._link is not None:
            t = stamp(t, self._link.book(t.numel() * t.element_size()))
        with self._guard(what):
            work = dist.isend(t, dst, tag=tag)
        self._pending.append((work, t, what))

    def _recv_buffer(self, t: torch.Tensor) -> torch.Tensor:
        """What to receive into for ``t``: ``t`` itself, or a stamped byte buffer."""
        if self._link is None:
            return t
        return torch.empty(t.numel() * t.element_size() + 8, dtype=torch.uint8)

    def _arrived(self, buf: torch.Tensor, t: torch.Tensor) -> None:
        """Fill ``t`` from a received stamped ``buf`` once its modeled arrival time came."""
        if buf is t:
            return
        arrive, payload = unstamp(buf)
        delay = arrive - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t.view(-1).view(torch.uint8).copy_(payload)

    def _post(self, ops: List[Any], what: str) -> List[Any]:
        """Post the held-back sends and ``ops`` as one batch; returns the works of ``ops``
        (the sends' works join the pending list that ``flush`` waits for)."""
        deferred, self._deferred = self._deferred, []
        all_ops = [op for op, _, _ in deferred] + list(ops)
        if not all_ops:
            return []
        with self._guard(what if ops else deferred[0][2]):
            works = dist.batch_isend_irecv(all_ops)
        for (_, t, w_what), work in zip(deferred, works):
            self._pending.append((work, t, w_what))
        return works[len(deferred) :]

    def recv(
        self,
        shape: Sequence[int],
        dtype: torch.dtype,
        src: int,
        tag: int,
        kind: str,
        device: Optional[torch.device] = None,
    ) -> torch.Tensor:
        """Receive a tensor of known ``shape`` from rank ``src``; raises after the timeout."""
        t = torch.empty(tuple(shape), dtype=dtype, device=device)
        if t.numel() == 0:
            return t
        what = f"receive of {kind} from rank {src} (tag {tag})"
        with self.timer.section("post"):
            if self.batched:
                (work,) = self._post([dist.P2POp(dist.irecv, t, src, tag=tag)], what)
            else:
                buf = self._recv_buffer(t)
                with self._guard(what):
                    work = dist.irecv(buf, src, tag=tag)
        with self.timer.section(f"wait:{kind}"), self._guard(what):
            self._wait(work)
            if not self.batched:
                self._arrived(buf, t)
        self._count_received(t, kind)
        return t

    def exchange(
        self,
        sends: Dict[int, torch.Tensor],
        recv_shapes: Dict[int, Sequence[int]],
        dtype: torch.dtype,
        tag: int,
        kind: str,
        device: Optional[torch.device] = None,
    ) -> Dict[int, torch.Tensor]:
        """Send ``sends[peer]`` to every peer and receive ``recv_shapes[peer]`` from every peer.

        All operations are posted before any wait, so peers exchanging with each other cannot
        deadlock; returns the received tensors by peer.

        Example:
            >>> got = t.exchange({1: rows_for_1}, {1: (5, 16)}, torch.float32, tag, "halo")
        """
        out = {p: torch.empty(tuple(s), dtype=dtype, device=device) for p, s in recv_shapes.items()}
        with self.timer.section("pack"):
            send_t = {p: x.detach().contiguous() for p, x in sends.items() if x.numel()}
        recv_t = {p: x for p, x in out.items() if x.numel()}
        peers = sorted(set(send_t) | set(recv_t))
        what = f"{kind} exchange with ranks {peers} (tag {tag})"
        with self._guard(what):
            with self.timer.section("post"):
                if self.batched:
                    ops = [dist.P2POp(dist.isend, x, p, tag=tag) for p, x in send_t.items()]
                    ops += [dist.P2POp(dist.irecv, x, p, tag=tag) for p, x in recv_t.items()]
                    works = self._post(ops, what)
                elif self._link is not None:
                    # Stamped buffers; the sends are waited for at the next flush.
                    bufs = {p: self._recv_buffer(x) for p, x in recv_t.items()}
                    works = [dist.irecv(bufs[p], p, tag=tag) for p in recv_t]
                    for p, x in send_t.items():
                        self._send(x, p, tag, what)
                else:
                    works = [dist.irecv(x, p, tag=tag) for p, x in recv_t.items()]
                    works += [dist.isend(x, p, tag=tag) for p, x in send_t.items()]
            with self.timer.section(f"wait:{kind}"):
                for w in works:
                    self._wait(w)
                if self._link is not None and not self.batched:
                    for p, x in recv_t.items():
                        self._arrived(bufs[p], x)
        for x in send_t.values():
            self._count_sent(x, kind)
            self.messages[(self.epoch, kind)] += 1
        for x in recv_t.values():
            self._count_received(x, kind)
        return out

    def flush(self) -> None:
        """Post any held-back sends and wait for every pending ``isend`` (raises after the
        timeout)."""
        with self.timer.section("flush"):
            self._post([], "flush")
            pending, self._pending = self._pending, []
            for work, _, what in pending:
                with self._guard(what):
                    self._wait(work)

    def close(self) -> None:
        """Wait for every send still in flight."""
        self.flush()

    # ------------------------------------------------------------------ collectives
    def all_reduce(self, tensor: torch.Tensor, kind: str, group: Any = None) -> torch.Tensor:
        """Sum ``tensor`` in place over ``group`` (default: all ranks); returns it.

        A group of one rank sends nothing, so nothing is counted.
        """
        if dist.get_world_size(group) == 1:
            return tensor
        self._post([], "flush")  # held-back sends go out before a collective can block on them
        with self.timer.section(kind), self._guard(f"all_reduce of {kind}"):
            start = time.perf_counter()
            self._wait(dist.all_reduce(tensor, group=group, async_op=True))
            if self._link is not None:
                # The ring's modeled time, beyond what the real collective took.
                nbytes = tensor.numel() * tensor.element_size()
                model = self.net.allreduce_seconds(nbytes, dist.get_world_size(group))
                time.sleep(max(model - (time.perf_counter() - start), 0.0))
                self._link.occupy(model)
        self._count_sent(tensor, kind)
        self.messages[(self.epoch, kind)] += 1
        return tensor

    def all_reduce_grads(
        self, params: Sequence[torch.Tensor], kind: str, group: Any = None
    ) -> None:
        """Sum the ``.grad`` of ``params`` over ``group`` as one flat message."""
        if not params or dist.get_world_size(group) == 1:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        self.all_reduce(flat, kind, group=group)
        off = 0
        for p in params:
            p.grad.copy_(flat[off : off + p.numel()].view_as(p))
            off += p.numel()

    def barrier(self) -> None:
        """A barrier that names the missing ranks (gloo) and never waits past the timeout."""
        self._post([], "flush")
        with self.timer.section("barrier"), self._guard("barrier"):
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=self.timeout, wait_all_ranks=True)
            else:
                self._wait(dist.barrier(async_op=True))

    # ------------------------------------------------------------------ counters
    def bytes_by_epoch(self) -> Dict[int, Dict[str, int]]:
        """{epoch: {kind: bytes sent by this rank}}."""
        return _by_epoch(self.sent)

    def messages_by_epoch(self) -> Dict[int, Dict[str, int]]:
        """{epoch: {kind: messages sent by this rank}} (a collective counts one)."""
        return _by_epoch(self.messages)

    def _count_sent(self, t: torch.Tensor, kind: str) -> None:
        self.sent[(self.epoch, kind)] += t.numel() * t.element_size()

    def _count_received(self, t: torch.Tensor, kind: str) -> None:
        self.received[(self.epoch, kind)] += t.numel() * t.element_size()

    def _wait(self, work: Any) -> None:
        if work.wait(self.timeout) is False:
            raise RuntimeError(f"timed out after {self.timeout.total_seconds():g}s")

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        # Any failure of a communication call becomes one error naming the rank, the call, the
        # epoch and the likely cause (gloo reports a dead peer as a closed connection).
        try:
            yield
        except RuntimeError as e:
            raise RuntimeError(
                f"rank {self.rank}: {what} failed (epoch {self.epoch}, timeout "
                f"{self.timeout.total_seconds():g}s); a peer rank probably died or hangs: {e}"
            ) from e


def _by_epoch(counts: Dict[Tuple[int, str], int]) -> Dict[int, Dict[str, int]]:
    out: Dict[int, Dict[str, int]] = defaultdict(dict)
    for (epoch, kind), b in sorted(counts.items()):
        out[epoch][kind] = b
    return dict(out)

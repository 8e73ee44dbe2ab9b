"""All-to-all exchanges of variable-sized blocks over a process group, every byte counted.

The distributed sampler and feature store talk only through ``Exchange.alltoallv``: each rank
sends one block of rows to every rank (``torch.distributed.all_to_all_single``: gloo on CPU,
NCCL on GPU) and receives one from each. Collectives, not RPC: every rank calls the same
exchanges in the same order (one batch at a time, the Loader runs a collective sampler on one
thread), there are no servers, and a rank that dies makes the others' next exchange fail
instead of waiting forever (the group's timeout bounds it).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist

from gnnsys.features import BufferPool

# Receive buffers from this size up come from the exchange's pool: a fresh one of tens of MiB
# is mmap'd, faulted in page by page and unmapped again every batch (on rmat20 at 4 parts the
# page faults and unmaps of such buffers took ~20% of a machine's CPU, session 35's profile).
POOLED_BYTES = 1 << 20

# The exchanges carry host memory (the sampler and the feature tables are on the CPU), so their
# groups are gloo groups whatever the job's default backend: under NCCL (a GPU job's gradients),
# a group inheriting it would refuse CPU tensors. DistDGL likewise samples and serves features
# over its own TCP layer beside NCCL.
EXCHANGE_BACKEND = "gloo"
_HOST_BACKENDS = ("gloo", "mpi")  # the torch.distributed backends that take CPU tensors


class PeerLostError(RuntimeError):
    """An exchange failed because another rank died, hung past the timeout or left."""


class Exchange:
    """``alltoallv`` over ``group`` (default: a new group of every rank), counting the bytes
    this rank sends to other ranks, by kind.

    Attributes:
        rank, size: this rank and the group size (ranks of ``group``).
        bytes_sent: Counter kind -> bytes sent to other ranks (blocks to itself are free).
        messages: Counter kind -> exchanges this rank took part in.

    Example:
        >>> ex = Exchange()
        >>> got, counts = ex.alltoallv(torch.arange(4), np.array([1, 3]), "ids")
    """

    def __init__(self, group: Any = None, *, timeout_s: Optional[float] = None) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "gnnsys.distributed needs torch.distributed initialised first "
                "(torch.distributed.init_process_group, e.g. under torchrun)"
            )
        if group is None:  # its own group: the sampler's exchanges never interleave with DDP's
            kwargs = {"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}
            group = dist.new_group(backend=EXCHANGE_BACKEND, **kwargs)
        backend = str(dist.get_backend(group))
        if not any(b in backend for b in _HOST_BACKENDS):
            raise ValueError(
                f"Exchange carries host (CPU) tensors, and a {backend!r} group cannot: pass a "
                f"group made with torch.distributed.new_group(..., backend={EXCHANGE_BACKEND!r}) "
                "or none (Exchange then makes one)"
            )
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        self.bytes_sent: Counter = Counter()
        self.messages: Counter = Counter()
        # receive and reply buffers (reused once nothing holds them)
        self.pool = BufferPool(max_buffers=4, min_bytes=POOLED_BYTES)

    def alltoallv(
        self,
        send: torch.Tensor,
        send_counts: np.ndarray,
        kind: str,
        recv_counts: Optional[np.ndarray] = None,
    ) -> Tuple[torch.Tensor, np.ndarray]:
        """Send rows ``send[sum(send_counts[:r]) : sum(send_counts[:r+1])]`` to rank r; return
        the rows received (rank 0's block first) and how many came from each rank.

        ``recv_counts``: when the caller already knows them (a reply to a request); otherwise
        the counts are exchanged first (one more, small, exchange).
        """
        send = send.contiguous()
        send_counts = np.asarray(send_counts, np.int64)
        if send_counts.shape != (self.size,) or int(send_counts.sum()) != send.shape[0]:
            raise ValueError(
                f"send_counts must be {self.size} counts summing to {send.shape[0]} rows, "
                f"got {send_counts.tolist()}"
            )
        if self.size == 1:  # nothing to send anywhere: the rows are their own answer
            self.messages[kind] += 1
            return send, send_counts
        if recv_counts is None:
            got = torch.empty(self.size, dtype=torch.int64)
            self._run(got, torch.from_numpy(send_counts), None, None, kind, 8)
            recv_counts = got.numpy()
        recv_counts = np.asarray(recv_counts, np.int64)
        out = self.pool.take(int(recv_counts.sum()), tuple(send.shape[1:]), send.dtype)
        row = send.element_size() * int(np.prod(send.shape[1:], dtype=np.int64))
        self._run(out, send, recv_counts, send_counts, kind, row)
        return out, recv_counts

    def _run(self, out, send, recv_counts, send_counts, kind: str, row_bytes: int) -> None:
        if send_counts is None:
            off_rank = self.size - 1
        else:
            off_rank = int(send_counts.sum() - send_counts[self.rank])
        self.bytes_sent[kind] += off_rank * row_bytes
        self.messages[kind] += 1
        try:
            dist.all_to_all_single(
                out,
                send,
                None if recv_counts is None else recv_counts.tolist(),
                None if send_counts is None else send_counts.tolist(),
                group=self.group,
            )
        except RuntimeError as err:  # gloo/NCCL say "connection reset", "timed out", ...
            detail = (str(err).strip().splitlines() or [""])[0][:300]
            raise PeerLostError(
                f"rank {self.rank}: the {kind!r} exchange with the other {self.size - 1} "
                f"rank(s) failed: a machine (process group) is gone or stalled. Every rank of "
                f"a distributed run must stay up; restart the run. ({detail})"
            ) from err

    @classmethod
    def lanes(cls, count: int, ranks: Optional[list] = None,
              timeout_s: Optional[float] = None) -> list:  # fmt: skip
        """``count`` Exchanges over ``ranks`` (default: every rank), each its own group, for a
        ``DistGraph`` with lanes. Every rank of the job calls it (torch's ``new_group`` rule).

        Example:
            >>> g = DistGraph.open("parts/", exchange=Exchange.lanes(2))
        """
        kwargs = {"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}
        return [
            cls(dist.new_group(ranks, backend=EXCHANGE_BACKEND, **kwargs))
            for _ in range(int(count))
        ]

    def stats(self) -> Dict[str, Any]:
        """Bytes sent and exchanges so far, by kind (JSON-ready)."""
        return {"bytes_sent": dict(self.bytes_sent), "messages": dict(self.messages)}

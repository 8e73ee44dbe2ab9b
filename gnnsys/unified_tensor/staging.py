"""A ring of pinned staging buffers for tables that cannot be registered (memory-mapped files).

Registering a file mapping would page-lock all of it, impossible for a table larger than RAM.
Instead the rows a batch needs are gathered on the CPU (numba, pages read from the file as
needed) into one pinned slot of the ring while the previous slot is copied to the GPU on a side
stream; a CUDA event per slot tells when its buffer may be refilled. On a CPU device the same
code runs with plain buffers and no events (what the tests exercise).
"""

from __future__ import annotations

import threading
from typing import Callable, List, Optional, Union

import numpy as np
import torch

from gnnsys._checks import require_cuda

# Bytes per slot: big enough for a batch of features, small enough to pipeline a large one.
SLOT_BYTES = 32 << 20


class StagingRing:
    """``slots`` pinned buffers of at least ``slot_bytes`` each, used round robin.

    Example:
        >>> ring = StagingRing(slots=2, slot_bytes=1 << 20, device="cpu")
        >>> src = np.arange(12, dtype=np.float32).reshape(6, 2)
        >>> def fill(ids, out):
        ...     out[...] = src[ids]
        >>> ring.stage(np.array([5, 0]), fill, 2, torch.float32, torch.device("cpu"))[0].tolist()
        [10.0, 11.0]
    """

    def __init__(
        self,
        slots: int = 2,
        slot_bytes: int = SLOT_BYTES,
        device: Optional[Union[torch.device, str]] = None,
    ) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        if slot_bytes < 1:
            raise ValueError(f"slot_bytes must be >= 1, got {slot_bytes}")
        self.slots = int(slots)
        self.slot_bytes = int(slot_bytes)
        self.device = torch.device(device) if device is not None else None
        self._bufs: List[Optional[torch.Tensor]] = [None] * self.slots
        self._events: List[Optional[object]] = [None] * self.slots
        self._next = 0
        self._lock = threading.Lock()

    def _buffer(self, i: int, nbytes: int, pinned: bool) -> torch.Tensor:
        buf = self._bufs[i]
        if buf is None or buf.numel() < nbytes:
            size = max(nbytes, self.slot_bytes)
            buf = torch.empty(size, dtype=torch.uint8, pin_memory=pinned)
            self._bufs[i] = buf
        return buf

    def stage(
        self,
        ids: np.ndarray,
        fill: Callable[[np.ndarray, np.ndarray], None],
        d: int,
        dtype: torch.dtype,
        device: torch.device,
        *,
        stream: Optional[torch.cuda.Stream] = None,
        out: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Rows ``fill(ids_chunk, host_rows)`` copied to ``device`` as one [len(ids), d] tensor.

        ``fill`` writes the rows of ``ids_chunk`` into the numpy array ``host_rows`` (a view of
        a pinned slot, ``dtype`` elements). Copies are issued on ``stream`` (CUDA); the caller
        waits on that stream before reading the result.
        """
        cuda = device.type == "cuda"
        if cuda:
            require_cuda(f"StagingRing.stage(device={str(device)!r})")
        n = int(ids.shape[0])
        esize = torch.empty((), dtype=dtype).element_size()
        row_bytes = max(1, d * esize)
        if out is None:
            out = torch.empty((n, d), dtype=dtype, device=device)
        if n == 0 or d == 0:
            return out
        rows_per_slot = max(1, self.slot_bytes // row_bytes)
        with self._lock:
            for lo in range(0, n, rows_per_slot):
                hi = min(n, lo + rows_per_slot)
                i = self._next
                self._next = (self._next + 1) % self.slots
                ev = self._events[i]
                if ev is not None:
                    ev.synchronize()  # the copy that last read this slot has finished
                buf = self._buffer(i, (hi - lo) * row_bytes, pinned=cuda)
                host = buf[: (hi - lo) * row_bytes].view(dtype).view(hi - lo, d)
                fill(ids[lo:hi], numpy_bits(host))
                if cuda:
                    with torch.cuda.stream(stream) if stream is not None else _null():
                        out[lo:hi].copy_(host, non_blocking=True)
                        ev = torch.cuda.Event()
                        ev.record()
                    self._events[i] = ev
                else:
                    out[lo:hi].copy_(host)
        return out


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def numpy_bits(t: torch.Tensor) -> np.ndarray:
    """A numpy view of ``t``'s memory (bfloat16 shown as uint16 bits, bool as uint8)."""
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    if t.dtype == torch.bool:
        return t.view(torch.uint8).numpy()
    return t.numpy()

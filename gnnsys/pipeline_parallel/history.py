"""Histories: the last known input of every node at every layer a stage owns.

A stage writes a chunk's layer inputs into the history right after computing them, and reads
the inputs of the chunk's outside neighbours from it: neighbours in chunks processed earlier
this epoch were written this epoch (fresh), those in later chunks were written last epoch
(stale). So staleness is at most one epoch by construction; ``History`` measures it anyway
(reads per epoch, the oldest row read) so tests can check the bound.

A history may keep rows for some nodes only (``keep``: the nodes any chunk reads from it;
on ``mini`` with 8 METIS chunks 43% of the nodes): its buffers then hold one row per kept node
and the ids it is given are translated to those rows; an id it does not keep is an error.

Optional EMA smoothing (``momentum``) keeps a second buffer, ``m * old + (1 - m) * new`` per
write, that stale reads use instead of the raw last value; fresh reads always use the raw value.

``FreshGrads`` carries gradients back through fresh reads under the GPipe schedule: chunk c's
backward runs before that of every earlier chunk c', so the gradient c's layer sends to the
fresh rows it read is accumulated per layer (``add``) and injected into c''s layer input when
c' runs its backward (``inject``, an identity whose backward adds the accumulated rows).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from numba import njit

from gnnsys._checks import as_cpu_tensor, check_index, id_range
from gnnsys._numba import prefetch2d
from gnnsys._tokens import tensors_token, token_matches

_AHEAD = 16  # rows prefetched ahead by the write kernel (its row reads are random)
_FUSED_DTYPES = (torch.float32, torch.float64)
_NO_IDS = torch.empty(0, dtype=torch.int64)  # read's default placement: fresh rows, then stale
_SLOT_CACHE_SIZE = 256  # id tensors whose buffer rows are remembered (a chunk's node lists)


class History:
    """Per-layer node buffers ``[num_nodes, dim]`` with write epochs and read statistics.

    Args:
        layers: the layer ids whose inputs this stage keeps.
        num_nodes: N.
        dims: one width for all layers, or one per layer (same order as ``layers``).
        momentum: EMA momentum for stale reads (``None`` = no smoothing).
        validate: check every id tensor passed to ``write``/``read`` (False for the trainers,
            whose ids come from the chunk sampler and are in range by construction: the check
            is a scan of every id on every call). The CPU numba passes check their ids either
            way (they check nothing themselves); ``False`` skips the check only where torch's
            indexing would refuse a bad id.
        keep: optional int ids (or a bool mask [N]) of the nodes whose rows this history
            holds; default every node. Ids not kept are refused by ``write`` and ``read``
            whatever ``validate`` says.

    Example:
        >>> h = History([2, 3], num_nodes=100, dims=64)
        >>> h.write(2, torch.arange(10), torch.randn(10, 64), epoch=1)
        >>> h.read(2, fresh=torch.arange(5), stale=torch.arange(5, 10), epoch=1).shape
        torch.Size([10, 64])
    """

    def __init__(
        self,
        layers: Sequence[int],
        num_nodes: int,
        dims,
        *,
        momentum: Optional[float] = None,
        dtype: torch.dtype = torch.float32,
        device: Optional[torch.device] = None,
        validate: bool = True,
        keep: Optional[torch.Tensor] = None,
    ) -> None:
        layers = [int(x) for x in layers]
        if isinstance(dims, int):
            dims = [dims] * len(layers)
        if len(dims) != len(layers):
            raise ValueError(f"dims has {len(dims)} entries for {len(layers)} layers")
        if momentum is not None and not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1) or None, got {momentum}")
        self.num_nodes = int(num_nodes)
        self.momentum = momentum
        self.validate = bool(validate)
        # keep: the kept ids ascending; slot_of: each node's row (-1: not kept); None: all
        self.keep: Optional[torch.Tensor] = None
        self.slot_of: Optional[torch.Tensor] = None
        rows = self.num_nodes
        if keep is not None:
            k = as_cpu_tensor("keep", keep)
            if k.dtype == torch.bool:
                if k.shape != (self.num_nodes,):
                    raise ValueError(
                        f"a keep mask must have {self.num_nodes} entries, got {k.shape}"
                    )
                k = torch.nonzero(k).flatten()
            k = torch.unique(check_index("keep", k, self.num_nodes, device=None))
            slot_of = torch.full((self.num_nodes,), -1, dtype=torch.int64)
            slot_of[k] = torch.arange(k.numel())
            self.keep, self.slot_of, rows = k, slot_of.to(device), k.numel()
        # id(ids) -> (token, buffer rows): the node lists a chunk reads and writes at every layer
        # are mapped to rows once (the mapping is fixed once the history is built)
        self._slot_cache: Dict[int, Tuple[Any, torch.Tensor]] = {}
        self._position_cache: Dict[Tuple[int, int], Tuple[Any, torch.Tensor]] = {}
        self.buf: Dict[int, torch.Tensor] = {}
        self.smooth: Dict[int, torch.Tensor] = {}
        self.written: Dict[int, torch.Tensor] = {}
        for layer, d in zip(layers, dims):
            self.buf[layer] = torch.zeros(rows, int(d), dtype=dtype, device=device)
            self.written[layer] = torch.full((rows,), -1, dtype=torch.int64, device=device)
            if momentum is not None:
                self.smooth[layer] = torch.zeros(rows, int(d), dtype=dtype, device=device)
        self.stale_reads: Dict[int, int] = defaultdict(int)  # epoch -> (layer, edge) stale reads
        self.unwritten_reads: Dict[int, int] = defaultdict(int)  # rows read before any write
        self.max_stale_age = 0  # oldest written row read stale, in epochs
        self.max_fresh_age = 0  # should stay 0: fresh rows were written this epoch
        self._complete: set = set()  # layers whose every row has been written

    @property
    def layers(self) -> list:
        return sorted(self.buf)

    @property
    def num_rows(self) -> int:
        """Rows per layer buffer: the kept nodes (every node without ``keep``)."""
        return self.num_nodes if self.keep is None else self.keep.numel()

    def full(self, layer: int) -> torch.Tensor:
        """Layer ``layer``'s rows as a new [N, dim] tensor, zeros for nodes not kept."""
        buf = self._buf(layer)
        if self.keep is None:
            return buf.detach().clone()
        out = buf.new_zeros((self.num_nodes, buf.shape[1]))
        out[self.keep.to(buf.device)] = buf.detach()
        return out

    def keeps(self, ids: torch.Tensor) -> torch.Tensor:
        """bool, per id of ``ids`` (valid node ids): whether this history keeps its rows."""
        if self.slot_of is None:
            return torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
        return self.slot_of.index_select(0, ids.to(self.slot_of.device)).to(ids.device) >= 0

    def _slots(self, name: str, ids: torch.Tensor, checked: bool) -> torch.Tensor:
        """``_rows_of(ids)``, the ids checked first where the caller has not (CPU ids), cached
        by the tensor's identity and version: a chunk's node lists (the same tensors at every
        layer of an epoch) are checked and mapped once, not at every layer."""

        def build() -> torch.Tensor:
            t = ids
            if not checked and t.device.type == "cpu":  # (torch's CUDA indexing checks)
                t = check_index(name, t, self.num_nodes, device=None)
            return self._rows_of(name, t)

        return _memo(self._slot_cache, id(ids), ids, build)

    def _positions(self, name: str, at: torch.Tensor, bound: int, unit: str) -> torch.Tensor:
        """``check_index(name, at, bound)``, cached by the tensor's identity and version and the
        bound: a chunk block's row positions (the same tensors at every layer and epoch) are
        checked once, not at every read and write (~2% of a GNNPipe rank's samples)."""
        return _memo(
            self._position_cache,
            (id(at), int(bound)),
            at,
            lambda: check_index(name, at, bound, device=None, unit=unit),
        )

    def _rows_of(self, name: str, ids: torch.Tensor) -> torch.Tensor:
        """The buffer rows of node ``ids`` (checked ids): themselves, or their kept rows."""
        if self.slot_of is None:
            return ids
        rows = self.slot_of.index_select(0, ids.to(self.slot_of.device))
        # (on a GPU, unvalidated: torch's indexing refuses the -1 of a node not kept, and a
        # check would wait for the GPU on every call; the CPU's numba passes check nothing)
        check = self.validate or rows.device.type == "cpu"
        if check and rows.numel() and id_range(rows)[0] < 0:
            bad = int(ids[rows < 0][0])
            raise ValueError(
                f"{name} holds node {bad}, whose rows this history does not keep (it keeps "
                f"{self.num_rows} of {self.num_nodes} nodes: those some chunk reads)"
            )
        return rows

    def state_dict(self, copy: bool = True) -> Dict[str, object]:
        """Buffers, write epochs and read statistics (CPU copies), for checkpoints.

        ``copy=False``: CPU buffers as they are, not copied (for a state serialised at once, as
        a checkpoint is: a copy would hold the histories in memory twice while it is written).
        """

        def cpu(d: Dict[int, torch.Tensor]) -> Dict[int, torch.Tensor]:
            if not copy:
                return {k: v.detach().cpu() for k, v in d.items()}
            return {k: v.detach().cpu().clone() for k, v in d.items()}

        return {
            "buf": cpu(self.buf),
            "smooth": cpu(self.smooth),
            "written": cpu(self.written),
            "complete": sorted(self._complete),
            "stale_reads": dict(self.stale_reads),
            "unwritten_reads": dict(self.unwritten_reads),
            "max_stale_age": self.max_stale_age,
            "max_fresh_age": self.max_fresh_age,
            "keep": None if self.keep is None else self.keep.clone(),
        }

    def load_state_dict(self, state: Dict[str, object]) -> None:
        """Restore ``state_dict()``'s values into buffers of the same layers and kept nodes (a
        state with a row per node, as saved before histories kept some nodes only, gives the
        kept nodes' rows)."""
        saved_keep = state.get("keep")
        if saved_keep is not None and (
            self.keep is None or not torch.equal(saved_keep, self.keep)  # type: ignore[arg-type]
        ):
            raise ValueError("the saved history keeps the rows of other nodes than this one")
        for name in ("buf", "smooth", "written"):
            mine, saved = getattr(self, name), state[name]
            if sorted(mine) != sorted(saved):  # type: ignore[arg-type]
                raise ValueError(f"history {name} holds layers {sorted(saved)}, not {sorted(mine)}")  # type: ignore[arg-type]
            for layer, t in mine.items():
                src = saved[layer]  # type: ignore[index]
                if self.keep is not None and src.shape[0] == self.num_nodes != t.shape[0]:
                    src = src[self.keep]  # saved with a row per node: the kept nodes' rows
                if src.shape != t.shape:
                    raise ValueError(
                        f"history {name} of layer {layer} has shape {tuple(src.shape)}, this "
                        f"history's {tuple(t.shape)}"
                    )
                t.copy_(src)
        self._complete = set(state["complete"])  # type: ignore[arg-type]
        self.stale_reads.clear()
        self.stale_reads.update(state["stale_reads"])  # type: ignore[arg-type]
        self.unwritten_reads.clear()
        self.unwritten_reads.update(state["unwritten_reads"])  # type: ignore[arg-type]
        self.max_stale_age = int(state["max_stale_age"])  # type: ignore[arg-type]
        self.max_fresh_age = int(state["max_fresh_age"])  # type: ignore[arg-type]

    def write(
        self,
        layer: int,
        ids: torch.Tensor,
        values: torch.Tensor,
        epoch: int,
        rows: Optional[torch.Tensor] = None,
    ) -> None:
        """Store ``values`` (detached) as the layer-``layer`` input of nodes ``ids``.

        ``rows``: int64 positions into ``values``, one per id: row ``rows[i]`` is the value of
        ``ids[i]`` (a subset of a chunk's rows, without copying them out first); None: row i.
        """
        buf = self._buf(layer)
        if self.validate:
            ids = check_index("ids", ids, self.num_nodes, device=None)
        want = ids.numel() if rows is None else values.shape[0]
        if values.dim() != 2 or values.shape != (want, buf.shape[1]):
            raise ValueError(
                f"values must have shape [{want}, {buf.shape[1]}], got {tuple(values.shape)}"
            )
        if rows is not None and (self.validate or rows.device.type == "cpu"):
            # (the numba pass would read outside ``values``; torch's CUDA indexing refuses a bad
            # position itself, and a check there would wait for the GPU on every call)
            rows = self._positions("rows", rows, values.shape[0], "rows")
        if rows is not None:
            if rows.numel() != ids.numel():
                raise ValueError(f"rows has {rows.numel()} positions for {ids.numel()} ids")
        v = values.detach()
        written = self.written[layer]
        smooth = self.smooth.get(layer)
        checked = self.validate
        if self.slot_of is not None:  # node ids -> buffer rows (in range by construction)
            ids, checked = self._slots("ids", ids, checked), True
        if _fused_write_applies(buf, ids, v):
            # One pass over the rows instead of four indexed torch passes (0.77 ms for 16k rows
            # of 16 floats on the 2-core VM, the pass 0.17-0.53 ms).
            if not checked:  # the id check still: the numba pass itself checks nothing
                ids = check_index("ids", ids, self.num_nodes, device=None)
            ids_np = ids.numpy()
            kind = buf.numpy().dtype.type
            mom = kind(self.momentum if smooth is not None else 0.0)
            _write_rows(
                buf.numpy(),
                smooth.numpy() if smooth is not None else buf.numpy(),
                written.numpy(),
                ids_np,
                np.ascontiguousarray(v.numpy()),
                ids_np[:0] if rows is None else rows.numpy(),
                int(epoch),
                mom,
                kind(1) - mom,  # torch.lerp's 1 - weight, in the rows' dtype
                smooth is not None,
            )
            return
        if rows is not None:
            v = v.index_select(0, rows.to(v.device))
        # index_select / index_copy_ / index_fill_: about twice as fast as tensor[ids] forms.
        if smooth is not None:
            # m * old + (1 - m) * new, one pass; rows never written before start at new
            new = torch.lerp(v, smooth.index_select(0, ids), self.momentum)
            if layer not in self._complete:
                first = written.index_select(0, ids) < 0
                new = torch.where(first.unsqueeze(1), v, new)
            smooth.index_copy_(0, ids, new)
        buf.index_copy_(0, ids, v)
        written.index_fill_(0, ids, epoch)
        if smooth is not None and layer not in self._complete:
            if bool((written >= 0).all()):
                self._complete.add(layer)  # every row written: no more first writes to check

    def read(
        self,
        layer: int,
        fresh: torch.Tensor,
        stale: torch.Tensor,
        epoch: int,
        stale_edges: int = 0,
        *,
        fresh_at: Optional[torch.Tensor] = None,
        stale_at: Optional[torch.Tensor] = None,
        head: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Rows of ``fresh`` then ``stale`` nodes; ``stale_edges`` edges read the stale rows.

        ``head`` ([h, dim], the buffers' dtype and device): its rows (detached) come first in
        the output, the history rows after them (``fresh_at``/``stale_at`` count from there):
        a chunk's source table (own rows, then history run) assembled in one allocation and
        one pass over the history rows, instead of a read and a ``torch.cat`` that copies the
        history rows again (``after_rows`` gives it a gradient).

        Stale rows come from the smoothed buffer when ``momentum`` is set. ``fresh_at`` and
        ``stale_at`` (int64, together a permutation of the output's rows) place the rows
        instead: fresh row i at ``fresh_at[i]``, stale row i at ``stale_at[i]`` (a chunk
        block's history run, whose layout does not change with the processing order).
        """
        if (fresh_at is None) != (stale_at is None):
            raise ValueError("give both fresh_at and stale_at, or neither")
        if fresh_at is not None and (
            fresh_at.numel() != fresh.numel() or stale_at.numel() != stale.numel()
        ):
            raise ValueError(
                f"fresh_at/stale_at hold {fresh_at.numel()}/{stale_at.numel()} positions for "
                f"{fresh.numel()}/{stale.numel()} rows"
            )
        buf = self._buf(layer)
        if self.validate:
            fresh = check_index("fresh", fresh, self.num_nodes, device=None)
            stale = check_index("stale", stale, self.num_nodes, device=None)
        written = self.written[layer]
        src = self.smooth[layer] if self.momentum is not None else buf
        checked = self.validate
        if self.slot_of is not None:  # node ids -> buffer rows (in range by construction)
            fresh = self._slots("fresh", fresh, checked)
            stale = self._slots("stale", stale, checked)
            checked = True
        nf = fresh.numel()
        total = nf + stale.numel()
        nh = 0
        if head is not None:
            if head.dim() != 2 or head.shape[1] != buf.shape[1]:
                raise ValueError(
                    f"head must have shape [h, {buf.shape[1]}], got {tuple(head.shape)}"
                )
            if head.dtype != buf.dtype or head.device != buf.device:
                raise ValueError(
                    f"head must be {buf.dtype} on {buf.device} as the history, got {head.dtype} "
                    f"on {head.device}"
                )
            nh = head.shape[0]
        full = buf.new_empty((nh + total, buf.shape[1]))
        if nh:
            full[:nh].copy_(head.detach())
        out = full[nh:]
        fused = _fused_read_applies(buf, fresh, stale) and (
            fresh_at is None or _fused_read_applies(buf, fresh_at, stale_at)
        )
        if fused:
            # Rows and read statistics in one pass (four indexed torch passes otherwise).
            if not checked:  # the id checks still: the numba pass checks nothing
                fresh = check_index("fresh", fresh, self.num_nodes, device=None)
                stale = check_index("stale", stale, self.num_nodes, device=None)
            at = (_NO_IDS, _NO_IDS)
            if fresh_at is not None:  # (the torch path's index_copy_ checks its own)
                at = (self._positions("fresh_at", fresh_at, total, "nodes"),
                      self._positions("stale_at", stale_at, total, "nodes"))  # fmt: skip
            fresh_min, unwritten, stale_min, repeated = _read_rows(
                buf.numpy(), src.numpy(), written.numpy(), fresh.numpy(), stale.numpy(),
                at[0].numpy(), at[1].numpy(), int(epoch), out.numpy(),
            )  # fmt: skip
            if repeated:
                raise ValueError("fresh_at and stale_at must name every output row once")
        else:
            if fresh_at is not None:
                both = torch.cat([fresh_at, stale_at])
                if self.validate and total and int(torch.bincount(both, minlength=total).max()) > 1:
                    raise ValueError("fresh_at and stale_at must name every output row once")
                out.index_copy_(0, fresh_at, torch.index_select(buf, 0, fresh))
                out.index_copy_(0, stale_at, torch.index_select(src, 0, stale))
            else:
                torch.index_select(buf, 0, fresh, out=out[:nf])
                torch.index_select(src, 0, stale, out=out[nf:])
            fresh_min = int(written.index_select(0, fresh).min()) if nf else epoch
            unwritten, stale_min = 0, epoch
            if stale.numel():
                w = written.index_select(0, stale)
                unwritten = int((w < 0).sum())
                stale_min = int(w.masked_fill(w < 0, epoch).min())
        self.max_fresh_age = max(self.max_fresh_age, epoch - fresh_min)
        if stale.numel():
            self.unwritten_reads[epoch] += unwritten
        self.max_stale_age = max(self.max_stale_age, epoch - stale_min)
        self.stale_reads[epoch] += int(stale_edges)
        return full

    def _buf(self, layer: int) -> torch.Tensor:
        buf = self.buf.get(int(layer))
        if buf is None:
            raise KeyError(f"this history keeps layers {self.layers}, not layer {layer}")
        return buf


def _memo(cache: Dict[Any, Tuple[Any, torch.Tensor]], key: Any, t: torch.Tensor, build) -> Any:
    """``cache[key]``'s value while ``t`` is the very tensor it was built for, unchanged since
    (identity and version, ``gnnsys._tokens``); else ``build()``, stored. A full cache is
    emptied first (``_SLOT_CACHE_SIZE`` entries: a group's chunk tensors fit many times)."""
    hit = cache.get(key)
    if hit is not None and token_matches(hit[0], t):
        return hit[1]
    token = tensors_token(t)
    value = build()
    if len(cache) >= _SLOT_CACHE_SIZE:
        cache.clear()
    cache[key] = (token, value)
    return value


def _fused_write_applies(buf: torch.Tensor, ids: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether ``write`` can take the numba pass: CPU tensors, float32/64 rows, int64 ids."""
    return (
        buf.device.type == "cpu"
        and v.device.type == "cpu"
        and ids.device.type == "cpu"
        and buf.dtype in _FUSED_DTYPES
        and v.dtype == buf.dtype
        and ids.dtype == torch.int64
        and not v.requires_grad
    )


def _fused_read_applies(buf: torch.Tensor, fresh: torch.Tensor, stale: torch.Tensor) -> bool:
    """Whether ``read`` can take the numba pass: CPU float32/64 rows, CPU int64 ids."""
    return (
        buf.device.type == "cpu"
        and buf.dtype in _FUSED_DTYPES
        and all(t.device.type == "cpu" and t.dtype == torch.int64 for t in (fresh, stale))
    )


@njit(nogil=True, cache=True)
def _read_rows(buf, src, written, fresh, stale, fresh_at, stale_at, epoch, out):  # pragma: no cover
    """``out = cat(buf[fresh], src[stale])`` (with ``fresh_at``/``stale_at`` non-empty: fresh
    row i at ``out[fresh_at[i]]``, stale row i at ``out[stale_at[i]]``) and the read statistics:
    the oldest write epoch among ``fresh`` (``epoch`` if none), the count of never-written
    ``stale`` rows, the oldest write epoch among the written ``stale`` rows (``epoch`` if
    none), and whether a position came twice (some row of ``out`` then was never written).
    Ids and positions must be in range (``History.read`` checks them first)."""
    nf = fresh.shape[0]
    ns = stale.shape[0]
    d = buf.shape[1]
    placed = fresh_at.shape[0] + stale_at.shape[0] > 0
    seen = np.zeros(nf + ns if placed else 0, np.bool_)
    repeated = False
    fresh_min = epoch
    for i in range(nf):
        if i + _AHEAD < nf:
            prefetch2d(buf, fresh[i + _AHEAD], 0)
        r = fresh[i]
        o = i
        if placed:
            o = fresh_at[i]
            repeated |= seen[o]
            seen[o] = True
        fresh_min = min(fresh_min, written[r])
        for j in range(d):
            out[o, j] = buf[r, j]
    unwritten = 0
    stale_min = epoch
    for i in range(ns):
        if i + _AHEAD < ns:
            prefetch2d(src, stale[i + _AHEAD], 0)
        r = stale[i]
        o = nf + i
        if placed:
            o = stale_at[i]
            repeated |= seen[o]
            seen[o] = True
        w = written[r]
        if w < 0:
            unwritten += 1
        else:
            stale_min = min(stale_min, w)
        for j in range(d):
            out[o, j] = src[r, j]
    return fresh_min, unwritten, stale_min, repeated


@njit(nogil=True, cache=True)
def _write_rows(
    buf, smooth, written, ids, v, rows, epoch, momentum, rest, smoothing
):  # pragma: no cover
    """``buf[ids] = v[rows]`` (``rows`` empty: ``v``); ``written[ids] = epoch``; with
    ``smoothing``, ``smooth[ids]`` becomes ``lerp(v[rows], smooth[ids], momentum)`` (torch.lerp's
    formula, in the rows' dtype) or ``v[rows]`` for a row never written. Ids and rows must be in
    range (``History`` checks them first)."""
    n = ids.shape[0]
    d = v.shape[1]
    subset = rows.shape[0] > 0
    for i in range(n):
        if smoothing and i + _AHEAD < n:
            prefetch2d(smooth, ids[i + _AHEAD], 0)
        r = ids[i]
        s = rows[i] if subset else i
        if smoothing:
            if written[r] < 0:
                for j in range(d):
                    smooth[r, j] = v[s, j]
            elif momentum < 0.5:
                for j in range(d):
                    smooth[r, j] = v[s, j] + momentum * (smooth[r, j] - v[s, j])
            else:
                for j in range(d):
                    diff = smooth[r, j] - v[s, j]
                    smooth[r, j] = smooth[r, j] - diff * rest
        for j in range(d):
            buf[r, j] = v[s, j]
        written[r] = epoch


class FreshGrads:
    """Per-layer gradient accumulators ``[num_nodes, dim]`` for rows read fresh this epoch.

    A chunk's fresh reads are made leaves (``leaf``); after its backward, ``add`` sums their
    gradients into the rows of the chunks that wrote them; when such a chunk runs its backward
    later (GPipe order), ``inject`` has added those rows to the gradient of its layer input.
    Buffers are allocated on first use and zeroed by ``reset`` once per epoch.

    Example:
        >>> g = FreshGrads(num_nodes=4, device=None)
        >>> h = torch.ones(2, 3, requires_grad=True)
        >>> out = g.inject(0, h, torch.tensor([0, 1]))     # chunk c' (rows 0, 1), forward
        >>> g.add(0, torch.tensor([1]), torch.full((1, 3), 2.0))   # after chunk c's backward
        >>> out.sum().backward(); h.grad[1]
        tensor([3., 3., 3.])
    """

    def __init__(self, num_nodes: int, device: Optional[torch.device] = None) -> None:
        self.num_nodes = int(num_nodes)
        self.device = device
        self.buf: Dict[int, torch.Tensor] = {}

    def reset(self) -> None:
        """Zero every accumulator (start of an epoch)."""
        for b in self.buf.values():
            b.zero_()

    def leaf(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows`` (fresh history values) as a fresh leaf that records its gradient."""
        return rows.detach().requires_grad_(True)

    def add(self, layer: int, ids: torch.Tensor, grad: Optional[torch.Tensor]) -> None:
        """Accumulate ``grad`` (rows of ``ids``) into layer ``layer``'s buffer."""
        if grad is None:
            return
        ids = check_index("ids", ids, self.num_nodes, device=None)
        if grad.dim() != 2 or grad.shape[0] != ids.numel():
            raise ValueError(f"grad must have shape [{ids.numel()}, dim], got {tuple(grad.shape)}")
        self._buf(layer, grad.shape[1], grad.dtype).index_add_(0, ids, grad.detach())

    def inject(self, layer: int, h: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """``h`` (the layer input of nodes ``ids``), whose backward also adds the rows of
        ``ids`` accumulated for ``layer`` by the time it runs."""
        ids = check_index("ids", ids, self.num_nodes, device=None)
        if h.dim() != 2 or h.shape[0] != ids.numel():
            raise ValueError(f"h must have shape [{ids.numel()}, dim], got {tuple(h.shape)}")
        return _InjectGrad.apply(h, self, int(layer), ids)

    def _buf(self, layer: int, dim: int, dtype: torch.dtype) -> torch.Tensor:
        b = self.buf.get(layer)
        if b is None:
            b = torch.zeros(self.num_nodes, dim, dtype=dtype, device=self.device)
            self.buf[layer] = b
        elif b.shape[1] != dim:
            raise ValueError(f"layer {layer} gradients have width {b.shape[1]}, got {dim}")
        return b


def after_rows(head: torch.Tensor, read: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``read(head)``, a new tensor whose first rows are ``head``'s (``History.read`` with
    ``head=``), as ``torch.cat([head, rows])`` is to autograd: the gradient of its first rows
    flows to ``head``, the rest (history values, constants) gets none.

    Example:
        >>> src = after_rows(h, lambda head: history.read(3, fresh, stale, epoch, head=head))
    """
    return _AfterRows.apply(head, read)


class _AfterRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, head, read):
        ctx.rows = head.shape[0]
        return read(head)

    @staticmethod
    def backward(ctx, grad):
        return grad[: ctx.rows], None


class _InjectGrad(torch.autograd.Function):
    """Identity forward; backward adds the accumulated fresh-read gradient of the rows."""

    @staticmethod
    def forward(ctx, h, grads, layer, ids):
        ctx.grads, ctx.layer = grads, layer
        ctx.save_for_backward(ids)
        return h.view_as(h)

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved_tensors
        b = ctx.grads.buf.get(ctx.layer)
        if b is not None:
            grad = grad + b[ids].to(grad.dtype)
        return grad, None, None, None

"""Vertex partitioning for the pipeline, hybrid and graph-parallel trainers.

``partition`` maps every vertex to a part. It symmetrises and dedupes the graph first (METIS and
the BFS fallback need an undirected simple graph), then uses pymetis when it imports (the
``partition`` extra), else a BFS order cut into balanced contiguous pieces (neighbours land in
the same part, so the cut stays small), or a seeded random balanced assignment on request.
The result reports the edge cut and the halo (the outside nodes each part reads), the numbers
that decide graph-parallel communication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch
from numba import njit

from gnnsys._checks import check_choice, check_index
from gnnsys.graph import Graph
from gnnsys.pipeline_parallel.config import check_int

METHODS = ("auto", "metis", "bfs", "random")
BALANCE_TOLERANCE = 1.03  # METIS's default k-way imbalance (ufactor 30), per balanced class


@dataclass
class Partition:
    """A vertex -> part map with its quality numbers.

    Attributes:
        part: int64 [N], the part of each vertex (0..num_parts-1).
        num_parts: number of parts (parts may be empty when num_parts > N).
        method: the partitioner actually used: "metis", "bfs" or "random".
        edge_cut: undirected edges (after symmetrising and deduping, self loops dropped) whose
            endpoints lie in different parts.
        part_sizes: vertices per part.
        halo_sizes: per part, the distinct vertices outside it with an edge into it (the rows a
            graph-parallel rank receives at every layer).

    Example:
        >>> p = partition(graph, 4)
        >>> p.method, p.edge_cut, p.total_halo
    """

    part: torch.Tensor
    num_parts: int
    method: str
    edge_cut: int
    part_sizes: List[int]
    halo_sizes: List[int]

    @property
    def total_halo(self) -> int:
        """Sum of the halo sizes: rows exchanged per layer by graph parallelism."""
        return int(sum(self.halo_sizes))

    def summary(self) -> dict:
        """The quality numbers as a JSON-ready dict."""
        return {
            "method": self.method,
            "num_parts": self.num_parts,
            "edge_cut": self.edge_cut,
            "part_sizes": list(self.part_sizes),
            "halo_sizes": list(self.halo_sizes),
            "total_halo": self.total_halo,
        }


def partition(
    graph: Graph,
    num_parts: int,
    *,
    method: str = "auto",
    seed: int = 0,
    recursive: Optional[bool] = None,
    vertex_weights: Optional[torch.Tensor] = None,
    balance_types: Optional[torch.Tensor] = None,
) -> Partition:
    """Split the vertices of ``graph`` into ``num_parts`` parts.

    ``method``: "auto" (pymetis if installed, else "bfs"), "metis", "bfs" (a BFS order from
    seeded start vertices, cut into balanced contiguous pieces) or "random" (seeded, balanced).
    One part puts every vertex in part 0; more parts than vertices gives one vertex per part and
    leaves the rest empty. The same seed gives the same parts. METIS only: ``recursive``
    (recursive bisection instead of k-way, as PyG's ``ClusterData(recursive=True)`` and DGL's
    ``mode="recursive"``; None, the default: pymetis's choice, recursive up to 8 parts and
    k-way above) and ``vertex_weights`` (integers >= 0, [N]: parts balance their sums instead
    of their vertex counts, e.g. in-degrees to balance edges; one constraint: pymetis has no
    multi-constraint weights); the other methods ignore them. ``balance_types`` (integers or
    bools, [N]: a class per vertex, e.g. a node type or a training mask, as DGL's
    ``balance_ntypes``), any method: every class is then spread evenly, no part holding more
    than 3% over its even share of a class (``balance_classes``).

    Example:
        >>> g = Graph.from_edge_index(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]]))
        >>> p = partition(g, 2, method="bfs")
        >>> p.part.tolist(), p.edge_cut
        ([0, 0, 1, 1], 2)
    """
    part, method, sym = assign_parts(graph, num_parts, method=method, seed=seed,
                                     recursive=recursive, vertex_weights=vertex_weights,
                                     balance_types=balance_types)  # fmt: skip
    return describe(graph, part, int(num_parts), method=method, sym=sym)


def assign_parts(
    graph: Graph,
    num_parts: int,
    *,
    method: str = "auto",
    seed: int = 0,
    recursive: Optional[bool] = None,
    vertex_weights: Optional[torch.Tensor] = None,
    balance_types: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, str, Optional[Graph]]:
    """``partition``'s vertex -> part map alone: (part, the method used, the symmetrised graph
    or None). Only "metis" and "bfs" build the symmetrised copy of the edges; "random" and the
    trivial cases (one part, a part per vertex) read nothing but the vertex count, so they
    serve graphs bigger than RAM.

    Example:
        >>> part, used, _ = assign_parts(g, 2, method="random")
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a gnnsys.Graph, got {type(graph).__name__}")
    check_int("num_parts", num_parts, 1)
    check_choice("method", method, METHODS)
    num_parts = int(num_parts)
    n = graph.num_nodes
    if method == "auto":
        method = "metis" if _has_pymetis() else "bfs"
    if method == "metis" and not _has_pymetis():
        raise ValueError("method='metis' needs pymetis (pip install 'gnnsys[partition]')")
    if vertex_weights is not None:
        vertex_weights = _check_weights(vertex_weights, n)
    classes = None if balance_types is None else _check_classes(balance_types, n)
    if num_parts == 1 or num_parts >= n:
        # One part, or at least one part per vertex: nothing to optimise.
        part = torch.arange(n, dtype=torch.int64) if num_parts > 1 else torch.zeros(n).long()
        return part, "trivial", None
    sym = None if method == "random" else symmetrize(graph)
    if method == "random":
        part = _random_parts(n, num_parts, seed)
    elif method == "metis":
        part = _metis(sym, num_parts, seed, recursive, vertex_weights)
    else:
        part = _bfs_parts(sym, num_parts, seed)
    if classes is not None:  # (inputs checked above, before the partition's work)
        part = _balance_checked(sym, part, num_parts, classes, vertex_weights)
    return part, method, sym


def nested_partition(
    graph: Graph, num_groups: int, num_chunks: int, *, method: str = "auto", seed: int = 0
) -> Tuple[torch.Tensor, torch.Tensor, Partition]:
    """Two-level split for hybrid training: groups first, then chunks inside each group.

    Returns ``(chunk_of, owner, groups)``: the chunk (0..num_chunks-1) and the group
    (0..num_groups-1) of every vertex, and the group-level ``Partition``. Each group's induced
    subgraph is partitioned on its own, so a chunk stays local inside its group. With one group
    the chunks are ``partition(graph, num_chunks)``'s, as in a plain GNNPipe run.

    Example:
        >>> chunk_of, owner, groups = nested_partition(g, 2, 4, method="bfs")
    """
    groups = partition(graph, num_groups, method=method, seed=seed)
    if num_groups == 1:  # the same chunks as a plain GNNPipe run with this seed
        return partition(graph, num_chunks, method=method, seed=seed).part, groups.part, groups
    chunk_of = torch.zeros(graph.num_nodes, dtype=torch.int64)
    for g in range(num_groups):
        nodes = torch.nonzero(groups.part == g).flatten()
        if nodes.numel() == 0:
            continue
        sub = induced_subgraph(graph, nodes)
        chunk_of[nodes] = partition(sub, num_chunks, method=method, seed=seed).part
    return chunk_of, groups.part, groups


def induced_subgraph(graph: Graph, nodes: torch.Tensor) -> Graph:
    """The subgraph on ``nodes`` (relabelled 0..len-1 in the given order).

    Example:
        >>> induced_subgraph(g, torch.tensor([1, 2])).num_edges
        1
    """
    nodes = check_index("nodes", nodes, graph.num_nodes)
    local = torch.full((graph.num_nodes,), -1, dtype=torch.int64)
    local[nodes] = torch.arange(nodes.numel())
    src, dst = _edges(graph)
    keep = (local[src] >= 0) & (local[dst] >= 0)
    ei = torch.stack([local[src[keep]], local[dst[keep]]])
    return Graph.from_edge_index(ei, nodes.numel())


def describe(
    graph: Graph, part: torch.Tensor, num_parts: int, *, method: str = "given", sym=None
) -> Partition:
    """Wrap an existing vertex -> part map, computing its edge cut and halo sizes.

    Example:
        >>> describe(g, torch.tensor([0, 0, 1, 1]), 2).halo_sizes
        [1, 1]
    """
    part = check_index("part", part, num_parts)
    if part.numel() != graph.num_nodes:
        raise ValueError(f"part has {part.numel()} entries for {graph.num_nodes} vertices")
    if sym is None:
        sym = symmetrize(graph)
    src, dst = _edges(sym)
    cut = int((part[src] != part[dst]).sum()) // 2
    sizes = torch.bincount(part, minlength=num_parts).tolist()
    return Partition(
        part=part,
        num_parts=num_parts,
        method=method,
        edge_cut=cut,
        part_sizes=sizes,
        halo_sizes=halo_sizes(graph, part, num_parts).tolist(),
    )


def halo_sizes(graph: Graph, part: torch.Tensor, num_parts: int) -> torch.Tensor:
    """int64 [num_parts]: distinct vertices outside each part with an edge into it.

    Example:
        >>> halo_sizes(g, torch.tensor([0, 0, 1, 1]), 2).tolist()
        [1, 1]
    """
    src, dst = _edges(graph)
    ps, pd = part[src], part[dst]
    cross = ps != pd
    key = torch.unique(src[cross] * num_parts + pd[cross])
    return torch.bincount(key % num_parts, minlength=num_parts)


def symmetrize(graph: Graph) -> Graph:
    """The undirected simple version of ``graph``: both directions, no duplicates, no self loops.

    Example:
        >>> symmetrize(Graph.from_edge_index(torch.tensor([[0, 0], [1, 1]]))).num_edges
        2
    """
    return Graph.from_edge_index(
        graph.to_edge_index(), graph.num_nodes, undirected=True, dedupe=True, self_loops="remove"
    )


def balance_classes(
    sym: Optional[Graph],
    part: torch.Tensor,
    num_parts: int,
    classes: torch.Tensor,
    *,
    vertex_weights: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``part`` with every class of vertices spread evenly over the parts: no part keeps more
    than ``max(ceil(count / num_parts), floor(BALANCE_TOLERANCE * count / num_parts))``
    vertices of a class.

    What METIS's multi-constraint weights do (one constraint per class, DGL's
    ``balance_ntypes``), which pymetis cannot pass on: here a greedy pass after the partition
    moves exactly the surplus of each over-full part, each vertex to the part with room for
    its class that holds most of its neighbours (else the part with the most room), best gain
    first (neighbours there minus neighbours left behind), re-ranked as its neighbours move, so
    connected vertices leave together and the cut grows little. With ``vertex_weights`` a move
    also keeps the target's weight sum within the same tolerance of the mean where it can.
    ``sym``: the symmetrised graph (None: no neighbours known, moves go where there is most
    room). ``classes``: integers or bools [N], a class per vertex. Serial and deterministic.

    Example:
        >>> part = balance_classes(symmetrize(g), part, 4, train_mask)
    """
    check_int("num_parts", num_parts, 1)
    part = check_index("part", part, num_parts)
    n = part.numel()
    if sym is not None and sym.num_nodes != n:
        raise ValueError(f"part has {n} entries for the graph's {sym.num_nodes} vertices")
    if vertex_weights is not None:
        vertex_weights = _check_weights(vertex_weights, n)
    return _balance_checked(sym, part, num_parts, _check_classes(classes, n), vertex_weights)


def _balance_checked(
    sym: Optional[Graph],
    part: torch.Tensor,
    num_parts: int,
    classes: torch.Tensor,
    vertex_weights: Optional[torch.Tensor],
) -> torch.Tensor:
    """``balance_classes`` on checked inputs: int64 class ids 0..C-1 (``_check_classes``),
    int64 weights (``_check_weights``) or None."""
    cls = classes.numpy()
    nc = int(cls.max()) + 1 if cls.size else 0
    totals = np.bincount(cls, minlength=nc)
    cap = np.maximum(-(-totals // num_parts), np.floor(BALANCE_TOLERANCE * totals / num_parts))
    if vertex_weights is not None:
        w = vertex_weights.numpy()
        total_w = int(w.sum())
        wcap = max(-(-total_w // num_parts), int(BALANCE_TOLERANCE * total_w / num_parts))
    else:
        w, wcap = np.empty(0, np.int64), 0
    if sym is None:
        indptr, indices = np.zeros(0, np.int64), np.zeros(0, np.int64)
    else:
        indptr, indices = sym.indptr.numpy(), sym.indices.numpy()
    members = np.argsort(cls, kind="stable").astype(np.int64)  # class by class, ascending ids
    starts = np.zeros(nc + 1, np.int64)
    np.cumsum(totals, out=starts[1:])
    out = part.numpy().astype(np.int64, copy=True)
    _rebalance(indptr, indices, out, cls, members, starts, int(num_parts), cap.astype(np.int64),
               w, wcap)  # fmt: skip
    return torch.from_numpy(out)


# ---------------------------------------------------------------------- methods
def _check_weights(w: object, n: int) -> torch.Tensor:
    """``vertex_weights`` as int64 [n] on the CPU, or a clear error."""
    t = torch.as_tensor(w)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"vertex_weights must hold integers, got dtype {t.dtype}")
    if tuple(t.shape) != (n,):
        raise ValueError(f"vertex_weights must be [{n}] (one per vertex), got {tuple(t.shape)}")
    t = t.to("cpu", torch.int64)
    if n and int(t.min()) < 0:
        raise ValueError(f"vertex_weights must be >= 0, got {int(t.min())}")
    return t


def _check_classes(c: object, n: int) -> torch.Tensor:
    """``balance_types`` as int64 class ids 0..C-1 [n] (classes numbered in ascending value
    order), or a clear error."""
    t = torch.as_tensor(c)
    if t.dtype.is_floating_point or t.dtype.is_complex:
        raise TypeError(f"balance_types must hold integers or bools, got dtype {t.dtype}")
    if tuple(t.shape) != (n,):
        raise ValueError(f"balance_types must be [{n}] (one per vertex), got {tuple(t.shape)}")
    return torch.unique(t.to("cpu", torch.int64), return_inverse=True)[1].reshape(n)


def _has_pymetis() -> bool:
    try:
        import pymetis  # noqa: F401
    except ImportError:
        return False
    return True


def _metis(
    sym: Graph,
    num_parts: int,
    seed: int,
    recursive: Optional[bool] = None,
    vertex_weights: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    import pymetis

    xadj = sym.indptr.numpy().astype(np.int64)
    adjncy = sym.indices.numpy().astype(np.int64)
    opts = pymetis.Options(seed=int(seed) & 0x7FFFFFFF)
    kw = {"options": opts, "recursive": recursive}
    if vertex_weights is not None:
        kw["vweights"] = vertex_weights.numpy().astype(np.int64)
    if hasattr(pymetis, "CSRAdjacency"):  # pymetis >= 2025.2; older ones take xadj/adjncy
        adj = pymetis.CSRAdjacency(adj_starts=xadj, adjacent=adjncy)
        _, membership = pymetis.part_graph(num_parts, adjacency=adj, **kw)
    else:
        _, membership = pymetis.part_graph(num_parts, xadj=xadj, adjncy=adjncy, **kw)
    return torch.as_tensor(np.asarray(membership, dtype=np.int64))


def _bfs_parts(sym: Graph, num_parts: int, seed: int) -> torch.Tensor:
    n = sym.num_nodes
    starts = _permutation(n, seed).numpy()
    order = _bfs_order(sym.indptr.numpy(), sym.indices.numpy(), starts)
    part = np.empty(n, dtype=np.int64)
    # The vertex at BFS position i goes to part floor(i * k / n): balanced contiguous pieces.
    part[order] = (np.arange(n, dtype=np.int64) * num_parts) // n
    return torch.from_numpy(part)


def _random_parts(n: int, num_parts: int, seed: int) -> torch.Tensor:
    part = torch.empty(n, dtype=torch.int64)
    part[_permutation(n, seed)] = torch.arange(n, dtype=torch.int64) % num_parts
    return part


def _permutation(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=gen)


@njit(nogil=True, cache=True)
def _bfs_order(indptr, indices, starts):
    # Breadth-first order over all components; a new component starts at the next unvisited
    # vertex of ``starts`` (a seeded permutation), neighbours are visited in CSC order.
    n = indptr.shape[0] - 1
    seen = np.zeros(n, dtype=np.bool_)
    order = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    for s in range(n):
        root = starts[s]
        if seen[root]:
            continue
        seen[root] = True
        order[tail] = root
        tail += 1
        while head < tail:
            v = order[head]
            head += 1
            for e in range(indptr[v], indptr[v + 1]):
                u = indices[e]
                if not seen[u]:
                    seen[u] = True
                    order[tail] = u
                    tail += 1
    return order


def _edges(graph: Graph):
    ei = graph.to_edge_index()
    return ei[0], ei[1]


@njit(nogil=True, cache=True)
def _rebalance(indptr, indices, part, cls, members, starts, k, cap, w, wcap):
    # balance_classes' greedy pass, in place on ``part``. Classes are independent (a move
    # changes only its own class's counts, and a part that has room never fills past its cap),
    # so each is balanced in turn, with its own per-part counts (memory O(N + k) whatever the
    # number of classes; ``members[starts[c]:starts[c + 1]]`` are class c's vertices,
    # ascending): its vertices in over-full parts wait in a max-heap by the gain of their best
    # move (ties: lower vertex id); the top one moves if its gain is still current (else it
    # goes back with the new one), and its neighbours of the class that are still in over-full
    # parts are queued again with theirs, which may have risen (a neighbour now sits in the
    # target): surplus vertices leave together, as a group.
    n = part.shape[0]
    load = np.zeros(k, np.int64)
    weighted = w.shape[0] > 0
    if weighted:
        for v in range(n):
            load[part[v]] += w[v]
    counts = np.zeros(k, np.int64)
    conn = np.zeros(k, np.int64)
    touched = np.empty(k, np.int64)
    hg = np.empty(64, np.int64)
    hv = np.empty(64, np.int64)
    for c in range(starts.shape[0] - 1):
        counts[:] = 0
        for i in range(starts[c], starts[c + 1]):
            counts[part[members[i]]] += 1
        capc = cap[c]
        size = 0
        for i in range(starts[c], starts[c + 1]):
            v = members[i]
            if counts[part[v]] > capc:
                g = _best_move(indptr, indices, part, v, counts, capc, load, w, wcap, conn,
                               touched, False)[1]  # fmt: skip
                hg, hv, size = _heap_push(hg, hv, size, g, v)
        while size > 0:
            g = hg[0]
            v = hv[0]
            size = _heap_pop(hg, hv, size)
            p = part[v]
            if counts[p] <= capc:
                continue  # moved already, or its part is no longer over-full
            q, cur = _best_move(indptr, indices, part, v, counts, capc, load, w, wcap, conn,
                                touched, True)  # fmt: skip
            if cur < g:  # its gain fell since it was queued
                hg, hv, size = _heap_push(hg, hv, size, cur, v)
                continue
            part[v] = q
            counts[p] -= 1
            counts[q] += 1
            if weighted:
                load[p] -= w[v]
                load[q] += w[v]
            if indptr.shape[0] > 0:
                for e in range(indptr[v], indptr[v + 1]):
                    u = indices[e]
                    if cls[u] == c and counts[part[u]] > capc:
                        gu = _best_move(indptr, indices, part, u, counts, capc, load, w, wcap,
                                        conn, touched, False)[1]  # fmt: skip
                        hg, hv, size = _heap_push(hg, hv, size, gu, u)


@njit(nogil=True, cache=True, inline="always")
def _heap_before(hg, hv, a, b):
    # max-heap order on (gain, then lower vertex id)
    return hg[a] > hg[b] or (hg[a] == hg[b] and hv[a] < hv[b])


@njit(nogil=True, cache=True)
def _heap_push(hg, hv, size, g, v):
    if size == hg.shape[0]:
        hg = np.concatenate((hg, np.empty(size, np.int64)))
        hv = np.concatenate((hv, np.empty(size, np.int64)))
    i = size
    hg[i] = g
    hv[i] = v
    while i > 0:
        up = (i - 1) // 2
        if not _heap_before(hg, hv, i, up):
            break
        hg[i], hg[up] = hg[up], hg[i]
        hv[i], hv[up] = hv[up], hv[i]
        i = up
    return hg, hv, size + 1


@njit(nogil=True, cache=True)
def _heap_pop(hg, hv, size):
    # drop the top; returns the new size
    size -= 1
    hg[0] = hg[size]
    hv[0] = hv[size]
    i = 0
    while True:
        a = 2 * i + 1
        if a >= size:
            break
        if a + 1 < size and _heap_before(hg, hv, a + 1, a):
            a += 1
        if not _heap_before(hg, hv, a, i):
            break
        hg[i], hg[a] = hg[a], hg[i]
        hv[i], hv[a] = hv[a], hv[i]
        i = a
    return size


@njit(nogil=True, cache=True)
def _best_move(indptr, indices, part, v, counts, cap, load, w, wcap, conn, touched, anywhere):
    # (target part, neighbours there - neighbours in v's part) for moving vertex v of the
    # class whose per-part ``counts`` and ``cap`` are given: the neighbours' part with room
    # (and room for v's weight) holding most of them, lowest part id on ties; failing that
    # (``anywhere``) the part with the most room, the weight limit dropped if no part meets
    # both. (-1, gain of staying) when nothing fits.
    p = part[v]
    weighted = w.shape[0] > 0
    nt = 0
    if indptr.shape[0] > 0:
        for e in range(indptr[v], indptr[v + 1]):
            q = part[indices[e]]
            if conn[q] == 0:
                touched[nt] = q
                nt += 1
            conn[q] += 1
    own = conn[p]
    best = -1
    most = 0
    for j in range(nt):
        q = touched[j]
        fits = q != p and counts[q] < cap and (not weighted or load[q] + w[v] <= wcap)
        if fits and (best < 0 or conn[q] > most or (conn[q] == most and q < best)):
            best = q
            most = conn[q]
    for j in range(nt):
        conn[touched[j]] = 0
    if best >= 0 or not anywhere:
        return best, most - own
    for strict in (True, False):
        for q in range(counts.shape[0]):
            fits = q != p and counts[q] < cap
            if strict and weighted:
                fits = fits and load[q] + w[v] <= wcap
            if fits and (best < 0 or counts[q] < counts[best]):
                best = q
        if best >= 0 or not weighted:
            break
    return best, -own

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
    multi-constraint weights); the other methods ignore them.

    Example:
        >>> g = Graph.from_edge_index(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]]))
        >>> p = partition(g, 2, method="bfs")
        >>> p.part.tolist(), p.edge_cut
        ([0, 0, 1, 1], 2)
    """
    part, method, sym = assign_parts(graph, num_parts, method=method, seed=seed,
                                     recursive=recursive, vertex_weights=vertex_weights)  # fmt: skip
    return describe(graph, part, int(num_parts), method=method, sym=sym)


def assign_parts(
    graph: Graph,
    num_parts: int,
    *,
    method: str = "auto",
    seed: int = 0,
    recursive: Optional[bool] = None,
    vertex_weights: Optional[torch.Tensor] = None,
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
    if num_parts == 1 or num_parts >= n:
        # One part, or at least one part per vertex: nothing to optimise.
        part = torch.arange(n, dtype=torch.int64) if num_parts > 1 else torch.zeros(n).long()
        return part, "trivial", None
    if method == "random":
        return _random_parts(n, num_parts, seed), method, None
    sym = symmetrize(graph)
    if method == "metis":
        return _metis(sym, num_parts, seed, recursive, vertex_weights), method, sym
    return _bfs_parts(sym, num_parts, seed), method, sym


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

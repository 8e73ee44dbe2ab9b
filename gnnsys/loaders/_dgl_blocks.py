"""Real DGL blocks assembled straight from a batch's per-hop CSC.

``dgl.create_block`` is written for user data of unknown extent: for every relation it scans the
indices for the largest node id (a ``torch.max``, 0.3-0.4 ms a block of a rmat20 batch) and
wraps the relation in a throwaway one-relation ``DGLGraph`` before assembling the block. A
sampled batch knows its node counts and its indices are in range by construction (the sampling
kernels relabel them), so ``csc_block`` builds the same block from DGL's own index constructors
(``create_unitgraph_from_csr``, ``create_heterograph_from_relations``), the steps
``create_block`` itself takes after its checks, as DGL's C++ ``to_block`` does for its own
samplers. Where those constructors are missing or changed (another DGL release),
``create_block`` builds it.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable, Dict, Optional, Tuple

import torch

Relation = Tuple[str, str, str]


@functools.cache
def constructors(dgl: Any) -> Optional[Tuple[Callable[..., Any], ...]]:
    """DGL's index constructors ``create_block`` uses (from the submodules of the ``dgl``
    module given), or None where this DGL lacks them; looked up once per module."""
    wanted = (
        ("graph_index", "from_coo"),
        ("heterograph_index", "create_unitgraph_from_csr"),
        ("heterograph_index", "create_heterograph_from_relations"),
        ("utils", "toindex"),
        ("heterograph", "DGLBlock"),
    )
    try:
        found = [getattr(importlib.import_module(f"{dgl.__name__}.{m}"), n) for m, n in wanted]
    except (AttributeError, ImportError):
        return None
    return tuple(found) if all(callable(f) for f in found) else None


def csc_block(
    dgl: Any,
    rels: Dict[Relation, Tuple[torch.Tensor, torch.Tensor]],
    num_src: Dict[str, int],
    num_dst: Dict[str, int],
    idtype: torch.dtype,
) -> Any:
    """The ``dgl.DGLBlock`` with relation ``(s, e, d)``'s in-edges given by CSC ``rels[(s, e,
    d)] = (indptr over the num_dst[d] destinations, source positions < num_src[s])``, each
    relation's edge ids 0..E-1 in CSC order; the same block as
    ``dgl.create_block({r: ("csc", (indptr, indices, arange)) ...}, num_src, num_dst,
    idtype=idtype)``. Indices must be in range (not checked: the sampler made them).

    Example:
        >>> b = csc_block(dgl, {("_N", "_E", "_N"): (indptr, indices)}, {"_N": 5}, {"_N": 2},
        ...               torch.int64)   # doctest: +SKIP
    """
    # Edge ids 0..E-1 in CSC order, given (not left empty): DGL's CPU SpMM for an edge-data
    # message (``fn.copy_e``, which ``RelGraphConv`` uses) needs the array.
    data = {
        r: (ip.to(idtype), ix.to(idtype), torch.arange(ix.numel(), dtype=idtype))
        for r, (ip, ix) in rels.items()
    }
    api = constructors(dgl)
    if api is None:
        return dgl.create_block(
            {r: ("csc", arrays) for r, arrays in data.items()},
            num_src_nodes=num_src,
            num_dst_nodes=num_dst,
            idtype=idtype,
        )
    from_coo, unitgraph_from_csr, heterograph_from_relations, toindex, block_class = api
    # create_block's order: node types and relations sorted, source types numbered first
    srctypes, dsttypes, relations = sorted(num_src), sorted(num_dst), sorted(data)
    src_index = {nt: i for i, nt in enumerate(srctypes)}
    dst_index = {nt: i + len(srctypes) for i, nt in enumerate(dsttypes)}
    counts = toindex([num_src[nt] for nt in srctypes] + [num_dst[nt] for nt in dsttypes], "int64")
    rel_graphs = [
        # two node types (source side, destination side) per relation; transpose: CSC
        unitgraph_from_csr(2, num_src[s], num_dst[d], *data[(s, e, d)], ["coo", "csr", "csc"], True)
        for s, e, d in relations
    ]
    metagraph = from_coo(
        len(srctypes) + len(dsttypes),
        [src_index[s] for s, _, _ in relations],
        [dst_index[d] for _, _, d in relations],
        True,
    )
    index = heterograph_from_relations(metagraph, rel_graphs, counts)
    return block_class(index, (srctypes, dsttypes), [e for _, e, _ in relations])

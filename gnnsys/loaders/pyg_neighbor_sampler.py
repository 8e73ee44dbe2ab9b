"""PyG's legacy ``NeighborSampler`` (``torch_geometric.loader.NeighborSampler``, deprecated in
PyG but still what many GraphSAGE scripts and OGB's examples use) on the gnnsys ``Loader`` and
DGL-semantics ``NeighborSampler``: PyG's signature and its ``(batch_size, n_id, adjs)``
batches, without torch-sparse (PyG's needs ``SparseTensor.sample_adj``). Imported by
``loaders.pyg``, which exports it.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

import torch

from gnnsys._checks import check_index
from gnnsys.graph import Graph
from gnnsys.loaders.base import SampledSubgraph
from gnnsys.loaders.loader import Batch, Loader
from gnnsys.loaders.neighbor import NeighborSampler as _LayeredSampler
from gnnsys.loaders.neighbor import check_fanouts
from gnnsys.loaders.pyg import (
    _adj_t_edge_index,
    _check_adj_t,
    _input_nodes,
    _loader_options,
    _torch_kwargs,
)


class NeighborSampler(torch.utils.data.DataLoader):
    """PyG's (legacy) ``NeighborSampler``: each batch of ``node_idx`` is
    ``(batch_size, n_id, adjs)``. ``n_id`` holds the batch's nodes first, then the nodes each
    layer added; ``adjs`` one ``EdgeIndex(edge_index, e_id, size)`` per layer, the outermost
    first (a single one when ``sizes`` has one entry), where layer l samples ``sizes[l]``
    in-neighbours (-1: all) of every node known so far, ``edge_index`` is ``[source,
    target]`` in positions of ``n_id``, ``size = (sources, targets)`` and the targets are the
    first ``size[1]`` sources (PyG's contract: skip connections read ``x[:size[1]]``). A
    ``torch_sparse.SparseTensor`` (transposed: targets x sources) instead of ``edge_index``
    gives ``Adj(adj_t, e_id, size)`` layers whose ``adj_t`` carries the input's values (or,
    without values, the edge ids), as PyG's.

    ``edge_index`` is a ``[2, E]`` integer tensor (messages flow from row 0 to row 1);
    ``num_nodes`` is inferred as PyG does when not given; ``node_idx`` ids or a bool mask
    (None: every node); ``return_e_id=False`` gives ``e_id=None``; ``transform(batch_size,
    n_id, adjs)`` is applied to each batch. ``sample(ids)`` samples the given node ids
    directly, as PyG's. It is a ``torch.utils.data.DataLoader`` over ``node_idx`` (its
    ``dataset`` the ids), but iteration runs the gnnsys engine: ``num_workers`` sets loader
    threads; ``seed`` (gnnsys extra) makes the batches repeat whatever the threads (default:
    drawn from torch's RNG, so ``torch.manual_seed`` makes runs repeatable).

    Example:
        >>> from gnnsys.loaders.pyg import NeighborSampler
        >>> loader = NeighborSampler(data.edge_index, sizes=[25, 10], node_idx=train_idx,
        ...                          batch_size=1024, shuffle=True)
        >>> for batch_size, n_id, adjs in loader:
        ...     out = model(x[n_id], adjs)   # adjs: [(edge_index, e_id, size), ...]
    """

    def __init__(
        self,
        edge_index: Any,
        sizes: List[int],
        node_idx: Optional[torch.Tensor] = None,
        num_nodes: Optional[int] = None,
        return_e_id: bool = True,
        transform: Optional[Callable] = None,
        **kwargs: Any,
    ) -> None:
        who = "NeighborSampler"
        if transform is not None and not callable(transform):
            raise TypeError(f"{who}: transform must be callable, got {type(transform).__name__}")
        self.is_sparse_tensor = not isinstance(edge_index, torch.Tensor)
        self._values: Optional[torch.Tensor] = None
        if self.is_sparse_tensor:  # a transposed torch_sparse SparseTensor (targets x sources)
            n = int(edge_index.sparse_size(0)) if hasattr(edge_index, "sparse_size") else 0
            _check_adj_t(edge_index, (n, n), who, "edge_index")
            self._values = edge_index.storage.value()
            edge_index = _adj_t_edge_index(edge_index)  # edge id = entry position, as PyG
            num_nodes = n
        edge_index = edge_index.cpu()
        num_nodes = _num_nodes(edge_index, node_idx, num_nodes, who)
        try:
            self.graph = Graph.from_edge_index(edge_index, num_nodes=num_nodes)
        except ValueError as err:
            raise ValueError(f"{who}: {err}") from None
        node_idx, _ = _input_nodes(node_idx, num_nodes, who, "node_idx")
        self.edge_index, self.node_idx, self.num_nodes = edge_index, node_idx, num_nodes
        self.sizes = check_fanouts(sizes, "sizes").tolist()
        self.return_e_id, self.transform = bool(return_e_id), transform
        self._sampler = _LayeredSampler(self.graph, self.sizes, semantics="dgl")
        opts = _loader_options(dict(kwargs), who)
        self.loader = Loader(self._sampler, node_idx, collate=self._collate, **opts)
        # (the dataset and collate_fn PyG's drops, for PyTorch Lightning, are dropped too)
        super().__init__(node_idx.tolist(), collate_fn=self.sample, **_torch_kwargs(kwargs))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Seed the next iteration's shuffle and samples with ``epoch``."""
        self.loader.set_epoch(epoch)

    def sample(self, batch: Any) -> Any:
        """``(batch_size, n_id, adjs)`` of the node ids ``batch`` (a tensor or a list), sampled
        with this epoch's key for batch -1 (the same every call)."""
        ids = check_index("batch", torch.as_tensor(batch), self.num_nodes, allow_empty=False)
        pos = torch.arange(ids.numel())
        return self._collate(self.loader.make_batch(-1, self.loader.epoch, ids, pos))

    def _collate(self, batch: Batch) -> Any:
        adjs = _adjs(batch.subgraph, self.return_e_id, self.is_sparse_tensor, self._values)
        out = (batch.batch_size, batch.subgraph.nodes, adjs)
        return self.transform(*out) if self.transform is not None else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sizes={self.sizes})"


def _adjs(
    sub: SampledSubgraph, return_e_id: bool, sparse: bool, values: Optional[torch.Tensor]
) -> Any:
    """PyG's ``adjs``: one ``EdgeIndex`` per layer (``Adj`` with a ``SparseTensor`` ``adj_t``,
    targets x sources, when the input was one), outermost first (one alone unwrapped)."""
    from torch_geometric.loader.neighbor_sampler import Adj, EdgeIndex

    known = [0]
    for c in sub.num_sampled_nodes:
        known.append(known[-1] + c)
    adjs = []
    for hop in range(1, sub.num_hops + 1):
        blk = sub.block(hop)
        size = (known[hop + 1], known[hop])
        e_id = blk.edge_ids if return_e_id else None
        if not sparse:
            adjs.append(EdgeIndex(torch.stack([blk.indices, blk.dst()]), e_id, size))
            continue
        from torch_sparse import SparseTensor

        # PyG's values: the input's, by edge; with none, the edge ids when it returns them
        if values is not None:
            value = values[blk.edge_ids]
        else:
            value = blk.edge_ids if return_e_id else None
        adj_t = SparseTensor(row=blk.dst(), col=blk.indices, value=value,
                             sparse_sizes=(size[1], size[0]))  # fmt: skip
        adjs.append(Adj(adj_t, e_id, size))
    return adjs[0] if len(adjs) == 1 else adjs[::-1]


def _num_nodes(edge_index: torch.Tensor, node_idx: Any, num_nodes: Optional[int], who: str) -> int:
    """``num_nodes`` as PyG infers it: given; a mask's length; the largest id in
    ``edge_index`` or ``node_idx`` plus one."""
    if num_nodes is not None:
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
            raise ValueError(f"{who}: num_nodes must be a positive int, got {num_nodes!r}")
        return num_nodes
    if isinstance(node_idx, torch.Tensor) and node_idx.dtype == torch.bool:
        return int(node_idx.numel())
    top = [int(edge_index.max()) if edge_index.numel() else -1]
    if isinstance(node_idx, torch.Tensor) and node_idx.numel():
        top.append(int(node_idx.max()))
    if max(top) < 0:
        raise ValueError(f"{who}: num_nodes cannot be inferred from an empty edge_index")
    return max(top) + 1

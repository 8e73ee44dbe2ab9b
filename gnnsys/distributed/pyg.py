"""PyG's remote backend over a partition: ``(FeatureStore, GraphStore)`` for one machine's part.

PyG's loaders take a ``(FeatureStore, GraphStore)`` pair for data that does not live in one
``Data``. ``pyg_stores(part_dir, exchange)`` gives that pair for this machine's part of a
``gnnsys partition`` folder; ``gnnsys.loaders.pyg.NeighborLoader((feature_store, graph_store),
num_neighbors, input_nodes=...)`` then samples across machines (``DistNeighborSampler``) and
fetches features from their owners (``DistTable``), with PyG's batch contract. Every rank must
iterate its loader in step with the others (equal batch counts: ``node_split``).

The stores are read-only views: the graph store reports the whole graph's size and returns
this part's in-edges (global ids) when asked for an edge index; a tensor read with an index is
a collective fetch, without one it is this part's rows. PyG's own loaders, which read the
whole topology through ``csc()``/``csr()``/``coo()`` and would sample this part alone, are
refused with an error naming the gnnsys loaders.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch_geometric.data import EdgeAttr, FeatureStore, GraphStore, TensorAttr
from torch_geometric.typing import EdgeTensorType

from gnnsys.distributed.exchange import Exchange
from gnnsys.distributed.graph import DistGraph


class DistGraphStore(GraphStore):
    """A PyG ``GraphStore`` over one machine's part (``DistGraph``).

    Example:
        >>> fs, gs = pyg_stores("parts/", Exchange())
        >>> gs.get_all_edge_attrs()[0].size  # the whole graph's (N, N)
    """

    def __init__(self, graph: DistGraph) -> None:
        super().__init__()
        self.dist_graph = graph

    def get_all_edge_attrs(self) -> List[EdgeAttr]:
        g = self.dist_graph
        if not g.is_hetero:
            n = g.num_nodes
            return [EdgeAttr(edge_type=None, layout="coo", is_sorted=False, size=(n, n))]
        off = g.node_type_offset
        count = {t: int(off[i + 1] - off[i]) for i, t in enumerate(g.node_types)}
        return [EdgeAttr(edge_type=et, layout="coo", is_sorted=False,
                         size=(count[et[0]], count[et[2]])) for et in g.edge_types]  # fmt: skip

    def _get_edge_index(self, edge_attr: EdgeAttr) -> Optional[EdgeTensorType]:
        """This part's in-edges (``(row=source, col=destination)``): global ids, or for a
        typed partition those of ``edge_attr.edge_type`` with ids within their node types."""
        g = self.dist_graph
        dst = torch.repeat_interleave(torch.from_numpy(g.owned),
                                      torch.from_numpy(g.indptr).diff())  # fmt: skip
        src = torch.from_numpy(np.asarray(g.indices))
        if not g.is_hetero:
            return src, dst
        et = tuple(edge_attr.edge_type) if edge_attr.edge_type is not None else None
        if et not in g.edge_types:
            return None
        e = g.edge_types.index(et)
        keep = torch.from_numpy(np.asarray(g.type_per_edge) == e)
        off = g.node_type_offset
        s0, d0 = off[g.node_types.index(et[0])], off[g.node_types.index(et[2])]
        return src[keep] - int(s0), dst[keep] - int(d0)

    # PyG's own samplers read the whole topology through these three (NeighborSampler:
    # ``csc()``/``csr()``; LinkNeighborLoader's default edge_label_index: ``coo()``). This store
    # holds one machine's part, so they would sample that part alone and silently drop every
    # edge another machine owns: refused, pointing to the loaders that sample across machines.
    def csc(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(self._whole_graph_refusal("csc"))

    def csr(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(self._whole_graph_refusal("csr"))

    def coo(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(self._whole_graph_refusal("coo"))

    def _whole_graph_refusal(self, layout: str) -> str:
        g = self.dist_graph
        return (
            f"DistGraphStore.{layout}(): this graph store holds one machine's part of the graph "
            f"(part {g.part} of {g.num_parts}: the in-edges of its {len(g.owned)} nodes), and "
            "PyG's own NeighborLoader/LinkNeighborLoader would sample that part alone, dropping "
            "the other machines' edges. Use gnnsys.loaders.pyg.NeighborLoader / "
            "LinkNeighborLoader with the same arguments: they sample across machines. "
            "get_edge_index() still returns this part's edges."
        )

    def _put_edge_index(self, edge_index: EdgeTensorType, edge_attr: EdgeAttr) -> bool:
        raise NotImplementedError("a partition's graph store is read-only")

    def _remove_edge_index(self, edge_attr: EdgeAttr) -> bool:
        raise NotImplementedError("a partition's graph store is read-only")


class DistFeatureStore(FeatureStore):
    """A PyG ``FeatureStore`` of ``DistTable``s (node tables split over the machines).

    Example:
        >>> fs["x", None].shape  # this part's rows; fs.get_tensor(attr_name="x", index=ids)
    """

    def __init__(self, tables: dict) -> None:
        super().__init__()
        self.tables = tables

    def get_all_tensor_attrs(self) -> List[TensorAttr]:
        return [TensorAttr(group_name=k[0], attr_name=k[1]) if isinstance(k, tuple)
                else TensorAttr(group_name=None, attr_name=k) for k in self.tables]  # fmt: skip

    def _table(self, attr: TensorAttr) -> Any:
        """The table of ``attr``: keyed (group, name) in a typed partition, else by name."""
        group = attr.group_name if attr.is_set("group_name") else None
        return self.tables.get((group, attr.attr_name) if group is not None else attr.attr_name)

    def _get_tensor(self, attr: TensorAttr) -> Optional[torch.Tensor]:
        table = self._table(attr)
        if table is None:
            return None
        if attr.is_set("index") and attr.index is not None:
            return table[torch.as_tensor(attr.index)]  # a collective fetch
        return table.rows

    def _get_tensor_size(self, attr: TensorAttr) -> Optional[Tuple[int, ...]]:
        table = self._table(attr)
        return None if table is None else table.shape

    def _put_tensor(self, tensor: Any, attr: TensorAttr) -> bool:
        raise NotImplementedError("a partition's feature store is read-only")

    def _remove_tensor(self, attr: TensorAttr) -> bool:
        raise NotImplementedError("a partition's feature store is read-only")


def pyg_stores(
    part_dir: Any, exchange: Optional[Exchange] = None, *, tables: Optional[Sequence[Any]] = None
) -> Tuple[DistFeatureStore, DistGraphStore]:
    """(FeatureStore, GraphStore) of this rank's part of ``part_dir`` (rank = part in the
    exchange's group; default: a new group of every rank), with the node ``tables`` the
    partition holds (default: all of them; a typed partition's are keyed ``(node type, name)``).

    Example:
        >>> loader = NeighborLoader(pyg_stores("parts/"), num_neighbors=[15, 10],
        ...                         input_nodes=seeds, batch_size=1024)
    """
    graph = DistGraph.open(part_dir, exchange=exchange or Exchange())
    names = list(graph.ndata) if tables is None else [tuple(k) if isinstance(k, list) else k
                                                      for k in tables]  # fmt: skip
    missing = [k for k in names if k not in graph.ndata]
    if missing:
        raise ValueError(f"{part_dir} holds node tables {list(graph.ndata)}, not {missing}")
    return DistFeatureStore({k: graph.ndata[k] for k in names}), DistGraphStore(graph)

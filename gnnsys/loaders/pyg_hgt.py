"""PyG's ``HGTLoader`` on the gnnsys ``Loader`` and ``loaders.hgt.HGTSampler``: PyG 2.8's
signature and batches, without torch-sparse (PyG's own needs ``torch_sparse.hgt_sample``, which
a plain PyPI install lacks). Imported by ``loaders.pyg``, which exports it.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Union

from gnnsys.loaders.hgt import HGTSampler, num_samples_matrix
from gnnsys.loaders.pyg import (
    _check_common,
    _check_flags,
    _loader_options,
    _NodeFront,
    _PygDataView,
    _sampling_device,
)


class HGTLoader(_NodeFront):
    """PyG's ``HGTLoader`` (Heterogeneous Graph Transformer sampling): each iteration draws
    ``num_samples`` nodes of every node type from a budget that favours nodes tied to many
    sampled ones of low degree, then the batch is the graph's edges among the sampled nodes
    (``gnnsys.loaders.hgt``).

    ``data`` is a ``HeteroData`` or a ``(FeatureStore, GraphStore)`` pair; ``num_samples`` a
    list (the same counts for every node type) or a dict ``{node_type: [per iteration]}``;
    ``input_nodes`` a node type or ``(node_type, ids | mask | None)``. The batch is a
    ``HeteroData`` with, per node type, ``n_id`` (the input type's seeds first) and the node
    attributes, ``batch_size`` and ``input_id`` on the input type; per edge type
    ``edge_index``, ``e_id`` and the edge attributes, as PyG's. As there, no
    ``num_sampled_nodes``/``num_sampled_edges`` (HGT's iterations are not message-passing
    hops). ``is_sorted``/``filter_per_worker`` are accepted without effect (see
    ``NeighborLoader``); ``num_workers`` sets loader threads; ``seed``, ``device`` and
    ``num_threads`` are gnnsys extensions, as in ``NeighborLoader``.

    Where it differs from PyG's: randomness is counter-based from ``seed`` (batches repeat for
    a seed whatever the thread count); ``e_id`` always names the edge of its column (PyG's is
    wrong for destinations with more than 50 in-edges of a type); a node type left out of a
    ``num_samples`` dict is not drawn (PyG fails with ``unordered_map::at``), and lists of
    different lengths raise (PyG reads past the shorter ones).

    Example:
        >>> from gnnsys.loaders.pyg import HGTLoader
        >>> loader = HGTLoader(data, num_samples={t: [512] * 4 for t in data.node_types},
        ...                    input_nodes=("paper", data["paper"].train_mask), batch_size=128)
        >>> batch = next(iter(loader))
        >>> out = model(batch.x_dict, batch.edge_index_dict)["paper"][: batch["paper"].batch_size]
    """

    def __init__(
        self,
        data: Any,
        num_samples: Union[List[int], Dict[str, List[int]]],
        input_nodes: Any,
        is_sorted: bool = False,
        transform: Optional[Callable] = None,
        transform_sampler_output: Optional[Callable] = None,
        filter_per_worker: Optional[bool] = None,
        **kwargs: Any,
    ) -> None:
        who = "HGTLoader"
        _check_common(who, "uniform", None, None, transform, transform_sampler_output)
        _check_flags(is_sorted, filter_per_worker, who)
        opts = _loader_options(dict(kwargs), who)
        self.view = view = _PygDataView(data, None, who)
        if getattr(view.graph, "exchange", None) is not None:
            raise NotImplementedError(
                f"{who} over gnnsys.distributed's partition stores is not supported: HGT's "
                "budgets span the whole graph; use NeighborLoader there"
            )
        if not view.hetero:
            raise NotImplementedError(
                f"{who} samples heterogeneous graphs (HeteroData or a (FeatureStore, "
                f"GraphStore) pair), as PyG's; got a homogeneous {type(data).__name__}"
            )
        counts = num_samples_matrix(num_samples, view.graph.node_types, who)
        self.num_samples = {t: counts[:, i].tolist() for i, t in enumerate(view.graph.node_types)}
        self.node_sampler = HGTSampler(view.graph, self.num_samples)
        self.data = data
        self.transform = transform
        self.transform_sampler_output = transform_sampler_output
        self.is_sorted, self.filter_per_worker = is_sorted, filter_per_worker
        seeds = self._read_inputs(input_nodes, who)
        on = _sampling_device(data)
        if on is not None:  # sampled on the CPU; batches on the data's GPU, as PyG's
            opts.setdefault("device", on)
        self._start(self.node_sampler, seeds, opts, kwargs)

    def describe(self) -> str:
        """What this loader runs: its sampler, counts and engine settings."""
        return f"HGTLoader(num_samples={self.num_samples}, {self.loader!r})"

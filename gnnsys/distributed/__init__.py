"""Multi-machine training: a graph split into parts on disk, one part per machine.

``partition`` writes a dataset as a partition folder (``partition.json``, ``node_part.npy`` and
one ``part-XXXX/`` folder per part); ``PartitionBook`` maps global node ids to their parts and
``load_part`` reads one part (memory-mapped), touching no other part's files.

The imports are plain, not lazy: the function ``partition`` must win over the submodule of the
same name, which importing the submodule would otherwise leave as the package attribute.

Example:
    >>> from gnnsys.distributed import load_part, partition
    >>> book = partition(gnnsys.datasets.synthetic("tiny"), 2, "/tmp/tiny-2", method="random")
    >>> load_part("/tmp/tiny-2", 0).num_owned == book.meta["part_sizes"][0]
    True
"""

from __future__ import annotations

from gnnsys._lazy import lazy_names
from gnnsys.distributed.partition import (
    LocalPart,
    PartitionBook,
    PartitionError,
    check_parts,
    load_part,
    partition,
)

# The sampler, tables and fronts load on first use (they pull in torch.distributed's users,
# numba kernels and, for pyg_stores, torch_geometric).
_LAZY = {
    "DistGraph": "gnnsys.distributed.graph",
    "DistNeighborSampler": "gnnsys.distributed.graph",
    "DistTemporalNeighborSampler": "gnnsys.distributed.graph",
    "node_split": "gnnsys.distributed.graph",
    "edge_split": "gnnsys.distributed.graph",
    "DistTable": "gnnsys.distributed.features",
    "dist_feature_store": "gnnsys.distributed.features",
    "Exchange": "gnnsys.distributed.exchange",
    "PeerLostError": "gnnsys.distributed.exchange",
    "pyg_stores": "gnnsys.distributed.pyg",
}

__all__ = ["LocalPart", "PartitionBook", "PartitionError", "check_parts", "load_part", "partition",
           *_LAZY]  # fmt: skip


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())

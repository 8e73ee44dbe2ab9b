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

from gnnsys.distributed.partition import (
    LocalPart,
    PartitionBook,
    PartitionError,
    check_parts,
    load_part,
    partition,
)

__all__ = ["LocalPart", "PartitionBook", "PartitionError", "check_parts", "load_part", "partition"]

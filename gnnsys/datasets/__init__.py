"""gnnsys.datasets: synthetic generators (the embedded default), the folder format, OGB folders.

Example:
    >>> from gnnsys.datasets import synthetic
    >>> ds = synthetic("mini")          # ~130k nodes, generated once, then cached
    >>> data = ds.to_pyg()              # torch_geometric.data.Data with masks
    >>> mag = synthetic("mini-mag")     # ogbn-mag-shaped HeteroDataset (to_pyg: HeteroData)
    >>> wiki = synthetic("mini-stream") # timestamped interactions: TemporalLinkDataset
"""

from gnnsys.datasets.dataset import Dataset
from gnnsys.datasets.folder import load_folder, save_folder
from gnnsys.datasets.hetero import HETERO_NAMES, HeteroDataset, add_reverse_edges
from gnnsys.datasets.large import LARGE_NAMES, generate_large
from gnnsys.datasets.ogb import OGB_NAMES, ogb
from gnnsys.datasets.rmat import rmat_edges
from gnnsys.datasets.stream import STREAM_NAMES, TemporalLinkDataset
from gnnsys.datasets.synthetic import SYNTHETIC_NAMES, default_root, rmat_dataset, synthetic

__all__ = [
    "Dataset",
    "HETERO_NAMES",
    "HeteroDataset",
    "LARGE_NAMES",
    "OGB_NAMES",
    "STREAM_NAMES",
    "SYNTHETIC_NAMES",
    "TemporalLinkDataset",
    "add_reverse_edges",
    "default_root",
    "generate_large",
    "load_folder",
    "ogb",
    "rmat_dataset",
    "rmat_edges",
    "save_folder",
    "synthetic",
]

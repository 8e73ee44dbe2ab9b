"""gnnsys.pipeline_parallel: GNNPipe layer-parallel training, hybrid mode, graph-parallel baseline.

Ranks own contiguous layer ranges; the graph flows through them in M chunks whose outside
neighbours are read from per-layer histories (at most one epoch stale). The hybrid mode puts
graph parallelism inside each stage; the graph-parallel baseline exchanges halos at every
layer. Every byte any rank sends is counted by ``Transport``.

Example:
    >>> from gnnsys.pipeline_parallel import run
    >>> out = run("pipe", gnnsys.datasets.synthetic("tiny"), {"kind": "gcnii", "num_layers": 16},
    ...           nproc=4, epochs=20, chunks=8)
    >>> out["epochs"][-1]["test_acc"], out["epochs"][-1]["bytes"]
"""

from gnnsys.pipeline_parallel.chunks import ChunkBlock, ChunkSampler, ExchangePlan
from gnnsys.pipeline_parallel.config import ModelConfig, Techniques, TrainConfig
from gnnsys.pipeline_parallel.history import History
from gnnsys.pipeline_parallel.launch import RankFailure, run, run_many
from gnnsys.pipeline_parallel.model import DeepGNN, train_single
from gnnsys.pipeline_parallel.partition import Partition, nested_partition, partition
from gnnsys.pipeline_parallel.stages import balance, schedule

__all__ = [
    "ChunkBlock",
    "ChunkSampler",
    "DeepGNN",
    "ExchangePlan",
    "History",
    "ModelConfig",
    "Partition",
    "RankFailure",
    "Techniques",
    "TrainConfig",
    "balance",
    "nested_partition",
    "partition",
    "run",
    "run_many",
    "schedule",
    "train_single",
]

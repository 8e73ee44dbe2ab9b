"""gnnsys.pipeline_parallel: GNNPipe layer-parallel training, hybrid mode, graph-parallel baseline.

Ranks own contiguous layer ranges of the shared model stack (``gnnsys.nn.GNNStack``, built by
``build_model`` from a ``ModelConfig``); the graph flows through them in M chunks whose outside
neighbours are read from per-layer histories (at most one epoch stale). The hybrid mode puts
graph parallelism inside each stage; the graph-parallel baseline exchanges halos at every
layer. Every byte any rank sends is counted by ``Transport``.

Names load on first use: importing the package does not pull in the trainers.

Example:
    >>> from gnnsys.pipeline_parallel import run
    >>> out = run("pipe", gnnsys.datasets.synthetic("tiny"), {"kind": "gcnii", "num_layers": 16},
    ...           nproc=4, epochs=20, chunks=8)
    >>> out["epochs"][-1]["test_acc"], out["epochs"][-1]["bytes"]
"""

from __future__ import annotations

from gnnsys._lazy import lazy_names

_LAZY = {
    "ChunkBlock": "gnnsys.pipeline_parallel.chunks",
    "ChunkSampler": "gnnsys.pipeline_parallel.chunks",
    "ExchangePlan": "gnnsys.pipeline_parallel.chunks",
    "ModelConfig": "gnnsys.pipeline_parallel.config",
    "Techniques": "gnnsys.pipeline_parallel.config",
    "TrainConfig": "gnnsys.pipeline_parallel.config",
    "History": "gnnsys.pipeline_parallel.history",
    "RankFailure": "gnnsys.pipeline_parallel.launch",
    "run": "gnnsys.pipeline_parallel.launch",
    "run_many": "gnnsys.pipeline_parallel.launch",
    "build_model": "gnnsys.pipeline_parallel.model",
    "train_single": "gnnsys.pipeline_parallel.model",
    "Partition": "gnnsys.pipeline_parallel.partition",
    "nested_partition": "gnnsys.pipeline_parallel.partition",
    "partition": "gnnsys.pipeline_parallel.partition",
    "balance": "gnnsys.pipeline_parallel.stages",
    "schedule": "gnnsys.pipeline_parallel.stages",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())

"""Hybrid parallelism: a stages x groups grid of ranks.

Rank ``stage * G + group`` runs layers of its stage on the nodes of its group (a graph part).
Inside a stage (the G ranks holding the same layers, one ``dist.new_group``) the groups are
graph-parallel: while chunk c is processed, every layer exchanges with the other groups the
rows of chunk c they read (live: gradients come back) and the rows their other chunks read
(stored in their history, as fresh or stale values like any other outside neighbour).
Across stages the chunks are pipelined exactly as in GNNPipe. Weight gradients are summed over
each stage group (the ranks holding the same layers); GCNII's input projection, which every
rank holds to recompute h0, over all ranks.

With one group this is GNNPipe; with one stage and one chunk it is graph parallelism.
``Techniques.fresh_grad`` applies with one group only; with several it is switched off (a
warning says so and the result's ``fresh_grad`` is False): no gradient flows through history
reads, as before.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import torch
import torch.distributed as dist

from gnnsys.pipeline_parallel.chunks import ChunkBlock, ExchangePlan
from gnnsys.pipeline_parallel.gnnpipe import _PASS_CHUNK, PipeTrainer
from gnnsys.pipeline_parallel.graph_parallel import exchange, halo_specs
from gnnsys.pipeline_parallel.transport import Transport


def grid_groups(num_stages: int, num_groups: int) -> list:
    """Create one process group per stage (its G ranks); every rank must call this, in order.

    Returns the list of stage groups (``None`` where a group has one rank).

    Example:
        >>> groups = grid_groups(num_stages=2, num_groups=2)   # [{0, 1}, {2, 3}]
    """
    out = []
    for s in range(num_stages):
        ranks = [s * num_groups + g for g in range(num_groups)]
        out.append(dist.new_group(ranks) if num_groups > 1 else None)
    return out


class HybridTrainer(PipeTrainer):
    """One rank of a hybrid run: (stage, group) = divmod(rank, num_groups).

    Args:
        dataset, chunk_of, num_chunks, transport, model, train, techniques, device: as
            ``PipeTrainer``.
        owner: int64 [N], the group of every node (from ``nested_partition``).
        num_stages, num_groups: the grid (``num_stages * num_groups`` ranks).

    Example (inside an initialised process group; ``launch.run(mode="hybrid")`` does this):
        >>> trainer = HybridTrainer(ds, chunk_of, 4, Transport(), owner=owner, num_stages=2,
        ...                         num_groups=2)
    """

    def __init__(
        self,
        dataset: Any,
        chunk_of: torch.Tensor,
        num_chunks: int,
        transport: Transport,
        *,
        owner: torch.Tensor,
        num_stages: int,
        num_groups: int,
        model: Any = None,
        train: Any = None,
        techniques: Any = None,
        device: Optional[torch.device] = None,
    ) -> None:
        if transport.world_size != num_stages * num_groups:
            raise ValueError(
                f"the grid needs num_stages * num_groups = {num_stages * num_groups} ranks, "
                f"got {transport.world_size}"
            )
        self.num_groups = int(num_groups)
        self._owner_in = owner
        stage, self.group = divmod(transport.rank, self.num_groups)
        self.stage_groups = grid_groups(num_stages, num_groups)
        super().__init__(
            dataset,
            chunk_of,
            num_chunks,
            transport,
            stage=stage,
            num_stages=num_stages,
            model=model,
            train=train,
            techniques=techniques,
            device=device,
        )
        peers = {q: self.stage * self.num_groups + q for q in range(self.num_groups)}
        plan = ExchangePlan(self.adj, chunk_of, self.owner, num_chunks, self.num_groups)
        self.specs = halo_specs(plan, self.sampler, peers, self.device)
        n = self.adj.num_nodes
        zeros = torch.zeros(n, dtype=torch.int64)
        exact_plan = ExchangePlan(self.adj, zeros, self.owner, 1, self.num_groups)
        self.exact_spec = halo_specs(exact_plan, self.exact_sampler, peers, self.device)[0]
        self._received_kept: Dict[int, Any] = {}

    def _fresh_grad_supported(self) -> bool:
        """Off with several groups: a fresh row may come from another group's chunk, whose
        gradient would need a new message back; one group is GNNPipe and keeps it."""
        if self.num_groups == 1:
            return super()._fresh_grad_supported()
        if self.transport.rank == 0:
            warnings.warn(
                f"Techniques.fresh_grad is not implemented for hybrid runs with "
                f"{self.num_groups} groups; fresh history reads get no gradient in this run",
                stacklevel=2,
            )
        return False

    def _setup_groups(self) -> None:
        owner = self._owner_in
        if owner.numel() != self.adj.num_nodes:
            raise ValueError(f"owner has {owner.numel()} entries for {self.adj.num_nodes} nodes")
        self.owner = owner.long()

    def _gather_remote(
        self,
        epoch: int,
        layer: int,
        block: ChunkBlock,
        h: torch.Tensor,
        write_epoch: Optional[int],
        kind: str,
    ) -> torch.Tensor:
        if self.num_groups == 1:
            return h
        exact = block is self.exact_block
        spec = self.exact_spec if exact else self.specs[block.chunk]
        chunk = _PASS_CHUNK[kind] if exact else block.chunk
        kinds = (kind, kind) if exact else ("halo", "halo_grad")
        h_src, received = exchange(
            h, spec, self.transport, epoch=epoch, chunk=chunk, layer=layer, kinds=kinds
        )
        if write_epoch is not None:
            ids, rows = self._kept_received(spec)
            if ids.numel():
                with self.timer.section("history"):
                    self.history.write(layer, ids, received, write_epoch, rows=rows)
        return h_src

    def _kept_received(self, spec: Any) -> Any:
        """(ids, positions) of the rows of ``spec``'s exchange that the history keeps (those
        some chunk reads from it; a live row may be read live only), computed once."""
        got = self._received_kept.get(id(spec))
        if got is None:
            ids = spec.all_recv_ids
            rows = torch.nonzero(self.history.keeps(ids)).flatten()
            got = self._received_kept[id(spec)] = (ids[rows], rows)
        return got

    def _reduce_grads(self) -> None:
        # GCNII's input projection is on every rank (h0 is recomputed): summed over all ranks;
        # the rest over the stage group (the ranks holding the same layers).
        super()._reduce_grads()
        group = self.stage_groups[self.stage]
        if group is None:
            return
        rest = [p for name, p in self.named_params if not self._replicated(name)]
        self.transport.all_reduce_grads(rest, "allreduce", group)

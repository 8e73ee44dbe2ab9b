"""Graph-parallel baseline: every rank owns a partition and runs every layer on it.

At every layer each rank sends the rows of its nodes that other partitions read (their halo)
and receives its own halo; in backward the halo gradients travel back to their owners. Weight
gradients are summed over all ranks. This is the communication pattern GNNPipe replaces: per
epoch it moves ``2 L |halo| d`` values, measured here by the same ``Transport`` counters.

``HaloExchange`` is the autograd function of the exchange; the hybrid trainer uses it too,
with chunks: rows its peers read only as history ride along in the forward message but get no
gradient back.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from gnnsys.pipeline_parallel.checkpoint import Checkpointing
from gnnsys.pipeline_parallel.chunks import ChunkBlock, ChunkSampler, ExchangePlan
from gnnsys.pipeline_parallel.config import ModelConfig, Techniques, TrainConfig, coerce
from gnnsys.pipeline_parallel.model import (
    accuracies,
    build_model,
    chunk_loss,
    clip_grads,
    correct_counts,
    dropout_seed,
    grad_sq_norm,
    make_optimizer,
    model_input,
    seed_dropout,
    split_masks,
)
from gnnsys.pipeline_parallel.timing import StageTimer, profile_row
from gnnsys.pipeline_parallel.transport import (
    BWD,
    EVAL_CHUNK,
    FWD,
    HALO_SLOT,
    Transport,
    make_tag,
)


@dataclass
class HaloSpec:
    """What one rank sends and receives in the halo exchange of one chunk.

    Attributes:
        peers: ranks exchanged with, in ascending group order (the order of the block's
            remote run).
        send_live, send_hist: per peer, local row ids (into the chunk's inner rows) sent live
            (gradient comes back) and history-only.
        recv_live: per peer, the number of live rows received (the block's remote count).
        recv_ids: per peer, the global ids of all rows received (live first, then history-only).

    Example:
        >>> spec = halo_specs(plan, sampler, {q: q for q in range(4)})[chunk]
        >>> spec.all_recv_ids   # where the received rows go in the history
    """

    peers: List[int]
    send_live: Dict[int, torch.Tensor]
    send_hist: Dict[int, torch.Tensor]
    recv_live: Dict[int, int]
    recv_ids: Dict[int, torch.Tensor]

    @functools.cached_property
    def all_recv_ids(self) -> torch.Tensor:
        """Every received row's global id, in receive order (computed once: the hybrid
        trainer writes them into its history at every layer of every chunk)."""
        parts = [self.recv_ids[p] for p in self.peers]
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)


def halo_specs(
    plan: ExchangePlan,
    sampler: ChunkSampler,
    rank_of_group: Dict[int, int],
    device: Optional[torch.device] = None,
) -> List[HaloSpec]:
    """One ``HaloSpec`` per chunk for the group ``sampler`` serves.

    ``rank_of_group[q]`` is the rank this rank exchanges with for group ``q``; the row ids go
    to ``device`` (where the rows live), the received global ids stay on the CPU.

    Example:
        >>> specs = halo_specs(plan, sampler, {q: q for q in range(num_parts)})
    """
    g = sampler.group
    out = []
    for c in range(sampler.num_chunks):
        inner = sampler.inner_nodes(c)  # (hot first, not ascending: find rows by sorting)
        by_id = torch.argsort(inner)
        sorted_inner = inner[by_id]
        block = sampler.block(c)
        spec = HaloSpec([], {}, {}, {}, {})
        for q in range(sampler.num_groups):
            if q == g:
                continue
            r = rank_of_group[q]
            spec.peers.append(r)
            live, hist = plan.sends(c, g, q)
            spec.send_live[r] = by_id[torch.searchsorted(sorted_inner, live)].to(device)
            spec.send_hist[r] = by_id[torch.searchsorted(sorted_inner, hist)].to(device)
            rlive, rhist = plan.sends(c, q, g)
            if rlive.numel() != block.remote_counts[q]:
                raise RuntimeError(
                    f"exchange plan and block disagree: {rlive.numel()} live rows from group {q}, "
                    f"block expects {block.remote_counts[q]}"
                )
            spec.recv_live[r] = rlive.numel()
            spec.recv_ids[r] = torch.cat([rlive, rhist])
        out.append(spec)
    return out


class HaloExchange(torch.autograd.Function):
    """``(h_inner) -> (cat[h_inner, live remote rows], all received rows)``.

    Forward sends each peer its rows (live, then history-only) and receives the peers' rows;
    backward sends the gradients of the live remote rows to their owners and adds the gradients
    received for this rank's live rows to ``h_inner``'s gradient. The inner rows are part of the
    first output so that the backward always runs on every rank (peers wait for it).

    Example:
        >>> h_src, received = HaloExchange.apply(h_inner, spec, transport, (tag_f, tag_b),
        ...                                      ("halo", "halo_grad"))
    """

    @staticmethod
    def forward(ctx, h_inner, spec: HaloSpec, transport: Transport, tags, kinds):
        d = h_inner.shape[1]
        with transport.timer.section("pack"):
            sends = {
                r: torch.cat([h_inner[spec.send_live[r]], h_inner[spec.send_hist[r]]])
                for r in spec.peers
            }
        shapes = {r: (spec.recv_ids[r].numel(), d) for r in spec.peers}
        got = transport.exchange(sends, shapes, h_inner.dtype, tags[0], kinds[0], h_inner.device)
        live = [got[r][: spec.recv_live[r]] for r in spec.peers]
        received = [got[r] for r in spec.peers]
        ctx.spec, ctx.transport, ctx.tags, ctx.kinds = spec, transport, tags, kinds
        ctx.num_inner = h_inner.shape[0]
        all_rows = torch.cat(received) if received else h_inner.new_zeros((0, d))
        ctx.mark_non_differentiable(all_rows)
        return torch.cat([h_inner] + live), all_rows

    @staticmethod
    def backward(ctx, grad_cat, grad_rows):
        spec, n = ctx.spec, ctx.num_inner
        grad_inner = grad_cat[:n].clone()
        sends, off = {}, n
        for r in spec.peers:
            k = spec.recv_live[r]
            sends[r] = grad_cat[off : off + k]
            off += k
        d = grad_cat.shape[1]
        shapes = {r: (spec.send_live[r].numel(), d) for r in spec.peers}
        got = ctx.transport.exchange(
            sends, shapes, grad_cat.dtype, ctx.tags[1], ctx.kinds[1], grad_cat.device
        )
        with ctx.transport.timer.section("pack"):
            for r in spec.peers:
                grad_inner.index_add_(0, spec.send_live[r], got[r])
        return grad_inner, None, None, None, None


def exchange(
    h_inner: torch.Tensor,
    spec: HaloSpec,
    transport: Transport,
    *,
    epoch: int,
    chunk: int,
    layer: int,
    kinds: Tuple[str, str] = ("halo", "halo_grad"),
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run ``HaloExchange`` for one (epoch, chunk, layer) with its message tags.

    Example:
        >>> h_src, received = exchange(h, spec, transport, epoch=1, chunk=0, layer=3)
    """
    slot = HALO_SLOT + layer
    tags = (make_tag(epoch, chunk, slot, FWD), make_tag(epoch, chunk, slot, BWD))
    return HaloExchange.apply(h_inner, spec, transport, tags, kinds)


class GraphParallelTrainer(Checkpointing):
    """One rank of graph-parallel training: partition ``rank`` of ``num_parts``.

    Example (inside an initialised process group; ``launch.run(mode="graph")`` does this):
        >>> result = GraphParallelTrainer(ds, part, 4, Transport()).fit()
    """

    def __init__(
        self,
        dataset: Any,
        part: torch.Tensor,
        num_parts: int,
        transport: Transport,
        *,
        model: Any = None,
        train: Any = None,
        techniques: Any = None,
        device: Optional[torch.device] = None,
    ) -> None:
        self.mcfg = coerce(ModelConfig, model)
        self.tcfg = coerce(TrainConfig, train)
        self.tech = coerce(Techniques, techniques)
        self.transport = transport
        self.rank = transport.rank
        self.timer = transport.timer = StageTimer(self.tcfg.profile, device)
        self.num_parts = int(num_parts)
        if transport.world_size != self.num_parts:
            raise ValueError(
                f"graph parallelism needs one rank per part: {num_parts} parts, "
                f"{transport.world_size} ranks"
            )
        self.device = device or torch.device("cpu")
        self.model = build_model(
            self.mcfg, dataset.x.shape[1], dataset.num_classes, self.tcfg.seed
        ).to(self.device)
        self.adj = self.model.prepare_graph(dataset.graph)
        n = self.adj.num_nodes
        zeros = torch.zeros(n, dtype=torch.int64)
        sampler = ChunkSampler(
            self.adj, zeros, 1, owner=part, group=self.rank, num_groups=self.num_parts
        )
        plan = ExchangePlan(self.adj, zeros, part, 1, self.num_parts)
        peers = {q: q for q in range(self.num_parts)}
        self.spec = halo_specs(plan, sampler, peers, self.device)[0]
        self.block: ChunkBlock = sampler.block(0)
        if self.device.type != "cpu":
            self.block.indptr = self.block.indptr.to(self.device)
            self.block.indices = self.block.indices.to(self.device)
            if self.block.edge_weight is not None:
                self.block.edge_weight = self.block.edge_weight.to(self.device)
        ids = self.block.inner_nodes
        self.x = model_input(dataset.x[ids]).to(self.device)
        self.y = dataset.y[ids].to(self.device)
        self.masks = [m[ids].to(self.device) for m in split_masks(n, dataset)]
        self.num_train = int(dataset.train_idx.numel())
        self.optimizer = make_optimizer(list(self.model.named_parameters()), self.tcfg)
        self.record: Dict[str, Any] = {"logits": {}, "grads": {}}

    def forward(self, epoch: int, kinds: Tuple[str, str], chunk: int = 0) -> torch.Tensor:
        """Logits of this rank's nodes, exchanging halos at every layer."""
        h = self.model.embed(self.x)
        h0 = h
        for layer in range(self.model.num_layers):
            h_src, _ = exchange(
                h, self.spec, self.transport, epoch=epoch, chunk=chunk, layer=layer, kinds=kinds
            )
            h = self.model.layer(layer, self.block, h_src, h0)
        return self.model.head(h)

    def fit(self, on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """Train for ``train.epochs`` epochs; returns this rank's metrics and byte counters.

        ``on_epoch(row)``, when given, gets each epoch's row as soon as it is complete (the
        launcher streams rank 0's to the caller: progress lines, metrics.jsonl).
        """
        rows = []
        params = list(self.model.parameters())
        for epoch in range(self.resume() + 1, self.tcfg.epochs + 1):
            self.transport.epoch = epoch
            t0 = time.perf_counter()
            self.model.train()
            with self.timer.section("optimizer"):
                self.optimizer.zero_grad()
            seed_dropout(dropout_seed(self.tcfg.seed, epoch, 0, 0, self.rank), self.device)
            with self.timer.step("F", 0):
                logits = self.forward(epoch, ("halo", "halo_grad"))
                if self.tcfg.crash_rank == self.rank and epoch == self.tcfg.crash_epoch:
                    os._exit(17)  # failure test: die abruptly mid-epoch
                loss = chunk_loss(logits, self.y, self.masks[0], self.num_train)
            with self.timer.step("B", 0):
                loss.backward()
            self.transport.flush()
            self.transport.all_reduce_grads(params, "allreduce")
            if self.tcfg.record:
                full = torch.full((self.adj.num_nodes, logits.shape[1]), float("nan"))
                full[self.block.inner_nodes] = logits.detach().cpu()
                self.record["logits"][epoch] = full
                if epoch == 1:
                    self.record["grads"] = {
                        k: p.grad.detach().cpu().clone() for k, p in self.model.named_parameters()
                    }
            with self.timer.section("optimizer"):
                if self.tech.clip_norm is not None:
                    clip_grads(params, self.tech.clip_norm, grad_sq_norm(params) ** 0.5)
                self.optimizer.step()
            total = torch.tensor([float(loss.detach())], dtype=torch.float64, device=self.device)
            self.transport.all_reduce(total, "metrics")
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch, "loss": float(total[0]), "seconds": seconds}
            profile_row(row, self.timer, seconds)
            if self.tcfg.eval_every and epoch % self.tcfg.eval_every == 0:
                with self.timer.section("eval"):
                    row.update(self.evaluate(epoch))
                self.timer.take()
            rows.append(row)
            self.checkpoint(epoch, row["loss"], rows)  # before the row is reported
            if on_epoch is not None:
                on_epoch(row)
        self.transport.barrier()
        return {
            "rank": self.rank,
            "part": self.rank,
            "epochs": rows,
            "bytes": self.transport.bytes_by_epoch(),
            "messages": self.transport.messages_by_epoch(),
            "halo_rows": sum(v.numel() for v in self.spec.recv_ids.values()),
            "record": self.record if self.tcfg.record else None,
            # every part holds the same (all-reduced) model: rank 0 hands it over
            "state": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            if self.rank == 0
            else {},
        }

    def checkpoint_state(self) -> Dict[str, Any]:
        """This part's checkpoint: the (replicated) model and optimizer."""
        return {
            "params": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
        }

    def load_checkpoint_state(self, state: Dict[str, Any]) -> None:
        """Restore ``checkpoint_state()``."""
        self.model.load_state_dict(state["params"])
        self.optimizer.load_state_dict(state["optimizer"])

    def evaluate(self, epoch: int) -> Dict[str, float]:
        """Exact accuracies (eval mode, no grad), all-reduced over the parts."""
        self.model.eval()
        with torch.no_grad():
            logits = self.forward(epoch, ("eval", "eval"), chunk=EVAL_CHUNK)
        self.model.train()
        counts = correct_counts(logits, self.y, self.masks).to(self.device)
        self.transport.all_reduce(counts, "metrics")
        return accuracies(counts.cpu())

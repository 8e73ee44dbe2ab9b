"""GNNPipe (Chen, Chen, Qian 2023): layer-parallel full-graph training with chunk histories.

Each rank is a pipeline stage owning a contiguous run of layers. The graph is cut into M chunks
that flow through the stages in a fixed order. At layer l a chunk reads its outside neighbours
from the history of layer l's input kept by the stage owning l: neighbours in earlier chunks
hold this epoch's value (fresh), those in later chunks last epoch's (stale). Only a chunk's own
rows cross stage boundaries, so an epoch moves ``2 (S-1) |V| d`` values instead of graph
parallelism's ``2 L |halo| d``.

One epoch on stage s (rank s): the steps of the schedule (GPipe or 1F1B); a forward step
receives the chunk's boundary rows from stage s-1 (or embeds its features on stage 0), writes
each layer input into the history, runs the stage's layers and sends the result on (or, on the
last stage, computes the loss summed over the chunk's training nodes divided by the global
count); a backward step receives the gradient of that output, backpropagates through the
chunk's own rows and its fresh history reads, and sends the input gradient back. Then one
optimizer step per epoch, so there is no weight staleness and one chunk is exactly full-graph
training.

Gradients through fresh reads (``Techniques.fresh_grad``, GPipe only): chunk c's backward runs
before that of every earlier chunk c', so the gradient c's layer l sends to the fresh rows it
read is summed into a per-layer buffer on the stage owning l and added to c''s layer-l input
gradient when c' runs its backward (``FreshGrads``). Where that input came from the previous
stage the added part rides in c''s ordinary boundary gradient: no new traffic. Stale reads get
no gradient (their producers' graphs are gone), as in the paper. With every read fresh an
epoch is exactly full-graph training.

GCNII's initial residual ``h0`` (the input projection of the chunk's features) is not sent
along the pipeline: every stage holds ``x`` and a replica of the input projection and recomputes
``h0`` for its chunk, with the dropout seed of stage 0 so the values are identical. The replicas'
partial gradients are summed over the stages once per epoch (an all-reduce of the projection's
parameters), so GCNII moves ``2 (S-1) |V| d`` per epoch like GCN, plus that small all-reduce.

Convergence techniques (``Techniques``): a warm exact pass before epoch 1, EMA smoothing of stale
reads, an exact refresh every k epochs, a new chunk order every epoch, gradient clipping.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from gnnsys.loaders.loader import Loader
from gnnsys.pipeline_parallel.checkpoint import Checkpointing
from gnnsys.pipeline_parallel.chunks import ChunkBlock, ChunkSampler
from gnnsys.pipeline_parallel.config import (
    ModelConfig,
    Techniques,
    TrainConfig,
    coerce,
)
from gnnsys.pipeline_parallel.history import FreshGrads, History, after_rows
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
    owned_parameters,
    replicated,
    seed_dropout,
    split_masks,
    stage_parameters,
)
from gnnsys.pipeline_parallel.stages import balance, layer_costs, schedule
from gnnsys.pipeline_parallel.timing import StageTimer, profile_row, summarise
from gnnsys.pipeline_parallel.transport import (
    BWD,
    EVAL_CHUNK,
    FWD,
    MAX_CHUNKS,
    MAX_LAYERS,
    REFRESH_CHUNK,
    WARM_CHUNK,
    Transport,
    make_tag,
)

_PASS_CHUNK = {"warm": WARM_CHUNK, "refresh": REFRESH_CHUNK, "eval": EVAL_CHUNK}


class PipeTrainer(Checkpointing):
    """One rank of a GNNPipe run: stage ``stage`` of ``num_stages``.

    Args:
        dataset: graph, x, y, train_idx/val_idx/test_idx, num_classes (a ``gnnsys`` Dataset).
        chunk_of: int64 [N], the chunk of every node (from ``partition``).
        num_chunks: M.
        transport: the rank's ``Transport`` (torch.distributed already initialised).
        stage, num_stages: this rank's stage and the pipeline depth.
        model, train, techniques: configs (dicts or records).
        device: where tensors live (CPU for gloo, the rank's GPU for NCCL).

    Example (inside an initialised process group; ``launch.run`` does all of this):
        >>> trainer = PipeTrainer(ds, chunk_of, 8, Transport(), stage=rank, num_stages=4)
        >>> result = trainer.fit()
    """

    num_groups = 1
    group = 0

    def __init__(
        self,
        dataset: Any,
        chunk_of: torch.Tensor,
        num_chunks: int,
        transport: Transport,
        *,
        stage: int,
        num_stages: int,
        model: Any = None,
        train: Any = None,
        techniques: Any = None,
        device: Optional[torch.device] = None,
    ) -> None:
        self.mcfg = coerce(ModelConfig, model)
        self.tcfg = coerce(TrainConfig, train)
        self.tech = coerce(Techniques, techniques)
        if not 1 <= num_chunks <= MAX_CHUNKS:
            raise ValueError(f"num_chunks must be in 1..{MAX_CHUNKS}, got {num_chunks}")
        if self.mcfg.num_layers > MAX_LAYERS:
            raise ValueError(f"num_layers must be < {MAX_LAYERS + 1}, got {self.mcfg.num_layers}")
        if not 0 <= stage < num_stages:
            raise ValueError(f"stage must be in 0..{num_stages - 1}, got {stage}")
        self.stage, self.num_stages, self.num_chunks = int(stage), int(num_stages), int(num_chunks)
        self.transport = transport
        self.device = device or torch.device("cpu")
        self.timer = transport.timer = StageTimer(self.tcfg.profile, self.device)
        self.first, self.last = stage == 0, stage == num_stages - 1

        self.model = build_model(
            self.mcfg, dataset.x.shape[1], dataset.num_classes, self.tcfg.seed
        ).to(self.device)
        self.adj = self.model.prepare_graph(dataset.graph)
        n = self.adj.num_nodes
        costs = layer_costs(
            self.mcfg, n, self.adj.num_edges, dataset.x.shape[1], dataset.num_classes
        )
        self.layer_ranges = balance(costs, num_stages)
        self.layers = self.layer_ranges[stage]
        where = dict(first=self.first, last=self.last)
        self.named_params = list(stage_parameters(self.model, self.layers, **where))
        owned = {name for name, _ in owned_parameters(self.model, self.layers, **where)}
        # Counted once in the global gradient norm: the parameters this stage owns.
        self.owned_names = [name for name, _ in self.named_params if name in owned]
        self.owned_params = [p for name, p in self.named_params if name in owned]
        # Held by every rank (GCNII's input projection): gradients summed over all ranks.
        self.replicated = [p for name, p in self.named_params if self._replicated(name)]
        self.optimizer = make_optimizer(self.named_params, self.tcfg)

        need_x = self.first or self.model.uses_h0
        self.x = dataset.x.to(self.device) if need_x else None
        self.y = dataset.y.to(self.device)
        self.masks = [m.to(self.device) for m in split_masks(n, dataset)]
        self.num_train = int(self.masks[0].sum())
        self._setup_groups()
        self.sampler = ChunkSampler(
            self.adj,
            chunk_of,
            num_chunks,
            owner=self.owner,
            group=self.group,
            num_groups=self.num_groups,
        )
        self.exact_sampler = ChunkSampler(
            self.adj,
            torch.zeros(n, dtype=torch.int64),
            1,
            owner=self.owner,
            group=self.group,
            num_groups=self.num_groups,
        )
        # (its history rows: the nodes the chunks read from the histories)
        self.exact_block = self._to_device(
            self.sampler.with_history_rows(self.exact_sampler.block(0))
        )
        momentum = self.tech.momentum if self.tech.smoothing else None
        self.history = History(
            list(self.layers),
            n,
            self.mcfg.hidden,
            momentum=momentum,
            device=self.device,
            validate=False,  # chunk-sampler ids are in range by construction
            keep=self.sampler.history_reads(),  # rows only for the nodes some chunk reads
        )
        self.fresh_grad = self.tech.fresh_grad and self._fresh_grad_supported()
        self.fresh_grads = FreshGrads(n, device=self.device)
        # (layer, fresh node ids, their positions in the leaf, the leaf: a block's history run)
        self._fresh_leaves: List[Tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._blocks: Optional[List[ChunkBlock]] = None
        # (chunk, field) -> (host tensor, its device copy): a block's structure is the same
        # tensors every epoch, so it is copied to the device once
        self._device_copies: Dict[Tuple[int, str], Tuple[torch.Tensor, torch.Tensor]] = {}
        self._order: Optional[torch.Tensor] = None
        self.record: Dict[str, Any] = {"history": {}, "logits": {}, "grads": {}}
        self._crash_now = False  # failure tests: TrainConfig.crash_rank / crash_epoch

    # ------------------------------------------------------------------ rank layout
    def _setup_groups(self) -> None:
        """Plain GNNPipe: one group; rank = stage."""
        self.owner = torch.zeros(self.adj.num_nodes, dtype=torch.int64)

    def rank_of(self, stage: int) -> int:
        """The rank running ``stage`` in this rank's pipeline."""
        return stage * self.num_groups + self.group

    def _fresh_grad_supported(self) -> bool:
        """Whether gradients flow through fresh reads in this run. GPipe only: under 1F1B an
        earlier chunk's backward may run before a later chunk has produced the gradient of its
        fresh reads, so that combination is refused."""
        if self.tcfg.schedule != "gpipe":
            raise ValueError(
                f"Techniques.fresh_grad needs schedule='gpipe' (got schedule="
                f"{self.tcfg.schedule!r}: 1F1B may run an earlier chunk's backward before a "
                "later chunk has sent it the gradient of its fresh reads); set fresh_grad=False"
            )
        return True

    def _replicated(self, name: str) -> bool:
        """Parameters every rank holds: the input projection when the layers read h0."""
        return replicated(self.model, name)

    # ------------------------------------------------------------------ epochs
    def fit(self, on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """Train for ``train.epochs`` epochs; returns this rank's metrics, bytes and stats.

        ``on_epoch(row)``, when given, gets each epoch's row as soon as it is complete (the
        launcher streams rank 0's to the caller: progress lines, metrics.jsonl).
        """
        rows = []
        warm_seconds = 0.0
        warm_breakdown: Dict[str, Any] = {}
        start = self.resume() + 1  # a resumed run has its histories: no warm fill
        for epoch in range(start, self.tcfg.epochs + 1):
            self.transport.epoch = epoch
            self._crash_now = (
                self.tcfg.crash_rank == self.transport.rank and epoch == self.tcfg.crash_epoch
            )
            t0 = time.perf_counter()
            if epoch == 1 and self.tech.warm_fill:
                self.transport.epoch = 0
                with self.timer.section("exact"):
                    self.exact_pass("warm", write_epoch=0)
                self.transport.epoch = epoch
                warm_seconds = time.perf_counter() - t0
                warm_breakdown = summarise(self.timer.take(), warm_seconds)
                t0 = time.perf_counter()
            elif (
                self.tech.refresh_every and epoch > 1 and (epoch - 1) % self.tech.refresh_every == 0
            ):
                with self.timer.section("exact"):
                    self.exact_pass("refresh", write_epoch=epoch)
            loss = self.train_epoch(epoch)
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch, "loss": loss, "seconds": seconds}
            profile_row(row, self.timer, seconds)
            if self.tcfg.eval_every and epoch % self.tcfg.eval_every == 0:
                with self.timer.section("eval"):
                    row.update(self.evaluate(epoch))
                self.timer.take()
            rows.append(row)
            self.checkpoint(epoch, row["loss"], rows)  # before the row is reported
            if on_epoch is not None:
                on_epoch(row)
            if self.tcfg.record:
                self.record["history"][epoch] = {
                    layer: self.history.full(layer).cpu() for layer in self.history.layers
                }
        self.transport.barrier()
        return {
            "rank": self.transport.rank,
            "stage": self.stage,
            "group": self.group,
            "layers": [self.layers.start, self.layers.stop],
            "layer_ranges": [[r.start, r.stop] for r in self.layer_ranges],
            "epochs": rows,
            "warm_seconds": warm_seconds,
            "warm_breakdown": warm_breakdown,
            "bytes": self.transport.bytes_by_epoch(),
            "messages": self.transport.messages_by_epoch(),
            "owned_parameters": self.owned_names,
            "stale_reads": dict(self.history.stale_reads),
            "unwritten_reads": dict(self.history.unwritten_reads),
            "max_stale_age": self.history.max_stale_age,
            "max_fresh_age": self.history.max_fresh_age,
            "history_rows": self.history.num_rows,  # per layer: the nodes some chunk reads
            "fresh_grad": self.fresh_grad,
            "record": self.record if self.tcfg.record else None,
            "state": self.final_state(),
        }

    def checkpoint_state(self) -> Dict[str, Any]:
        """This rank's part of a checkpoint: its stage's parameters, optimizer and histories
        (the histories' CPU buffers themselves, not copies: serialise the state at once)."""
        return {
            "params": {name: p.detach().cpu().clone() for name, p in self.named_params},
            "optimizer": self.optimizer.state_dict(),
            # (not copied: a checkpoint serialises the state at once)
            "history": self.history.state_dict(copy=False),
        }

    def load_checkpoint_state(self, state: Dict[str, Any]) -> None:
        """Restore ``checkpoint_state()`` (the same run layout: stage, layers, groups)."""
        params = dict(self.named_params)
        if sorted(params) != sorted(state["params"]):
            raise ValueError(
                "the checkpoint holds other parameters than this stage's (another model, "
                "--pipe-stages or --layers)"
            )
        with torch.no_grad():
            for name, value in state["params"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.history.load_state_dict(state["history"])

    def final_state(self) -> Dict[str, torch.Tensor]:
        """The trained values of the parameters this stage owns (group 0 of a hybrid stage
        only: its other groups hold the same values), on the CPU; the union over the ranks is
        the whole model's state dict (``gnnsys train`` writes it as model.pt)."""
        if self.group != 0:
            return {}
        params = dict(self.named_params)
        return {name: params[name].detach().cpu().clone() for name in self.owned_names}

    def train_epoch(self, epoch: int) -> float:
        """One epoch: every chunk forward and backward through the pipeline, one optimizer step.

        Returns the global training loss (all-reduced).
        """
        self.model.train()
        blocks = self.epoch_blocks(epoch)
        with self.timer.section("optimizer"):
            self.optimizer.zero_grad()
        if self.fresh_grad:
            self.fresh_grads.reset()
        saved: Dict[int, Dict[str, Any]] = {}
        loss_sum = 0.0
        if self.tcfg.record and self.last:
            self.record["logits"][epoch] = torch.full(
                (self.adj.num_nodes, self.model.out_feats), float("nan")
            )
        for kind, pos in schedule(self.tcfg.schedule, len(blocks), self.stage, self.num_stages):
            with self.timer.step(kind, pos):
                if kind == "F":
                    saved[pos] = self._forward(epoch, blocks[pos])
                    if self.last:
                        loss_sum += float(saved[pos]["loss"].detach())
                    if self._crash_now:
                        os._exit(17)  # failure test: die abruptly with messages in flight
                else:
                    self._backward(epoch, blocks[pos], saved.pop(pos))
        self.transport.flush()
        self._reduce_grads()
        if self.tcfg.record and epoch == 1:
            self.record["grads"] = {k: p.grad.detach().cpu().clone() for k, p in self.named_params}
        with self.timer.section("optimizer"):
            if self.tech.clip_norm is not None:
                self._clip(self.tech.clip_norm)
            self.optimizer.step()
        total = torch.tensor([loss_sum], dtype=torch.float64, device=self.device)
        self.transport.all_reduce(total, "metrics")
        return float(total[0])

    def epoch_blocks(self, epoch: int) -> List[ChunkBlock]:
        """The chunk blocks of this epoch in processing order (a new seeded order per epoch when
        ``shuffle_chunks``; identical on every rank)."""
        if self.tech.shuffle_chunks:
            gen = torch.Generator().manual_seed(self.tcfg.seed * 1_000_003 + epoch)
            order = torch.randperm(self.num_chunks, generator=gen)
        else:
            order = torch.arange(self.num_chunks)
        if self._blocks is None or not torch.equal(order, self._order):
            self.sampler.set_order(order)
            self._blocks = [self._to_device(self._grad_src(b)) for b in
                            _iterate_chunks(self.sampler, order)]  # fmt: skip
            self._order = order
        return self._blocks

    # ------------------------------------------------------------------ steps
    def _forward(self, epoch: int, block: ChunkBlock) -> Dict[str, Any]:
        # The input projection draws its dropout as on stage 0, so a stage recomputing h0 gets
        # stage 0's values; the layers then draw from this stage's own seed.
        seed_dropout(dropout_seed(self.tcfg.seed, epoch, block.chunk, 0, self.group), self.device)
        self._fresh_leaves = []
        inputs: Tuple[torch.Tensor, ...] = ()
        if self.first:
            h = self.model.embed(model_input(self._x_rows(block)))
            h0 = h
        else:
            h0 = self._h0(block)
            seed_dropout(
                dropout_seed(self.tcfg.seed, epoch, block.chunk, self.stage, self.group),
                self.device,
            )
            h = self._recv_boundary(epoch, block.chunk, block.num_inner, "activation")
            inputs = (h,)
        for layer in self.layers:
            h = self._layer(epoch, layer, block, h, h0, write_epoch=epoch, kind="halo")
        if self.last:
            logits = self.model.head(h)
            ids = block.inner_nodes
            loss = chunk_loss(
                logits,
                self.y.index_select(0, ids),
                self.masks[0].index_select(0, ids),
                self.num_train,
            )
            if self.tcfg.record:
                self.record["logits"][epoch][ids.cpu()] = logits.detach().cpu()
            return {"inputs": inputs, "loss": loss, "fresh": self._fresh_leaves}
        self._send_boundary(epoch, block.chunk, h, FWD, "activation")
        return {"inputs": inputs, "outputs": h, "fresh": self._fresh_leaves}

    def _backward(self, epoch: int, block: ChunkBlock, saved: Dict[str, Any]) -> None:
        if self.last:
            saved["loss"].backward()
        else:
            grad = self._recv_grad(epoch, block.chunk, block.num_inner)
            backward_with(saved["outputs"], grad)
        # The gradients of this chunk's fresh reads, for the earlier chunks' backwards.
        with self.timer.section("history"):
            for layer, ids, at, leaf in saved["fresh"]:
                if leaf.grad is not None:
                    self.fresh_grads.add(layer, ids, leaf.grad.index_select(0, at))
        if not self.first:
            (h,) = saved["inputs"]
            grad = h.grad if h.grad is not None else torch.zeros_like(h)
            self._send_boundary(epoch, block.chunk, grad, BWD, "gradient")

    def _layer(
        self,
        epoch: int,
        layer: int,
        block: ChunkBlock,
        h: torch.Tensor,
        h0: torch.Tensor,
        *,
        write_epoch: Optional[int],
        kind: str,
    ) -> torch.Tensor:
        """Layer ``layer`` on ``block``: store the chunk's input in the history, assemble the
        source rows (own, remote, history) and run the layer."""
        if write_epoch is not None and block.history_rows.numel():
            # only the rows some block reads from the history (the others are never read)
            with self.timer.section("history"):
                self.history.write(
                    layer, block.history_nodes, h, write_epoch, rows=block.history_rows
                )
        grads = self.fresh_grad and kind == "halo" and torch.is_grad_enabled()
        if grads and h.requires_grad:
            # Later chunks' reads of these rows add their gradients here in the backward.
            h = self.fresh_grads.inject(layer, h, block.inner_nodes)
        h_src = self._gather_remote(epoch, layer, block, h, write_epoch, kind)
        if block.num_fresh + block.num_stale:
            # In the block's history run: its layout is the same whatever the order.
            read = functools.partial(
                self.history.read, layer, block.fresh_nodes, block.stale_nodes, epoch,
                block.num_stale_edges, fresh_at=block.fresh_pos, stale_at=block.stale_pos,
            )  # fmt: skip
            if grads and block.num_fresh:
                with self.timer.section("history"):
                    hist = read()
                # The whole run is the leaf; the backward keeps the fresh rows' gradients.
                hist = self.fresh_grads.leaf(hist)
                self._fresh_leaves.append((layer, block.fresh_nodes, block.fresh_pos, hist))
                h_src = torch.cat([h_src, hist])
            else:
                with self.timer.section("history"):
                    # own (and remote) rows, then the run: read into one table, no torch.cat
                    h_src = after_rows(h_src, lambda head: read(head=head))
        return self.model.layer(layer, block, h_src, h0)

    def _gather_remote(
        self,
        epoch: int,
        layer: int,
        block: ChunkBlock,
        h: torch.Tensor,
        write_epoch: Optional[int],
        kind: str,
    ) -> torch.Tensor:
        """Own rows followed by the remote rows of the chunk (none without groups)."""
        return h

    def _reduce_grads(self) -> None:
        """Sum the replicated input projection's gradients over all ranks (GCNII only)."""
        self.transport.all_reduce_grads(self.replicated, "allreduce")

    def _x_rows(self, block: ChunkBlock) -> torch.Tensor:
        """The feature rows of the block's inner nodes: ``index_select``, ~3x faster than
        ``x[ids]`` (mini's 8 chunks of 100-d rows, one thread: 14 vs 44-59 ms an epoch)."""
        assert self.x is not None
        return self.x.index_select(0, block.inner_nodes)

    def _h0(self, block: ChunkBlock) -> Optional[torch.Tensor]:
        """GCNII's h0 of the block's inner rows, recomputed here (None for other models)."""
        return self.model.embed(model_input(self._x_rows(block))) if self.model.uses_h0 else None

    # ------------------------------------------------------------------ exact passes
    def exact_pass(self, kind: str, *, write_epoch: Optional[int]) -> Optional[torch.Tensor]:
        """An exact (no history read, no dropout, no grad) forward over the whole graph.

        "warm" and "refresh" write every layer input into the histories; "eval" only returns
        the (correct, total) counts of the splits on the last stage (zeros elsewhere).
        """
        was_training = self.model.training
        self.model.eval()
        block = self.exact_block
        chunk = _PASS_CHUNK[kind]
        with torch.no_grad():
            if self.first:
                h = self.model.embed(model_input(self._x_rows(block)))
                h0 = h
            else:
                h0 = self._h0(block)
                h = self._recv_boundary(self.transport.epoch, chunk, block.num_inner, kind)
            for layer in self.layers:
                h = self._layer(
                    self.transport.epoch, layer, block, h, h0, write_epoch=write_epoch, kind=kind
                )
            counts = torch.zeros(6, dtype=torch.float64)
            if self.last:
                ids = block.inner_nodes
                logits = self.model.head(h)
                counts = correct_counts(
                    logits,
                    self.y.index_select(0, ids),
                    [m.index_select(0, ids) for m in self.masks],
                ).cpu()
            else:
                self._send_boundary(self.transport.epoch, chunk, h, FWD, kind)
        self.transport.flush()
        self.model.train(was_training)
        return counts

    def evaluate(self, epoch: int) -> Dict[str, float]:
        """Exact accuracies of the current weights on train/val/test (all ranks get them)."""
        counts = self.exact_pass("eval", write_epoch=None).to(self.device)
        self.transport.all_reduce(counts, "metrics")
        return accuracies(counts.cpu())

    # ------------------------------------------------------------------ boundaries
    def _send_boundary(self, epoch, chunk, tensor, direction, kind) -> None:
        boundary = self.stage if direction == FWD else self.stage - 1
        dst = self.rank_of(self.stage + 1 if direction == FWD else self.stage - 1)
        self.transport.isend(tensor, dst, make_tag(epoch, chunk, boundary, direction), kind)

    def _recv_boundary(self, epoch, chunk, rows, kind) -> torch.Tensor:
        src = self.rank_of(self.stage - 1)
        tag = make_tag(epoch, chunk, self.stage - 1, FWD)
        dim = self.model.boundary_dim
        buf = self.transport.recv((rows, dim), torch.float32, src, tag, kind, self.device)
        return buf.requires_grad_(self.model.training)

    def _recv_grad(self, epoch, chunk, rows) -> torch.Tensor:
        src = self.rank_of(self.stage + 1)
        tag = make_tag(epoch, chunk, self.stage, BWD)
        dim = self.model.boundary_dim
        return self.transport.recv((rows, dim), torch.float32, src, tag, "gradient", self.device)

    # ------------------------------------------------------------------ helpers
    def _clip(self, max_norm: float) -> None:
        """Clip by the global norm over all stages (each stage group counted once)."""
        sq = grad_sq_norm(self.owned_params)
        sq = torch.tensor([sq], dtype=torch.float64, device=self.device)
        self.transport.all_reduce(sq, "clip")
        params = [p for _, p in self.named_params]
        clip_grads(params, max_norm, float(sq[0] / self.num_groups) ** 0.5)

    def _grad_src(self, block: ChunkBlock) -> ChunkBlock:
        """The block with its history run marked constant for the sparse ops' backward (its
        rows' gradients are dropped unless ``fresh_grad``: computing them cost 20% of the
        backward SpMM on ``mini``'s 8 chunks)."""
        if not self.fresh_grad:
            block.num_grad_src = block.num_inner + block.num_remote
        return block

    def _to_device(self, block: ChunkBlock) -> ChunkBlock:
        if self.device.type == "cpu":
            return block
        for name in ("nodes", "indptr", "indices", "edge_weight", "history_rows", "history_nodes"):
            t = getattr(block, name)
            if t is not None:
                key = (block.chunk, name)
                hit = self._device_copies.get(key)
                if hit is None or hit[0] is not t:
                    hit = self._device_copies[key] = (t, t.to(self.device))
                setattr(block, name, hit[1])
        for name in ("fresh_pos", "stale_pos", "fresh_nodes", "stale_nodes"):  # per order
            setattr(block, name, getattr(block, name).to(self.device))
        return block


class _Inject(torch.autograd.Function):
    """A scalar whose backward hands ``grad`` to ``out``: ``backward_with``'s vehicle."""

    @staticmethod
    def forward(ctx: Any, out: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grad)
        return out.new_zeros(())

    @staticmethod
    def backward(ctx: Any, _: torch.Tensor) -> Tuple[torch.Tensor, None]:
        (grad,) = ctx.saved_tensors
        return grad, None


def backward_with(out: torch.Tensor, grad: torch.Tensor) -> None:
    """``torch.autograd.backward(out, grad)``: the same gradients, through a scalar.

    torch's explicit-gradient path checks shapes with ``torch.fx.experimental.symbolic_shapes``,
    whose first import loads sympy: measured 0.5 s of CPU per rank inside the first epoch's
    first backward (products-like, 32 layers, 4 ranks). A scalar's backward needs no check.

    Example:
        >>> x = torch.ones(2, requires_grad=True)
        >>> backward_with(x * 3, torch.tensor([1.0, 2.0])); x.grad.tolist()
        [3.0, 6.0]
    """
    if grad.shape != out.shape:
        raise RuntimeError(f"gradient of shape {tuple(grad.shape)} for an output of shape "
                           f"{tuple(out.shape)}")  # fmt: skip
    _Inject.apply(out, grad).backward()


def _iterate_chunks(sampler: ChunkSampler, order: torch.Tensor) -> List[ChunkBlock]:
    """The blocks of one epoch in ``order``, through the common Loader (one chunk per batch)."""
    loader = Loader(sampler, order, batch_size=1, shuffle=False, prefetch=0, num_threads=1)
    return [batch.subgraph.metadata["block"] for batch in loader]

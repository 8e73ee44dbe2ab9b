"""Configuration records shared by the single-process, GNNPipe, hybrid and graph-parallel trainers.

Every field is checked when the record is built, so a bad value fails in the launching process
with a message naming the field, before any rank starts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional, Union

import numpy as np

from gnnsys._checks import check_choice

MODEL_KINDS = ("gcn", "gcnii", "sage", "gat")
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "cosine")
SCHEDULES = ("gpipe", "1f1b")


@dataclass
class ModelConfig:
    """A deep GNN: input projection, ``num_layers`` graph layers of width ``hidden``, a head.

    ``alpha`` and ``theta`` are GCNII's initial-residual weight and identity-mapping strength;
    ``heads`` is GAT's head count (``hidden`` must divide by it).

    Example:
        >>> ModelConfig(kind="gcnii", hidden=64, num_layers=16, dropout=0.5)
    """

    kind: str = "gcnii"
    hidden: int = 64
    num_layers: int = 8
    dropout: float = 0.0
    alpha: float = 0.1
    theta: float = 0.5
    heads: int = 4

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, MODEL_KINDS)
        check_int("hidden", self.hidden, 1)
        check_int("num_layers", self.num_layers, 1)
        _float("dropout", self.dropout, 0.0, 1.0, hi_open=True)
        _float("alpha", self.alpha, 0.0, 1.0)
        _float("theta", self.theta, 0.0, None, lo_open=True)
        check_int("heads", self.heads, 1)
        if self.kind == "gat" and self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")


@dataclass
class Techniques:
    """GNNPipe's convergence techniques, each a switch (the benchmark ablates each one).

    Defaults: warm fill, smoothing and shuffling on; refresh, clipping and fresh-read gradients
    off. In the benchmark's ablation (``tiny``, GCNII-16, hidden 64, dropout 0.5, 8 chunks, 200
    epochs, constant lr, no fresh-read gradients) every setting but "smoothing off" reached a
    best validation accuracy at or above graph parallelism's (0.91-0.93 vs 0.88); smoothing off
    reached 0.83 with a 3x higher training loss.

    Under a constant learning rate the exact accuracy swings between epochs late in training
    (``tiny``: lowest test accuracy 0.29-0.74 over the last 50 of 150 epochs, graph parallelism
    0.83-0.87): stale reads feed the weights back into training one epoch late, and Adam's
    fixed step size keeps that loop excited. The swing scales with the step: with
    ``TrainConfig(lr_schedule="cosine")`` the last 50 epochs of the same runs (seeds 0-2) hold
    0.86-0.90 at the lowest and end at 0.90-0.93 (graph parallelism 0.87-0.88), so train GNNPipe
    with the cosine schedule or select by validation accuracy. Stronger weight decay on the layers
    (``layer_weight_decay`` 0.002-0.01) also removes the swing but cost both GNNPipe and graph
    parallelism 7 points on ``tiny``. Fresh-read gradients halve it (mean epoch-to-epoch change
    0.015-0.034 vs 0.049-0.085) but lowered the best-validation accuracy 1-4 points.

    Attributes:
        warm_fill: an exact forward pass before epoch 1 fills every history.
        smoothing: stale reads use an EMA of the history (``momentum``) instead of the last value.
        momentum: the EMA momentum (0.95 by default).
        refresh_every: an exact pass refreshes every history before every k-th epoch (0 = never).
        shuffle_chunks: a new seeded chunk order every epoch (changes which neighbours are stale).
        clip_norm: clip the global gradient norm to this value (None = no clipping).
        fresh_grad: backpropagate through fresh history reads: the gradient a chunk sends to
            rows of earlier chunks is kept per layer and added when those chunks run their
            backward (GPipe only: refused with 1F1B; off, with a warning, in hybrid runs with
            several groups). With every read fresh an epoch is exactly full-graph training.
            Stale reads never get gradients. Off by default: it lowered the best-validation test
            accuracy on ``tiny`` (above) and on ``mini`` (GCNII-16, M=8: 75.6% with it, 77.4%
            without, all other techniques on).

    Example:
        >>> Techniques(warm_fill=True, refresh_every=5, clip_norm=1.0)
    """

    warm_fill: bool = True
    smoothing: bool = True
    momentum: float = 0.95
    refresh_every: int = 0
    shuffle_chunks: bool = True
    clip_norm: Optional[float] = None
    fresh_grad: bool = False

    def __post_init__(self) -> None:
        for name in ("warm_fill", "smoothing", "shuffle_chunks", "fresh_grad"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        _float("momentum", self.momentum, 0.0, 1.0, hi_open=True)
        check_int("refresh_every", self.refresh_every, 0)
        if self.clip_norm is not None:
            _float("clip_norm", self.clip_norm, 0.0, None, lo_open=True)


@dataclass
class TrainConfig:
    """Optimisation and run settings.

    Attributes:
        epochs: full-graph epochs (one optimizer step each).
        lr, weight_decay, optimizer: "adam" or "sgd".
        layer_weight_decay: weight decay of the graph layers (None = ``weight_decay``); the
            input projection and the head keep ``weight_decay``. GCNII's recipe is 0.01 on the
            layers and 5e-4 elsewhere.
        lr_schedule: "constant" or "cosine" (annealed to 0 over ``epochs``, one step per epoch;
            recommended for GNNPipe, whose late epochs swing under a constant rate: see
            ``Techniques``).
        seed: seeds the weights, dropout, partitioner and chunk shuffling.
        eval_every: an exact evaluation pass after every k-th epoch (0 = never).
        schedule: "gpipe" (all forwards, then all backwards) or "1f1b".
        timeout: seconds any blocking communication may wait before the rank fails.
        threads: torch threads per rank.
        record: keep per-epoch histories, outputs and first-epoch gradients (tests; small graphs).
        profile: time every epoch by section (compute, history, waits, transport, all-reduce,
            optimizer: ``timing.StageTimer``); rows get ``breakdown`` (wall seconds),
            ``breakdown_cpu`` (CPU seconds) and per-step ``steps``.
        net_gbps, net_latency_us: a modeled network (``netmodel.NetModel``): every message
            is delayed as a link of that bandwidth (Gb/s) and one-way latency (microseconds)
            would delay it. None: the real network (gloo's loopback on one machine).
        crash_rank, crash_epoch: make that rank exit abruptly at that epoch (failure tests).
        checkpoint_dir: where each rank writes its state every ``checkpoint_every`` epochs
            and at the last (``pipeline_parallel.checkpoint``); None: no checkpoints.
        resume: continue from ``checkpoint_dir``'s committed epoch, when it has one.

    Example:
        >>> TrainConfig(epochs=50, lr=0.01, schedule="1f1b")
    """

    epochs: int = 10
    lr: float = 0.01
    weight_decay: float = 0.0
    layer_weight_decay: Optional[float] = None
    optimizer: str = "adam"
    lr_schedule: str = "constant"
    seed: int = 0
    eval_every: int = 1
    schedule: str = "gpipe"
    timeout: float = 60.0
    threads: int = 1
    record: bool = False
    profile: bool = False
    net_gbps: Optional[float] = None
    net_latency_us: float = 0.0
    crash_rank: Optional[int] = None
    crash_epoch: int = 1
    checkpoint_dir: Optional[str] = None
    checkpoint_every: int = 1
    resume: bool = False

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 1)
        _float("lr", self.lr, 0.0, None)
        _float("weight_decay", self.weight_decay, 0.0, None)
        if self.layer_weight_decay is not None:
            _float("layer_weight_decay", self.layer_weight_decay, 0.0, None)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_int("seed", self.seed, 0)
        check_int("eval_every", self.eval_every, 0)
        check_choice("schedule", self.schedule, SCHEDULES)
        _float("timeout", self.timeout, 0.0, None, lo_open=True)
        check_int("threads", self.threads, 1)
        if self.crash_rank is not None:
            check_int("crash_rank", self.crash_rank, 0)
        check_int("crash_epoch", self.crash_epoch, 1)
        check_int("checkpoint_every", self.checkpoint_every, 0)
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, str):
            raise TypeError(f"checkpoint_dir must be a str or None, got {self.checkpoint_dir!r}")
        for name in ("record", "profile", "resume"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        from gnnsys.pipeline_parallel.netmodel import net_model

        net_model(self.net_gbps, self.net_latency_us)  # checks both


def cosine_lr(base: float, step: int, total: int) -> float:
    """The learning rate for update ``step + 1`` of ``total`` under cosine annealing to 0, as
    ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total)`` stepped after each update.

    Example:
        >>> cosine_lr(0.01, 0, 100), round(cosine_lr(0.01, 50, 100), 6)
        (0.01, 0.005)
    """
    return 0.5 * base * (1.0 + math.cos(math.pi * step / total))


ConfigLike = Union[None, Dict[str, Any], ModelConfig, Techniques, TrainConfig]


def coerce(cls: type, value: ConfigLike, **overrides: Any):
    """Build ``cls`` from None (defaults), a dict of its fields, or an instance.

    Example:
        >>> coerce(TrainConfig, {"epochs": 3}).epochs
        3
    """
    if value is None:
        value = {}
    if isinstance(value, cls):
        value = asdict(value)
    if not isinstance(value, dict):
        raise TypeError(f"expected a {cls.__name__} or a dict of its fields, got {value!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; known: {sorted(known)}")
    return cls(**{**value, **overrides})


def check_int(name: str, value: Any, lo: int) -> None:
    """Raise TypeError unless ``value`` is an int (numpy ints too), ValueError if below ``lo``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")


def _float(
    name: str,
    value: Any,
    lo: float,
    hi: Optional[float],
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    bad_lo = value <= lo if lo_open else value < lo
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        top = "inf" if hi is None else f"{hi:g}"
        raise ValueError(f"{name} must be in {left}{lo:g}, {top}{right}, got {value}")

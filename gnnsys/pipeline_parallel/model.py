"""The pipeline's model pieces: ``build_model`` (the shared ``gnnsys.nn.GNNStack`` from a
``ModelConfig``), parameter ownership per stage, the optimizer, losses, and ``train_single``.

The stack's pieces are placed anywhere: ``embed`` (input projection, per node) ->
``layer(l)`` for l = 0..L-1 (one graph layer each, reading source rows and writing destination
rows of any adjacency with ``adj_csc()``) -> ``head`` (per node). The pipeline runs a contiguous
run of layers per rank, graph parallelism runs every layer on a partition, and ``train_single``
runs the whole model on the whole graph: the reference every distributed mode is checked
against.

GCN and GCNII read GCN-normalised edge weights (self loops added, ``D^-1/2 (A+I) D^-1/2``)
computed once on the whole graph by ``model.prepare_graph``, so a chunk's block carries exact
global normalisation.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from gnnsys.nn.models import GNNStack
from gnnsys.pipeline_parallel.config import (
    ModelConfig,
    Techniques,
    TrainConfig,
    coerce,
    cosine_lr,
)


def build_model(config: ModelConfig, in_dim: int, num_classes: int, seed: int) -> GNNStack:
    """The model every rank builds from ``config``: the shared ``GNNStack`` in its pipeline
    shape (input projection, ``num_layers`` layers of width ``hidden``, a head; GCN and GCNII on
    the global weights of ``model.prepare_graph``), same seed, same initial weights (global RNG
    untouched).

    Example:
        >>> a = build_model(ModelConfig(num_layers=4), 100, 47, seed=0)
        >>> adj = a.prepare_graph(graph)
    """
    config = coerce(ModelConfig, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GNNStack(
            config.kind,
            int(in_dim),
            int(config.hidden),
            int(num_classes),
            int(config.num_layers),
            dropout=float(config.dropout),
            project=True,
            norm="none",
            heads=int(config.heads),
            alpha=float(config.alpha),
            theta=float(config.theta),
        )


# ---------------------------------------------------------------------- parameter ownership
def model_input(x: torch.Tensor) -> torch.Tensor:
    """Feature rows as the float32 the model's parameters are: a float16, bfloat16 or float64
    table (``gnnsys data papers*`` folders store float16) is widened or narrowed per use, so the
    table itself keeps its storage dtype (and its map, for a folder's features).

    Example:
        >>> model_input(torch.ones(2, 3, dtype=torch.float16)).dtype
        torch.float32
    """
    return x if x.dtype == torch.float32 else x.to(torch.float32)


def owned_parameters(
    model: GNNStack, layers: range, *, first: bool, last: bool
) -> Iterator[Tuple[str, nn.Parameter]]:
    """(name, parameter) a stage owns, every parameter on exactly one stage: layers ``layers``,
    plus the input projection on the first stage and the head on the last.

    Example:
        >>> [n for n, _ in owned_parameters(model, range(0, 2), first=True, last=False)][:1]
        ['input_proj.weight']
    """
    for name, p in model.named_parameters():
        piece = name.split(".")[0]
        if piece == "input_proj" and first or piece == "output_proj" and last:
            yield name, p
        elif piece == "layers" and int(name.split(".")[1]) in layers:
            yield name, p


def replicated(model: GNNStack, name: str) -> bool:
    """Whether parameter ``name`` is held by every stage: the input projection when the layers
    read h0 (GCNII), which each stage recomputes.

    Example:
        >>> replicated(build_model(ModelConfig(kind="gcnii"), 10, 3, 0), "input_proj.weight")
        True
    """
    return model.uses_h0 and name.split(".")[0] == "input_proj"


def stage_parameters(
    model: GNNStack, layers: range, *, first: bool, last: bool
) -> Iterator[Tuple[str, nn.Parameter]]:
    """(name, parameter) a stage trains: its owned ones, plus the input projection on every
    stage when its layers read h0 (GCNII), which it recomputes there. Such replicas get partial
    gradients; the trainer sums them over the stages holding them.

    Example:
        >>> names = [n for n, _ in stage_parameters(model, range(4, 8), first=False,
        ...                                         last=False)]   # "input_proj.*" too
    """
    for name, p in model.named_parameters():
        if replicated(model, name) and not first and len(layers):
            yield name, p
    yield from owned_parameters(model, layers, first=first, last=last)


# ---------------------------------------------------------------------- shared training pieces
def set_threads(threads: int) -> None:
    """Use ``threads`` threads in torch and in the numba kernels (ranks share the cores).

    Example:
        >>> set_threads(1)   # four ranks on a few cores: no oversubscription, no spinning
    """
    import numba

    torch.set_num_threads(threads)
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


class Optimizer:
    """Adam or SGD (L2 weight decay) over a list of parameters, as ``torch.optim`` computes them.

    Written out because building any ``torch.optim`` optimizer imports ``torch._dynamo``, which
    costs seconds in every freshly spawned rank; the update rules follow ``torch.optim.Adam``
    and ``torch.optim.SGD`` (no momentum) step for step. ``weight_decay`` is one value or one
    per parameter (what ``torch.optim`` param groups express). ``cosine_steps`` > 0 anneals the
    learning rate over that many steps as ``torch.optim.lr_scheduler.CosineAnnealingLR`` with
    ``T_max=cosine_steps`` and ``eta_min=0`` stepped after each update.

    Example:
        >>> opt = Optimizer(list(model.parameters()), "adam", lr=0.01)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(
        self,
        params: List[nn.Parameter],
        kind: str = "adam",
        lr: float = 0.01,
        weight_decay: Union[float, Sequence[float]] = 0.0,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        cosine_steps: int = 0,
    ) -> None:
        if kind not in ("adam", "sgd"):
            raise ValueError(f"kind must be 'adam' or 'sgd', got {kind!r}")
        self.params, self.kind = list(params), kind
        if isinstance(weight_decay, (int, float)):
            weight_decay = [float(weight_decay)] * len(self.params)
        weight_decay = [float(w) for w in weight_decay]
        if len(weight_decay) != len(self.params):
            raise ValueError(
                f"weight_decay has {len(weight_decay)} entries for {len(self.params)} parameters"
            )
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.base_lr, self.cosine_steps = lr, int(cosine_steps)
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params] if kind == "adam" else []
        self.v = [torch.zeros_like(p) for p in self.params] if kind == "adam" else []

    def state_dict(self) -> Dict[str, Any]:
        """Step count, current learning rate and Adam moments (CPU copies), for checkpoints."""
        return {
            "t": self.t,
            "lr": self.lr,
            "m": [m.detach().cpu().clone() for m in self.m],
            "v": [v.detach().cpu().clone() for v in self.v],
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore ``state_dict()``'s values (same parameters, same kind)."""
        if len(state["m"]) != len(self.m) or len(state["v"]) != len(self.v):
            raise ValueError(
                f"optimizer state holds {len(state['m'])} moments for {len(self.m)} parameters"
            )
        self.t, self.lr = int(state["t"]), float(state["lr"])
        for mine, saved in zip(self.m + self.v, list(state["m"]) + list(state["v"])):
            mine.copy_(saved)

    def zero_grad(self) -> None:
        """Set every gradient to zero (allocating it when missing)."""
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            else:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update from the current gradients."""
        self.t += 1
        b1, b2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay[i]:
                g = g.add(p, alpha=self.weight_decay[i])
            if self.kind == "sgd":
                p.add_(g, alpha=-self.lr)
                continue
            m, v = self.m[i], self.v[i]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
            denom = (v.sqrt() / math.sqrt(bc2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bc1)
        if self.cosine_steps:
            self.lr = cosine_lr(self.base_lr, self.t, self.cosine_steps)


def grad_sq_norm(params: List[nn.Parameter]) -> float:
    """Sum of squared gradient entries (float64), the local part of a global norm.

    Example:
        >>> norm = (grad_sq_norm(params_of_stage) + other_stages) ** 0.5
    """
    return float(sum(p.grad.detach().double().pow(2).sum() for p in params if p.grad is not None))


def clip_grads(params: List[nn.Parameter], max_norm: float, norm: float) -> None:
    """Scale gradients by ``max_norm / norm`` when the (global) ``norm`` exceeds ``max_norm``,
    as ``torch.nn.utils.clip_grad_norm_`` does.

    Example:
        >>> clip_grads(params, 1.0, grad_sq_norm(params) ** 0.5)
    """
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for p in params:
            if p.grad is not None:
                p.grad.mul_(coef)


def make_optimizer(
    named_params: Sequence[Tuple[str, nn.Parameter]], train: TrainConfig
) -> Optimizer:
    """The configured optimizer (Adam or SGD, lr, weight decay) over ``named_params``.

    The graph layers' parameters (``layers.*``) get ``train.layer_weight_decay`` when it is set,
    the input projection and the head ``train.weight_decay`` (GCNII's recipe: 0.01 and 5e-4).
    ``train.lr_schedule="cosine"`` anneals the learning rate to 0 over ``train.epochs`` steps
    (one step per epoch in every trainer).

    Example:
        >>> opt = make_optimizer(list(model.named_parameters()), TrainConfig(lr=0.01))
    """
    named_params = list(named_params)
    layer_wd = train.layer_weight_decay
    decays = [
        layer_wd if layer_wd is not None and name.startswith("layers.") else train.weight_decay
        for name, _ in named_params
    ]
    params = [p for _, p in named_params]
    cosine = train.epochs if train.lr_schedule == "cosine" else 0
    return Optimizer(params, train.optimizer, lr=train.lr, weight_decay=decays, cosine_steps=cosine)


def chunk_loss(
    logits: torch.Tensor, labels: torch.Tensor, train_mask: torch.Tensor, num_train: int
) -> torch.Tensor:
    """Cross-entropy summed over the training rows, divided by the global training count.

    Summing per chunk and dividing by the global count makes the sum over chunks equal the
    full-graph mean loss; the ``0 * logits.sum()`` term keeps the graph connected when a chunk
    holds no training node, so its backward still runs (and still talks to its peers).

    Example:
        >>> loss = chunk_loss(logits, y[ids], train_mask[ids], num_train=int(train_mask.sum()))
    """
    ce = F.cross_entropy(logits[train_mask], labels[train_mask], reduction="sum")
    return ce / max(num_train, 1) + 0.0 * logits.sum()


def correct_counts(
    logits: torch.Tensor, labels: torch.Tensor, masks: List[torch.Tensor]
) -> torch.Tensor:
    """float64 [2 * len(masks)]: (correct, total) for each node mask (sums over ranks add up).

    Example:
        >>> accuracies(correct_counts(logits, y, split_masks(n, dataset)))["test_acc"]
    """
    pred = logits.argmax(-1)
    out = []
    for m in masks:
        out += [float((pred[m] == labels[m]).sum()), float(m.sum())]
    return torch.tensor(out, dtype=torch.float64)


def split_masks(num_nodes: int, dataset: Any) -> List[torch.Tensor]:
    """Boolean node masks of the train, val and test splits.

    Example:
        >>> train_mask, val_mask, test_mask = split_masks(ds.graph.num_nodes, ds)
    """
    masks = []
    for name in ("train_idx", "val_idx", "test_idx"):
        m = torch.zeros(num_nodes, dtype=torch.bool)
        m[getattr(dataset, name)] = True
        masks.append(m)
    return masks


def dropout_seed(seed: int, epoch: int, chunk: int, stage: int, group: int) -> int:
    """The dropout seed of one (epoch, chunk, stage, group): independent of the schedule, so
    GPipe and 1F1B draw the same masks.

    Example:
        >>> seed_dropout(dropout_seed(0, epoch=3, chunk=1, stage=2, group=0))
    """
    x = 0
    for v in (seed, epoch, chunk, stage, group):
        x = (x * 1_000_003 + int(v) + 1) % (2**62)
    return x


def seed_dropout(seed: int, device: Optional[torch.device] = None) -> None:
    """Seed the generator that dropout on ``device`` draws from (default: the CPU).

    On the CPU only torch's default CPU generator: ``torch.manual_seed`` seeds every
    accelerator too, and in a process where CUDA is not initialised (every CPU rank, whether or
    not torch was built with CUDA) that queues the seeding with a captured
    ``traceback.format_stack``: 0.13-0.28 ms a call in a quiet process, ~1.5% of a GNNPipe rank's samples at two calls per
    chunk (py-spy, ``mini``, 32 layers). On an accelerator, ``torch.manual_seed`` as before
    (initialised there, it seeds at once). The dropout masks are the same bits either way.

    Example:
        >>> seed_dropout(dropout_seed(0, epoch=3, chunk=1, stage=2, group=0))
    """
    if device is None or torch.device(device).type == "cpu":
        torch.default_generator.manual_seed(int(seed))
    else:
        torch.manual_seed(int(seed))


def accuracies(counts: torch.Tensor) -> Dict[str, float]:
    """{"train_acc", "val_acc", "test_acc"} from ``correct_counts`` sums.

    Example:
        >>> accuracies(torch.tensor([3.0, 4, 1, 2, 0, 1]))["train_acc"]
        0.75
    """
    out = {}
    for i, name in enumerate(("train_acc", "val_acc", "test_acc")):
        c, n = float(counts[2 * i]), float(counts[2 * i + 1])
        out[name] = c / n if n else float("nan")
    return out


# ---------------------------------------------------------------------- reference training
def train_single(
    dataset: Any, model: Any = None, train: Any = None, techniques: Any = None
) -> Dict[str, Any]:
    """Full-graph training in this process: the reference for every distributed mode.

    Returns ``{"epochs": [{"epoch", "loss", "train_acc", "val_acc", "test_acc", "seconds"}],
    "model": GNNStack}``; with ``train.record`` also ``"logits"`` (per epoch, training forward)
    and ``"grads"`` (first epoch, by parameter name). Of the ``techniques`` only ``clip_norm``
    applies here (the others concern histories).

    Example:
        >>> out = train_single(ds, {"kind": "gcnii", "num_layers": 16}, {"epochs": 50})
        >>> out["epochs"][-1]["test_acc"]
    """
    mcfg = coerce(ModelConfig, model)
    tcfg = coerce(TrainConfig, train)
    clip = coerce(Techniques, techniques).clip_norm
    set_threads(tcfg.threads)
    net = build_model(mcfg, dataset.x.shape[1], dataset.num_classes, tcfg.seed)
    adj = net.prepare_graph(dataset.graph)
    n = adj.num_nodes
    masks = split_masks(n, dataset)
    num_train = int(masks[0].sum())
    opt = make_optimizer(list(net.named_parameters()), tcfg)
    out: Dict[str, Any] = {"epochs": [], "model": net, "logits": {}, "grads": {}}
    for epoch in range(1, tcfg.epochs + 1):
        t0 = time.perf_counter()
        net.train()
        opt.zero_grad()
        seed_dropout(dropout_seed(tcfg.seed, epoch, 0, 0, 0))
        logits = net(adj, model_input(dataset.x))
        loss = chunk_loss(logits, dataset.y, masks[0], num_train)
        loss.backward()
        if tcfg.record:
            out["logits"][epoch] = logits.detach().clone()
            if epoch == 1:
                out["grads"] = {k: p.grad.clone() for k, p in net.named_parameters()}
        if clip is not None:
            params = list(net.parameters())
            clip_grads(params, clip, grad_sq_norm(params) ** 0.5)
        opt.step()
        row = {"epoch": epoch, "loss": float(loss.detach()), "seconds": time.perf_counter() - t0}
        if tcfg.eval_every and epoch % tcfg.eval_every == 0:
            net.eval()
            with torch.no_grad():
                row.update(
                    accuracies(correct_counts(net(adj, model_input(dataset.x)), dataset.y, masks))
                )
        out["epochs"].append(row)
    return out

"""Temporal link prediction on a user-item stream: GraphSAGE with PyG's LinkNeighborLoader API
(``time_attr``, ``edge_label_time``) running on gnnsys, evaluated TGB style by MRR.

The data is ``gnnsys.datasets.synthetic("mini-stream")`` (tgbl-wiki's sizes) as a plain PyG
``Data(x, edge_index, time, edge_attr)``, split by time 70/15/15. No future information:

- every batch's subgraphs hold only edges strictly older than the interaction being predicted
  (``edge_label_time = t - 1`` on integer seconds, so the edge itself and its same-second ties
  stay hidden), through gnnsys's temporal sampler (``time_attr="time"``, edge-level times);
- training walks the train edges in time order (``shuffle=False``); the model never sees val
  or test interactions as supervision; node features are static;
- val/test: each positive (user, item, t) is ranked against ``--num-negatives`` random items
  (uniform; a draw that hits the positive's own item is left out of its ranking), every
  candidate scored with a subgraph bounded by the same time; MRR over an evenly spaced subset of
  ``--eval-edges`` positives of each split.

    python examples/temporal_link_prediction.py --dataset mini-stream --epochs 1
    python examples/temporal_link_prediction.py --dataset tiny-stream --max-batches 2

On a busy 2-core VM one mini-stream epoch takes minutes; evaluation dominates (each positive
brings 102 subgraphs).

Prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, Iterator, List, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import SAGEConv

import gnnsys
from gnnsys.loaders.link import NegativeSampling
from gnnsys.loaders.pyg import LinkNeighborLoader  # was: from torch_geometric.loader import ...

FANOUT = [10, 10]


def make_loader(
    ds: Any,
    data: Any,
    split: str,
    *,
    batch_size: int,
    num_negatives: int,
    seed: int,
    max_edges: Optional[int] = None,
) -> LinkNeighborLoader:
    """A chronological LinkNeighborLoader over ``split``'s interactions: triplets of (user, item,
    ``num_negatives`` random items), every subgraph bounded by the interaction's time - 1."""
    index, t = ds.split(split)
    if max_edges is not None and max_edges < t.numel():
        keep = torch.linspace(0, t.numel() - 1, max_edges).round().long().unique()
        index, t = index[:, keep], t[keep]
    neg = NegativeSampling("triplet", num_negatives, dst_weight=ds.item_mask.float())
    return LinkNeighborLoader(
        data,
        num_neighbors=FANOUT,
        edge_label_index=index,
        edge_label_time=t - 1,  # strictly older: the edge itself is not visible
        time_attr="time",
        neg_sampling=neg,
        batch_size=batch_size,
        shuffle=False,  # time order
        seed=seed,
    )


def iter_batches(
    dataset: str = "tiny-stream",
    split: str = "train",
    *,
    batch_size: int = 64,
    num_negatives: int = 1,
    seed: int = 0,
    max_batches: Optional[int] = None,
) -> Iterator[Any]:
    """The batches the example trains or evaluates on (the hook the tests check for leaks):
    each carries ``seed_time`` (bound per positive), ``input_id`` and the sampled ``time``."""
    ds = gnnsys.datasets.synthetic(dataset, seed=0)
    loader = make_loader(ds, ds.to_pyg(), split, batch_size=batch_size,
                         num_negatives=num_negatives, seed=seed)  # fmt: skip
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            return
        yield batch


class LinkSAGE(nn.Module):
    """Two SAGE layers over [node features, a learned node embedding]; a link's score is the
    dot product of its endpoints' outputs."""

    def __init__(self, num_nodes: int, in_dim: int, hidden: int, emb_dim: int = 32) -> None:
        super().__init__()
        self.emb = nn.Embedding(num_nodes, emb_dim)
        self.conv1 = SAGEConv(in_dim + emb_dim, hidden)
        self.conv2 = SAGEConv(hidden, hidden)

    def forward(self, batch: Any) -> torch.Tensor:
        h = torch.cat([batch.x, self.emb(batch.n_id)], dim=-1)
        h = F.relu(self.conv1(h, batch.edge_index))
        return self.conv2(h, batch.edge_index)


def scores(model: LinkSAGE, batch: Any) -> tuple:
    """(positive scores [B], negative scores [B, K]) of a triplet batch."""
    h = model(batch)
    src = h[batch.src_index]
    pos = (src * h[batch.dst_pos_index]).sum(-1)
    neg_index = batch.dst_neg_index.view(src.shape[0], -1)
    neg = (src.unsqueeze(1) * h[neg_index]).sum(-1)
    return pos, neg


def train_epoch(model: LinkSAGE, loader: Any, opt: Any, max_batches: Optional[int]) -> Dict:
    """One chronological pass: binary cross-entropy of positives against negatives."""
    model.train()
    total, count = 0.0, 0
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        pos, neg = scores(model, batch)
        loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
        loss = loss + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
        count += 1
    return {"loss": total / max(count, 1), "batches": count}


@torch.no_grad()
def evaluate(model: LinkSAGE, loader: Any, max_batches: Optional[int]) -> float:
    """TGB-style MRR: each positive's reciprocal rank among its negatives (negatives equal to
    the positive's item are left out; ties count half)."""
    model.eval()
    ranks: List[torch.Tensor] = []
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        pos, neg = scores(model, batch)
        neg_ids = batch.n_id[batch.dst_neg_index.view(pos.shape[0], -1)]
        valid = neg_ids != batch.n_id[batch.dst_pos_index].unsqueeze(1)
        above = ((neg > pos.unsqueeze(1)) & valid).sum(1)
        ties = ((neg == pos.unsqueeze(1)) & valid).sum(1)
        ranks.append(1.0 + above + 0.5 * ties)
    if not ranks:
        raise ValueError("no evaluation batch: raise --max-batches or --eval-edges")
    return float((1.0 / torch.cat(ranks)).mean())


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mini-stream",
                   choices=["tiny-stream", "mini-stream", "stream"])  # fmt: skip
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-batches", type=int, default=None,
                   help="cap on batches per training epoch and per evaluation split")  # fmt: skip
    p.add_argument("--num-negatives", type=int, default=100, help="per positive, val/test")
    p.add_argument("--eval-edges", type=int, default=1000, help="positives per val/test split")
    p.add_argument(
        "--eval-batch-size",
        type=int,
        default=50,
        help="positives per evaluation batch (each brings num_negatives + 2 subgraphs)",
    )
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.005)
    args = p.parse_args(argv)
    for name in (
        "epochs",
        "batch_size",
        "eval_batch_size",
        "num_negatives",
        "eval_edges",
        "hidden",
    ):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.max_batches is not None and args.max_batches < 1:
        p.error("--max-batches must be >= 1")
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    ds = gnnsys.datasets.synthetic(args.dataset, seed=0)  # fixed data; --seed: model, loaders
    data = ds.to_pyg()  # a plain PyG Data(x, edge_index, time, edge_attr)
    train_loader = make_loader(
        ds, data, "train", batch_size=args.batch_size, num_negatives=1, seed=args.seed
    )
    model = LinkSAGE(ds.num_nodes, data.num_features, args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    history = []
    for _ in range(args.epochs):
        history.append(train_epoch(model, train_loader, opt, args.max_batches))
    t1 = time.perf_counter()
    mrr = {}
    for split in ("val", "test"):
        loader = make_loader(ds, data, split, batch_size=args.eval_batch_size,
                             num_negatives=args.num_negatives, max_edges=args.eval_edges,
                             seed=args.seed)  # fmt: skip
        mrr[split] = evaluate(model, loader, args.max_batches)
    result = {
        "example": "temporal_link_prediction",
        "dataset": args.dataset,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "fanout": FANOUT,
        "train_loss": [round(h["loss"], 4) for h in history],
        "train_batches": sum(h["batches"] for h in history),
        "eval_batch_size": args.eval_batch_size,
        "num_negatives": args.num_negatives,
        "eval_edges": args.eval_edges,
        "val_mrr": round(mrr["val"], 4),
        "test_mrr": round(mrr["test"], 4),
        "random_mrr": round(_random_mrr(args.num_negatives), 4),
        "train_seconds": round(t1 - t0, 2),
        "eval_seconds": round(time.perf_counter() - t1, 2),
    }
    print(json.dumps(result), flush=True)
    return result


def _random_mrr(k: int) -> float:
    """The expected MRR of a random ranking among k negatives: the mean of 1/rank, rank 1..k+1."""
    return sum(1.0 / r for r in range(1, k + 2)) / (k + 1)


if __name__ == "__main__":
    main()

"""gnnsys.pipeline_parallel.model: the stack in its pipeline shape (build_model), block exactness,
parameter ownership, optimizer, reference training."""

import pytest
import torch

from gnnsys.datasets import Dataset
from gnnsys.graph import Graph
from gnnsys.pipeline_parallel.chunks import ChunkSampler
from gnnsys.pipeline_parallel.config import ModelConfig, TrainConfig
from gnnsys.pipeline_parallel.model import (
    Optimizer,
    build_model,
    chunk_loss,
    dropout_seed,
    make_optimizer,
    owned_parameters,
    seed_dropout,
    stage_parameters,
    train_single,
)

KINDS = ["gcn", "gcnii", "sage", "gat"]


def _toy(n=80, classes=4, feat=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    same = y[:, None] == y[None, :]
    prob = torch.where(same, torch.tensor(0.15), torch.tensor(0.01))
    a = torch.triu(torch.rand(n, n, generator=g) < prob, 1)
    src, dst = torch.nonzero(a, as_tuple=True)
    graph = Graph.from_edge_index(torch.stack([src, dst]), n, undirected=True, dedupe=True)
    x = torch.randn(n, feat, generator=g) + 2 * torch.nn.functional.one_hot(y, feat).float()
    perm = torch.randperm(n, generator=g)
    return Dataset(
        "toy", graph, x, y, perm[: n // 2], perm[n // 2 : 3 * n // 4], perm[3 * n // 4 :], classes
    )


def test_gcn_weights_are_symmetric_normalised_with_self_loops():
    ds = _toy()
    model = build_model(ModelConfig(kind="gcn", hidden=4, num_layers=1), 6, 4, seed=0)
    adj = model.prepare_graph(ds.graph)
    n = ds.graph.num_nodes
    a = ds.graph.to_scipy().toarray() != 0
    a = torch.tensor(a, dtype=torch.float64) + torch.eye(n, dtype=torch.float64)
    d = a.sum(0).pow(-0.5)
    want = d[:, None] * a * d[None, :]
    got = torch.tensor(adj.to_scipy().toarray())
    assert torch.allclose(got, want.to(got.dtype), atol=1e-6)
    sage = build_model(ModelConfig(kind="sage", hidden=4, num_layers=1), 6, 4, seed=0)
    assert sage.prepare_graph(ds.graph) is ds.graph


@pytest.mark.parametrize("kind", KINDS)
def test_layer_on_chunk_blocks_equals_full_graph_rows(kind):
    # With exact inputs for every source, a layer over each chunk block reproduces the rows of
    # the full-graph layer: the blocks carry every incoming edge and global normalisation.
    ds = _toy()
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(kind=kind, hidden=8, num_layers=2, heads=2), 6, 4, seed=0
    ).eval()
    adj = model.prepare_graph(ds.graph)
    h = model.embed(ds.x)
    full = model.layer(1, adj, h, h)
    chunk_of = torch.arange(ds.graph.num_nodes) % 3
    sampler = ChunkSampler(adj, chunk_of, order=[1, 2, 0])
    for c in range(3):
        block = sampler.block(c)
        out = model.layer(1, block, h[block.nodes], h[block.inner_nodes])
        assert torch.allclose(out, full[block.inner_nodes], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_forward_is_embed_layers_head(kind):
    ds = _toy()
    model = build_model(ModelConfig(kind=kind, hidden=8, num_layers=3, heads=2), 6, 4, seed=1)
    model.eval()
    adj = model.prepare_graph(ds.graph)
    h = h0 = model.embed(ds.x)
    for i in range(3):
        h = model.layer(i, adj, h, h0)
    assert torch.equal(model(adj, ds.x), model.head(h))
    again = build_model(ModelConfig(kind=kind, hidden=8, num_layers=3, heads=2), 6, 4, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


def test_owned_parameters_split_the_model():
    model = build_model(ModelConfig(kind="gcnii", hidden=4, num_layers=4), 6, 3, seed=0)
    ranges = [range(0, 1), range(1, 3), range(3, 4)]
    seen = []
    for s, r in enumerate(ranges):
        seen += [n for n, _ in owned_parameters(model, r, first=s == 0, last=s == 2)]
    assert sorted(seen) == sorted(n for n, _ in model.named_parameters())
    first = [n for n, _ in owned_parameters(model, ranges[0], first=True, last=False)]
    assert any(n.startswith("input_proj.") for n in first) and "layers.0.weight1" in first
    # GCNII stages recompute h0 and so hold a replica of the input projection; GCN's do not
    mid = [n for n, _ in stage_parameters(model, ranges[1], first=False, last=False)]
    assert sorted(mid) == sorted(
        [
            "layers.1.weight1",
            "layers.1.bias",
            "layers.2.weight1",
            "layers.2.bias",
            "input_proj.bias",
            "input_proj.weight",
        ]
    )
    gcn = build_model(ModelConfig(kind="gcn", hidden=4, num_layers=4), 6, 3, seed=0)
    mid = [n for n, _ in stage_parameters(gcn, ranges[1], first=False, last=False)]
    assert not any(n.startswith("input_proj.") for n in mid)


@pytest.mark.parametrize("kind, wd", [("adam", 0.0), ("adam", 0.01), ("sgd", 0.05)])
def test_optimizer_matches_torch_optim(kind, wd):
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    ours = Optimizer(a, kind, lr=0.1, weight_decay=wd)
    cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
    ref = cls(b, lr=0.1, weight_decay=wd)
    for step in range(4):
        for ps in (a, b):
            loss = (ps[0].sum(0) * ps[1]).pow(2).sum() + step
            for p in ps:
                p.grad = None
            loss.backward()
        ours.step()
        ref.step()
    for p, q in zip(a, b):
        assert torch.allclose(p, q, atol=1e-6)


def test_optimizer_per_parameter_weight_decay_matches_param_groups():
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    ours = Optimizer(a, "adam", lr=0.05, weight_decay=[0.3, 0.0])
    ref = torch.optim.Adam(
        [{"params": [b[0]], "weight_decay": 0.3}, {"params": [b[1]], "weight_decay": 0.0}],
        lr=0.05,
    )
    for _ in range(5):
        for ps in (a, b):
            for p in ps:
                p.grad = None
            (ps[0].sum(0) * ps[1]).pow(2).sum().backward()
        ours.step()
        ref.step()
    for p, q in zip(a, b):
        assert torch.allclose(p, q, atol=1e-6)
    with pytest.raises(ValueError, match="weight_decay has 1 entries for 2 parameters"):
        Optimizer(a, "adam", weight_decay=[0.1])


def test_cosine_schedule_matches_torch_scheduler():
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(4, 3))]
    b = [torch.nn.Parameter(a[0].detach().clone())]
    ours = make_optimizer(
        [("layers.0.weight", a[0])], TrainConfig(epochs=6, lr=0.1, lr_schedule="cosine")
    )
    ref = torch.optim.Adam(b, lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max=6)
    for _ in range(6):
        for ps in (a, b):
            ps[0].grad = None
            ps[0].pow(3).sum().backward()
        ours.step()
        ref.step()
        sched.step()
        assert ours.lr == pytest.approx(ref.param_groups[0]["lr"], abs=1e-12)
    assert torch.allclose(a[0], b[0], atol=1e-6)
    assert make_optimizer([("w", a[0])], TrainConfig(lr=0.1)).cosine_steps == 0


def test_layer_weight_decay_goes_to_the_graph_layers_only():
    net = build_model(ModelConfig(kind="gcnii", hidden=4, num_layers=3), 6, 3, seed=0)
    named = list(net.named_parameters())
    opt = make_optimizer(named, TrainConfig(weight_decay=5e-4, layer_weight_decay=0.01))
    by_name = {name: wd for (name, _), wd in zip(named, opt.weight_decay)}
    assert {n for n, wd in by_name.items() if wd == 0.01} == {
        n for n in by_name if n.startswith("layers.")
    }
    assert {by_name[n] for n in by_name if not n.startswith("layers.")} == {5e-4}
    # Unset: every parameter gets weight_decay, as before.
    assert set(make_optimizer(named, TrainConfig(weight_decay=5e-4)).weight_decay) == {5e-4}


def test_chunk_losses_sum_to_full_mean():
    torch.manual_seed(0)
    logits = torch.randn(10, 3, requires_grad=True)
    y = torch.randint(0, 3, (10,))
    mask = torch.rand(10) < 0.6
    full = torch.nn.functional.cross_entropy(logits[mask], y[mask])
    n = int(mask.sum())
    parts = sum(chunk_loss(logits[i : i + 5], y[i : i + 5], mask[i : i + 5], n) for i in (0, 5))
    assert torch.allclose(parts, full)
    empty = chunk_loss(logits[:2], y[:2], torch.zeros(2, dtype=torch.bool), n)
    empty.backward()  # still connected to the graph: a chunk without training nodes backprops
    assert logits.grad is not None


@pytest.mark.parametrize("kind", ["gcnii", "sage"])
def test_train_single_learns_and_is_deterministic(kind):
    ds = _toy()
    model = ModelConfig(kind=kind, hidden=16, num_layers=4, dropout=0.2)
    train = TrainConfig(epochs=30, lr=0.02, eval_every=30)
    a = train_single(ds, model, train)
    b = train_single(ds, model, train)
    assert [r["loss"] for r in a["epochs"]] == [r["loss"] for r in b["epochs"]]
    assert a["epochs"][-1]["loss"] < 0.6 * a["epochs"][0]["loss"]
    assert a["epochs"][-1]["test_acc"] > 0.6


def test_same_result_whatever_the_thread_count():
    ds = _toy()
    model = ModelConfig(kind="gcnii", hidden=16, num_layers=4, dropout=0.3)
    runs = [train_single(ds, model, TrainConfig(epochs=3, threads=t)) for t in (1, 2)]
    assert [r["loss"] for r in runs[0]["epochs"]] == [r["loss"] for r in runs[1]["epochs"]]


def test_errors():
    model = build_model(ModelConfig(kind="gcnii", hidden=4, num_layers=1), 6, 3, seed=0)
    with pytest.raises(TypeError, match="graph must be a gnnsys.Graph"):
        model.prepare_graph(torch.zeros(2, 3))
    ds = _toy()
    adj = model.prepare_graph(ds.graph)
    with pytest.raises(ValueError, match="GCNII layers need h0"):
        model.layer(0, adj, torch.zeros(ds.graph.num_nodes, 4))
    with pytest.raises(ValueError, match="kind must be 'adam' or 'sgd'"):
        Optimizer([], "rmsprop")


def test_optimizer_state_round_trip_continues_identically():
    def params():
        g = torch.Generator().manual_seed(1)
        return [torch.nn.Parameter(torch.randn(3, 2, generator=g)) for _ in range(2)]

    def step(opt, ps, k):
        for p in ps:
            p.grad = torch.full_like(p, 0.1 * k)
        opt.step()

    a_ps, b_ps = params(), params()
    a = Optimizer(a_ps, "adam", lr=0.05, cosine_steps=5)
    for k in (1, 2):
        step(a, a_ps, k)
    b = Optimizer(b_ps, "adam", lr=0.05, cosine_steps=5)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for p, q in zip(b_ps, a_ps):
            p.copy_(q)
    step(a, a_ps, 3)
    step(b, b_ps, 3)
    assert all(torch.equal(p, q) for p, q in zip(a_ps, b_ps)) and a.lr == b.lr
    with pytest.raises(ValueError, match="optimizer state holds 2 moments for 1 parameters"):
        Optimizer(a_ps[:1], "adam", lr=0.05).load_state_dict(a.state_dict())


def test_seed_dropout_draws_torch_manual_seeds_masks_without_queueing_a_traceback(monkeypatch):
    # torch.manual_seed, CUDA not initialised, queues every GPU's seeding with a captured stack
    # (format_stack: ~0.1-0.3 ms a call, twice per chunk in a GNNPipe rank); seed_dropout on the
    # CPU seeds the CPU generator alone, and dropout then draws the same masks.
    from gnnsys.nn.dropout import relu_dropout

    x = torch.randn(64, 16)
    seed = dropout_seed(3, epoch=2, chunk=1, stage=0, group=0)
    torch.manual_seed(seed)
    want = relu_dropout(x, 0.5, True)
    calls = []
    monkeypatch.setattr("traceback.format_stack", lambda *a, **k: calls.append(1) or [])
    seed_dropout(seed)
    got = relu_dropout(x, 0.5, True)
    seed_dropout(seed, torch.device("cpu"))
    again = relu_dropout(x, 0.5, True)
    assert torch.equal(got, want) and torch.equal(again, want)
    assert calls == []

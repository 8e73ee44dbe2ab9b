"""Tests for the DGL drop-in (gnnsys.loaders.dgl): block structure and DGL semantics, features,
determinism, DDP sharding, link prediction, bad input, and (where dgl imports) DGL itself."""

import pytest
import torch

from gnnsys import Graph
from gnnsys.block import EID, NID, Block
from gnnsys.loaders import dgl as dl
from gnnsys.loaders.base import SampleKey

N, E, F = 300, 2400, 8
# gnnsys Blocks always; real DGL blocks too where dgl imports (the torch 2.2 peer env),
# reported as skipped elsewhere
BLOCK_TYPES = [
    "gnnsys",
    pytest.param(
        "dgl",
        marks=pytest.mark.skipif(dl._dgl() is None, reason="dgl does not import beside this torch"),
    ),
]


@pytest.fixture(params=BLOCK_TYPES)
def block_type(request):
    return request.param


@pytest.fixture(scope="module")
def graph():
    gen = torch.Generator().manual_seed(0)
    ei = torch.randint(0, N, (2, E), generator=gen)
    g = Graph.from_edge_index(ei, N)
    g.ndata["feat"] = torch.randn(N, F, generator=gen)
    g.ndata["label"] = torch.randint(0, 4, (N,), generator=gen)
    # edata lives in CSC order; build it from per-edge-id values so tests can check by id
    g.edata["w"] = torch.rand(E, generator=gen)[g.edge_ids]
    g.edata["keep"] = g.edge_ids % 3 != 0
    g.edata["p"] = (g.edge_ids % 2).double()  # odd edge ids only
    g.ei = ei  # the original edge list, by edge id (test-only attribute)
    return g


def test_data_with_a_row_count_other_than_the_graph_s_is_refused(graph):
    # DGL refuses it when the data is set; a Graph's ndata/edata are plain dicts, so the loader
    # checks every table it is asked to fetch before a gather could read past its end.
    graph.ndata["short"] = torch.zeros(N - 1)
    graph.edata["long"] = torch.zeros(E + 1)
    try:
        with pytest.raises(
            ValueError,
            match=rf"prefetch_node_feats names 'short', but ndata\['short'\] has {N - 1} rows "
            rf"and the graph has {N} nodes: one row per node",
        ):
            dl.DataLoader(
                graph, torch.arange(4), dl.NeighborSampler([2], prefetch_node_feats=["short"])
            )
        with pytest.raises(ValueError, match=rf"edata\['long'\] has {E + 1} rows .* {E} edges"):
            dl.DataLoader(
                graph, torch.arange(4), dl.NeighborSampler([2], prefetch_edge_feats=["long"])
            )
    finally:
        del graph.ndata["short"], graph.edata["long"]


def _sampler(fanouts=(3, 4), **kw):
    kw.setdefault("prefetch_node_feats", ["feat"])
    kw.setdefault("prefetch_labels", ["label"])
    return dl.NeighborSampler(list(fanouts), **kw)


def _in_degree(g):
    return g.in_degrees()


def _check_batch(g, fanouts, input_nodes, output_nodes, blocks, replace=False):
    """DGL's invariants; ``fanouts`` in DGL order (input layer first)."""
    assert len(blocks) == len(fanouts)
    assert torch.equal(blocks[0].srcdata[NID], input_nodes)
    assert torch.equal(blocks[-1].dstdata[NID], output_nodes)
    deg = _in_degree(g)
    for i, b in enumerate(blocks):
        assert b.is_block and (isinstance(b, Block) or type(b).__module__.startswith("dgl"))
        src_ids, dst_ids = b.srcdata[NID], b.dstdata[NID]
        # destination nodes are the first source nodes
        assert torch.equal(src_ids[: b.num_dst_nodes()], dst_ids)
        assert src_ids.unique().numel() == src_ids.numel()
        if i + 1 < len(blocks):  # layer i's outputs are layer i+1's inputs
            assert torch.equal(dst_ids, blocks[i + 1].srcdata[NID])
        # every destination is (re)sampled with the layer's fanout (DGL semantics)
        f = fanouts[i]
        want = deg[dst_ids] if f < 0 else (torch.clamp(deg[dst_ids], max=f))
        if replace and f >= 0:
            want = torch.where(deg[dst_ids] > 0, torch.full_like(want, f), 0)
        assert torch.equal(b.in_degrees(), want)
        # every edge exists in the graph, with the right global edge id
        u, v = b.edges()
        eid = b.edata[EID]
        assert torch.equal(g.ei[0, eid], src_ids[u]) and torch.equal(g.ei[1, eid], dst_ids[v])
        if not replace:
            assert eid.unique().numel() == eid.numel()
        if isinstance(b, Block):  # the CSC the nn layers read agrees with edges()
            indptr, indices, ns, nd = b.adj_csc()
            assert (ns, nd) == (b.num_src_nodes(), b.num_dst_nodes())
            assert torch.equal(indices.long(), u)


def test_blocks_follow_dgl_semantics(graph, block_type):
    fanouts = [3, 4]
    loader = dl.DataLoader(
        graph,
        torch.arange(100),
        _sampler(fanouts),
        batch_size=32,
        shuffle=True,
        seed=1,
        block_type=block_type,
    )
    seen = []
    for input_nodes, output_nodes, blocks in loader:
        _check_batch(graph, fanouts, input_nodes, output_nodes, blocks)
        assert torch.equal(blocks[0].srcdata["feat"], graph.ndata["feat"][input_nodes])
        assert torch.equal(blocks[-1].dstdata["label"], graph.ndata["label"][output_nodes])
        # dstdata of the input layer views the first rows of its srcdata features
        b0 = blocks[0]
        assert torch.equal(b0.dstdata["feat"], b0.srcdata["feat"][: b0.num_dst_nodes()])
        seen.append(output_nodes)
    assert len(loader) == 4 and len(seen) == 4
    assert torch.equal(torch.cat(seen).sort().values, torch.arange(100))


def test_replace_and_three_layers(graph, block_type):
    fanouts = [2, 3, 5]
    s = _sampler(fanouts, replace=True)
    loader = dl.DataLoader(graph, torch.arange(50), s, batch_size=25, seed=3, block_type=block_type)
    for batch in loader:
        _check_batch(graph, fanouts, *batch, replace=True)


def test_full_neighbor_matches_exact_neighbourhood(graph, block_type):
    s = dl.MultiLayerFullNeighborSampler(2)
    seeds = torch.tensor([5, 17, 42])
    input_nodes, output_nodes, blocks = next(
        iter(dl.DataLoader(graph, seeds, s, batch_size=3, block_type=block_type))
    )
    _check_batch(graph, [-1, -1], input_nodes, output_nodes, blocks)
    src, dst = graph.ei
    hop1 = set(seeds.tolist()) | set(src[torch.isin(dst, seeds)].tolist())
    hop2 = hop1 | set(src[torch.isin(dst, torch.tensor(sorted(hop1)))].tolist())
    assert set(blocks[1].srcdata[NID].tolist()) == hop1
    assert set(blocks[0].srcdata[NID].tolist()) == hop2
    assert blocks[1].num_edges() == int(torch.isin(dst, seeds).sum())


def test_edge_feats_and_lazy_parent_columns(graph, block_type):
    s = _sampler(prefetch_edge_feats=["w"])
    _, _, blocks = next(
        iter(dl.DataLoader(graph, torch.arange(20), s, batch_size=20, block_type=block_type))
    )
    w_by_id = torch.empty(E)
    w_by_id[graph.edge_ids] = graph.edata["w"]
    for b in blocks:
        assert torch.equal(b.edata["w"], w_by_id[b.edata[EID]])
    # columns not prefetched are still reachable, gathered on first use (as DGL's blocks)
    b = blocks[-1]
    assert torch.equal(b.srcdata["label"], graph.ndata["label"][b.srcdata[NID]])
    assert torch.equal(b.edata["keep"], (b.edata[EID] % 3 != 0))
    with b.local_scope():
        b.srcdata["h"] = torch.ones(b.num_src_nodes(), 2)
    assert "h" not in b.srcdata


def test_deterministic_given_seed(graph):
    def run(seed, workers=0):
        loader = dl.DataLoader(
            graph,
            torch.arange(60),
            _sampler(),
            batch_size=16,
            shuffle=True,
            seed=seed,
            num_workers=workers,
        )
        return [(i.clone(), [b.edata[EID] for b in bl]) for i, _, bl in loader]

    a, b, c = run(7, workers=1), run(7, workers=2), run(8)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b))
    assert all(torch.equal(p, q) for x, y in zip(a, b) for p, q in zip(x[1], y[1]))
    assert not all(x[0].numel() == y[0].numel() and torch.equal(x[0], y[0]) for x, y in zip(a, c))


def test_seed_from_torch_rng_and_epochs_differ(graph):
    torch.manual_seed(123)
    la = dl.DataLoader(graph, torch.arange(40), _sampler(), batch_size=40, shuffle=True)
    torch.manual_seed(123)
    lb = dl.DataLoader(graph, torch.arange(40), _sampler(), batch_size=40, shuffle=True)
    ea1, ea2 = next(iter(la))[1], next(iter(la))[1]
    eb1 = next(iter(lb))[1]
    assert torch.equal(ea1, eb1) and not torch.equal(ea1, ea2)


def test_drop_last_and_len(graph):
    loader = dl.DataLoader(graph, torch.arange(50), _sampler(), batch_size=16, drop_last=True)
    sizes = [o.numel() for _, o, _ in loader]
    assert sizes == [16, 16, 16] and len(loader) == 3
    loader = dl.DataLoader(graph, torch.arange(50), _sampler(), batch_size=16)
    assert [o.numel() for _, o, _ in loader] == [16, 16, 16, 2] and len(loader) == 4


def test_mask_and_prob(graph, block_type):
    for kw, ok in (({"mask": "keep"}, lambda e: e % 3 != 0), ({"prob": "p"}, lambda e: e % 2 == 1)):
        s = _sampler([-1, 5], **kw)
        loader = dl.DataLoader(graph, torch.arange(100), s, batch_size=50, block_type=block_type)
        for _, _, blocks in loader:
            for b in blocks:
                assert bool(ok(b.edata[EID]).all())
                assert b.num_edges() > 0
        # blocks[0] has fanout -1: every allowed in-edge of its destinations is there, once
        _, _, blocks = list(loader)[0]  # whole epoch: no abandoned worker threads
        b0 = blocks[0]
        allowed = ok(torch.arange(E)) & torch.isin(graph.ei[1], b0.dstdata[NID])
        got = b0.edata[EID]
        assert sorted(got.tolist()) == torch.nonzero(allowed).flatten().tolist()


def test_standalone_sample(graph):
    s = _sampler([2, 2])
    input_nodes, output_nodes, blocks = s.sample(graph, torch.tensor([1, 2, 3]))
    _check_batch(graph, [2, 2], input_nodes, output_nodes, blocks)
    drop = blocks[-1].edata[EID][:1]
    _, _, blocks2 = s.sample(graph, torch.tensor([1, 2, 3]), exclude_eids=drop)
    assert not bool(torch.isin(blocks2[-1].edata[EID], drop).any())


def test_standalone_edge_prediction_sample(graph):
    # DGL's EdgePredictionSampler.sample(g, seed_edges): the DataLoader's batch without one
    k = 2
    neg = dl.negative_sampler.Uniform(k)
    s = dl.as_edge_prediction_sampler(_sampler([2, 2]), exclude="self", negative_sampler=neg)
    seeds = torch.tensor([0, 5, 9])
    input_nodes, pair, neg_pair, blocks = s.sample(graph, seeds, seed=3)
    ids = pair.ndata[NID]
    assert torch.equal(blocks[-1].dstdata[NID], ids) and torch.equal(blocks[0].srcdata[NID],
                                                                      input_nodes)  # fmt: skip
    u, v = pair.edges()
    assert torch.equal(pair.edata[EID], seeds)
    assert torch.equal(ids[u], graph.ei[0, seeds]) and torch.equal(ids[v], graph.ei[1, seeds])
    assert neg_pair.num_edges() == k * seeds.numel()
    for b in blocks:  # exclude="self": the seed edges carry no messages
        assert not bool(torch.isin(b.edata[EID], seeds).any())
    again = s.sample(graph, seeds, seed=3)
    assert torch.equal(again[0], input_nodes)  # the same draws for the same seed
    plain = dl.as_edge_prediction_sampler(_sampler([2]))
    assert len(plain.sample(graph, seeds)) == 3  # no negative sampler: no negative graph
    with pytest.raises(ValueError, match="seed_edges is empty: no edge ids"):
        plain.sample(graph, torch.tensor([], dtype=torch.long))
    with pytest.raises(IndexError, match="seed_edges holds edge id 1000000000, out of range"):
        plain.sample(graph, torch.tensor([10**9]))


# DGL attributes the drop-ins do not have, each for a reason: DGL's DataLoader subclasses torch's
# (worker-process plumbing) and its attach_data feeds GraphBolt-style external data; samplers'
# assign_lazy_features is for subclasses of DGL's own BlockSampler (those run on DGL's
# DataLoader, with a warning); LaborSampler.set_seed fixes DGL's next call's variates (here a
# batch's variates come from the loader's seed, epoch and batch); SAINTSampler's per-mode
# samplers are DGL internals with public names.
_DGL_ONLY = {
    "DataLoader": {"attach_data", "check_worker_number_rationality", "multiprocessing_context"},
    "NeighborSampler": {"assign_lazy_features"},
    "MultiLayerNeighborSampler": {"assign_lazy_features"},
    "MultiLayerFullNeighborSampler": {"assign_lazy_features"},
    "LaborSampler": {"assign_lazy_features", "set_seed"},
    "SAINTSampler": {"edge_sampler", "node_sampler", "walk_sampler"},
    "EdgePredictionSampler": {"assign_lazy_features"},
}


def test_dgl_front_has_dgls_public_attributes_but_the_listed_ones():
    dgl = pytest.importorskip("dgl")
    for name in ("DataLoader", "NeighborSampler", "MultiLayerNeighborSampler",
                 "MultiLayerFullNeighborSampler", "LaborSampler", "ShaDowKHopSampler",
                 "ClusterGCNSampler", "SAINTSampler", "EdgePredictionSampler"):  # fmt: skip
        theirs = {a for a in dir(getattr(dgl.dataloading, name)) if not a.startswith("_")}
        mine = {a for a in dir(getattr(dl, name)) if not a.startswith("_")}
        assert theirs - mine == _DGL_ONLY.get(name, set()), name


def _edge_ids_per_batch(loader):
    return [(o.clone(), [b.edata[EID].clone() for b in bl]) for _, o, bl in loader]


def _same(a, b):
    assert len(a) == len(b) > 0
    for (o1, e1), (o2, e2) in zip(a, b):
        assert torch.equal(o1, o2) and all(torch.equal(x, y) for x, y in zip(e1, e2))


def test_use_prefetch_thread_false_builds_batches_in_the_caller(graph, monkeypatch):
    import threading

    def run(**kw):
        loader = dl.DataLoader(graph, torch.arange(64), _sampler(), batch_size=16, seed=3, **kw)
        threads = []
        sample = loader._core.sample

        def recording(*a, **k):
            threads.append(threading.current_thread())
            return sample(*a, **k)

        monkeypatch.setattr(loader._core, "sample", recording)
        return _edge_ids_per_batch(loader), threads

    ahead, ahead_threads = run()
    inline, inline_threads = run(use_prefetch_thread=False)
    workers, worker_threads = run(use_prefetch_thread=False, num_workers=2)
    _same(ahead, inline)
    _same(ahead, workers)
    main = threading.main_thread()
    assert len(inline_threads) == 4 and all(t is main for t in inline_threads)
    # by default, and with workers whatever the flag, loader threads build batches ahead
    for ts in (ahead_threads, worker_threads):
        assert len(ts) == 4 and all(t.name.startswith("gnnsys-loader-") for t in ts)


def test_use_alternate_streams_changes_nothing(graph):
    kw = dict(batch_size=16, shuffle=True, seed=9)
    want = _edge_ids_per_batch(dl.DataLoader(graph, torch.arange(48), _sampler(), **kw))
    for flag in (True, False):
        loader = dl.DataLoader(
            graph, torch.arange(48), _sampler(), use_alternate_streams=flag, **kw
        )
        _same(_edge_ids_per_batch(loader), want)
    for name in ("use_alternate_streams", "use_prefetch_thread", "pin_prefetcher"):
        with pytest.raises(TypeError, match=f"{name} must be None or a bool, got 'no'"):
            dl.DataLoader(graph, torch.arange(4), _sampler(), **{name: "no"})


def test_empty_indices_raise(graph):
    with pytest.raises(ValueError, match="indices is empty: no node ids"):
        dl.DataLoader(graph, torch.tensor([], dtype=torch.long), _sampler())
    es = dl.as_edge_prediction_sampler(_sampler())
    with pytest.raises(ValueError, match="indices is empty: no edge ids"):
        dl.DataLoader(graph, [], es)
    with pytest.raises(
        ValueError, match="indices must hold integer node ids, got dtype torch.bool"
    ):
        dl.DataLoader(graph, torch.zeros(N, dtype=torch.bool), _sampler())


# ---------------------------------------------------------------------------- DDP sharding
def test_ddp_shard_like_dgl():
    ids = torch.arange(10)
    shards = [dl._ddp_shard(ids, 3, r, drop_last=False) for r in range(3)]
    assert [s[0].tolist() for s in shards] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(size == 4 for _, size in shards)
    padded = dl._pad(shards[2][0], 4, ids)
    assert padded.tolist() == [8, 9, 8, 9]
    shards = [dl._ddp_shard(ids, 3, r, drop_last=True) for r in range(3)]
    assert [s[0].tolist() for s in shards] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    # more ranks than ids: the empty rank pads from the whole list
    empty, size = dl._ddp_shard(torch.arange(3), 4, 3, drop_last=False)
    assert empty.numel() == 0 and dl._pad(empty, size, torch.arange(3)).tolist() == [0]


def test_use_ddp_single_process(graph, tmp_path):
    import torch.distributed as dist

    with pytest.raises(RuntimeError, match="init_process_group"):
        dl.DataLoader(graph, torch.arange(10), _sampler(), use_ddp=True)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        loader = dl.DataLoader(
            graph, torch.arange(10), _sampler(), use_ddp=True, batch_size=4, shuffle=True
        )
        outs = torch.cat([o for _, o, _ in loader])
        assert sorted(outs.tolist()) == list(range(10)) and len(loader) == 3
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------- link prediction
def test_edge_prediction(graph, block_type):
    k = 3
    s = dl.as_edge_prediction_sampler(
        _sampler([-1, 3]), exclude="self", negative_sampler=dl.negative_sampler.Uniform(k)
    )
    eids = torch.arange(0, 200, 2)
    loader = dl.DataLoader(graph, eids, s, batch_size=32, shuffle=True, block_type=block_type)
    seen = []
    for input_nodes, pair, neg, blocks in loader:
        ids = pair.ndata[NID]
        assert torch.equal(blocks[-1].dstdata[NID], ids)
        assert torch.equal(blocks[0].srcdata[NID], input_nodes)
        assert ids.unique().numel() == ids.numel() and neg.num_nodes() == pair.num_nodes()
        u, v = pair.edges()
        e = pair.edata[EID]
        assert torch.equal(ids[u], graph.ei[0, e]) and torch.equal(ids[v], graph.ei[1, e])
        nu, nv = neg.edges()
        assert torch.equal(ids[nu], ids[u].repeat_interleave(k)) and nv.numel() == k * e.numel()
        for b in blocks:  # the batch's own edges are excluded from message passing
            assert not bool(torch.isin(b.edata[EID], e).any())
        seen.append(e)
    assert torch.equal(torch.cat(seen).sort().values, eids)


def test_edge_prediction_reverse_and_callable(graph):
    rev = torch.arange(E).flip(0)  # a made-up reverse map: e <-> E-1-e
    s = dl.as_edge_prediction_sampler(_sampler([-1]), exclude="reverse_id", reverse_eids=rev)
    for _, pair, blocks in dl.DataLoader(graph, torch.arange(64), s, batch_size=64):
        e = pair.edata[EID]
        assert not bool(torch.isin(blocks[0].edata[EID], torch.cat([e, rev[e]])).any())
    s = dl.as_edge_prediction_sampler(_sampler([-1]), exclude=lambda e: e + 1)
    for _, pair, blocks in dl.DataLoader(graph, torch.arange(64), s, batch_size=64):
        assert not bool(torch.isin(blocks[0].edata[EID], pair.edata[EID] + 1).any())


def test_uniform_negative_sampler_call(graph):
    torch.manual_seed(0)
    src, dst = dl.negative_sampler.Uniform(2)(graph, torch.tensor([0, 5]))
    assert src.tolist() == graph.ei[0, [0, 0, 5, 5]].tolist()
    assert dst.numel() == 4 and int(dst.max()) < N


# ---------------------------------------------------------------------------- bad input
def test_bad_input(graph):
    s = _sampler()
    with pytest.raises(IndexError, match=f"node id {N}"):
        dl.DataLoader(graph, torch.tensor([0, N]), s)
    with pytest.raises(IndexError, match="negative"):
        dl.DataLoader(graph, torch.tensor([-1]), s)
    with pytest.raises(ValueError, match="dtype"):
        dl.DataLoader(graph, torch.tensor([0.0, 1.0]), s)
    with pytest.raises(ValueError, match="prefetch_factor must be an int >= 0, got 'a'"):
        dl.DataLoader(graph, torch.arange(4), s, prefetch_factor="a")
    with pytest.raises(TypeError, match="fanouts"):
        dl.NeighborSampler(5)
    with pytest.raises(TypeError, match="fanouts"):
        dl.NeighborSampler("5,10")
    with pytest.raises(TypeError, match=r"fanouts\[1\]"):
        dl.NeighborSampler([5, 2.5])
    with pytest.raises(ValueError, match=">= -1"):
        dl.NeighborSampler([5, -2])
    with pytest.raises(NotImplementedError, match="edge_dir='out'"):
        dl.NeighborSampler([5], edge_dir="out")
    with pytest.raises(ValueError, match="mutually exclusive"):
        dl.NeighborSampler([5], prob="p", mask="keep")
    with pytest.raises(ValueError, match="'nope'.*ndata has"):
        dl.DataLoader(graph, torch.arange(4), _sampler(prefetch_node_feats=["nope"]))
    with pytest.raises(ValueError, match="'nolabel'"):
        dl.DataLoader(graph, torch.arange(4), _sampler(prefetch_labels=["nolabel"]))
    with pytest.raises(ValueError, match="'ew'.*edata has"):
        dl.DataLoader(graph, torch.arange(4), _sampler(prefetch_edge_feats=["ew"]))
    with pytest.raises(ValueError, match="edge data 'nomask'"):
        dl.DataLoader(graph, torch.arange(4), _sampler(mask="nomask"))
    with pytest.raises(ValueError, match="bool"):
        dl.DataLoader(graph, torch.arange(4), _sampler(mask="w"))
    with pytest.raises(ValueError, match="num_workers must be 0 if UVA"):
        dl.DataLoader(graph, torch.arange(4), s, use_uva=True, num_workers=2)
    with pytest.raises(TypeError, match="unexpected keyword"):
        dl.DataLoader(graph, torch.arange(4), s, batchsize=4)
    with pytest.raises(TypeError, match="graph_sampler"):
        dl.DataLoader(graph, torch.arange(4), object())
    with pytest.raises(TypeError, match="graph must be"):
        dl.DataLoader("g", torch.arange(4), s)
    with pytest.raises(ValueError, match="batch_size"):
        dl.DataLoader(graph, torch.arange(4), s, batch_size=0)
    with pytest.raises(TypeError, match="num_layers"):
        dl.MultiLayerFullNeighborSampler("2")
    es = dl.as_edge_prediction_sampler(s)
    with pytest.raises(IndexError, match=f"edge id {E}"):
        dl.DataLoader(graph, torch.tensor([E]), es)
    with pytest.raises(ValueError, match="reverse_eids"):
        dl.as_edge_prediction_sampler(s, exclude="reverse_id")
    with pytest.raises(ValueError, match="exclude"):
        dl.as_edge_prediction_sampler(s, exclude="others")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only errors")
def test_cpu_only_device_errors(graph):
    s = _sampler()
    with pytest.raises(ValueError, match="device='cuda' needs CUDA, which is not available"):
        dl.DataLoader(graph, torch.arange(4), s, device="cuda")
    with pytest.raises(ValueError, match=r"use_uva=True \(GPU sampling.* needs CUDA, which is not"):
        dl.DataLoader(graph, torch.arange(4), s, use_uva=True)
    with pytest.raises(ValueError, match="pin_prefetcher=True is only effective"):
        dl.DataLoader(graph, torch.arange(4), s, pin_prefetcher=True)
    with pytest.raises(ValueError, match="use_uva=True needs a CUDA device"):
        dl.DataLoader(graph, torch.arange(4), s, use_uva=True, device="cpu")


@pytest.mark.gpu
def test_gpu_graph_rules_and_device(graph):
    s = _sampler()
    g = Graph(graph.indptr.cuda(), graph.indices.cuda(), validate=False)
    with pytest.raises(ValueError, match="Graph must be on CPU if UVA"):
        dl.DataLoader(g, torch.arange(4), s, use_uva=True)
    with pytest.raises(ValueError, match="num_workers must be 0 if graph and indices are on"):
        dl.DataLoader(
            g, torch.arange(4), _sampler(prefetch_node_feats=[], prefetch_labels=[]), num_workers=1
        )
    for kw in ({"device": "cuda"}, {"use_uva": True}):
        inp, out, blocks = next(iter(dl.DataLoader(graph, torch.arange(8), s, batch_size=8, **kw)))
        assert blocks[0].srcdata["feat"].is_cuda and blocks[-1].dstdata["label"].is_cuda
        assert blocks[0].device.type == "cuda" and inp.is_cuda
        assert torch.equal(blocks[0].srcdata["feat"].cpu(), graph.ndata["feat"][inp.cpu()])
    # A CUDA graph and use_uva sample on the GPU (Triton), with the CPU sampler's batches.
    bare = _sampler(prefetch_node_feats=[], prefetch_labels=[])

    def ids(g, **kw):
        loader = dl.DataLoader(g, torch.arange(16), bare, batch_size=8, seed=1, **kw)
        return loader, _batches_ids(loader)

    _, want = ids(graph, block_type="gnnsys")
    own = Graph(graph.indptr.clone(), graph.indices.clone(), edge_ids=graph.edge_ids.clone())
    on_gpu = Graph(
        own.indptr.cuda(), own.indices.cuda(), edge_ids=own.edge_ids.cuda(), validate=False
    )
    for g, kw in ((own, {"use_uva": True}), (on_gpu, {})):
        loader, got = ids(g, block_type="gnnsys", **kw)
        assert loader._node_core.sampler.backend == "triton"
        for (a, ea), (b, eb) in zip(got, want):
            assert torch.equal(a.cpu(), b) and all(torch.equal(x.cpu(), y) for x, y in zip(ea, eb))


# ---------------------------------------------------------------------------- with DGL itself
def test_with_dgl_blocks_and_models(graph):
    dgl = pytest.importorskip("dgl")
    dglnn = pytest.importorskip("dgl.nn")
    src, dst = graph.ei
    dg = dgl.graph((src, dst), num_nodes=N)
    dg.ndata["feat"] = graph.ndata["feat"]
    dg.ndata["label"] = graph.ndata["label"]
    seeds = torch.arange(0, 60)
    # our batches and DGL's have the same per-layer sizes with fanout -1
    ours = dl.DataLoader(dg, seeds, dl.MultiLayerFullNeighborSampler(2), batch_size=20)
    theirs = dgl.dataloading.DataLoader(
        dg, seeds, dgl.dataloading.MultiLayerFullNeighborSampler(2), batch_size=20
    )
    for (i1, o1, b1), (i2, o2, b2) in zip(ours, theirs):
        assert torch.equal(o1, o2) and i1.numel() == i2.numel()
        assert set(i1.tolist()) == set(i2.tolist())
        for x, y in zip(b1, b2):
            assert isinstance(x, dgl.DGLGraph) and x.is_block
            assert (x.num_src_nodes(), x.num_dst_nodes(), x.num_edges()) == (
                y.num_src_nodes(),
                y.num_dst_nodes(),
                y.num_edges(),
            )
            assert set(x.edata[EID].tolist()) == set(y.edata[EID].tolist())
    # a DGL sampler object is taken by its settings
    theirs_sampler = dgl.dataloading.NeighborSampler([2, 3], prefetch_node_feats=["feat"])
    _, _, blocks = list(dl.DataLoader(dg, seeds, theirs_sampler, batch_size=60))[0]
    assert torch.equal(blocks[0].srcdata["feat"], dg.ndata["feat"][blocks[0].srcdata[NID]])
    assert int(blocks[-1].in_degrees().max()) <= 3 and int(blocks[0].in_degrees().max()) <= 2
    # an int32 graph (after the int64 one was used: DGL's int() copies Python attributes)
    # gives int32 ids and blocks, as DGL's loader does
    inp, out, blocks = next(iter(dl.DataLoader(dg.int(), seeds, theirs_sampler, batch_size=60)))
    assert inp.dtype == out.dtype == torch.int32
    assert blocks[0].idtype == torch.int32 and blocks[0].srcdata[NID].dtype == torch.int32
    assert blocks[0].edata[EID].dtype == torch.int32
    # DGL's own SAGEConv model trains on our blocks
    torch.manual_seed(0)
    layers = torch.nn.ModuleList([dglnn.SAGEConv(F, 16, "mean"), dglnn.SAGEConv(16, 4, "mean")])
    opt = torch.optim.Adam(layers.parameters(), lr=0.02)
    s = dl.NeighborSampler([5, 5], prefetch_node_feats=["feat"], prefetch_labels=["label"])
    loader = dl.DataLoader(dg, torch.arange(N), s, batch_size=100, shuffle=True, seed=0)
    losses = []
    for _ in range(8):
        for _, _, blocks in loader:
            h = blocks[0].srcdata["feat"]
            for i, (layer, block) in enumerate(zip(layers, blocks)):
                h = layer(block, h)
                h = torch.relu(h) if i == 0 else h
            loss = torch.nn.functional.cross_entropy(h, blocks[-1].dstdata["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


# ---------------------------------------------------------------------------- training
def _accuracies(model, g, x, y, splits):
    model.eval()
    with torch.no_grad():
        pred = model(g, x).argmax(1)
    model.train()
    return [float((pred[idx] == y[idx]).float().mean()) for idx in splits]


def _train_compare(name, hidden, full_epochs, mb_epochs, batch_size, fanouts):
    """(full-batch test acc, DGL-loop mini-batch test acc), each at its best validation epoch."""
    from gnnsys.datasets import synthetic
    from gnnsys.nn import GraphSAGE

    ds = synthetic(name)
    g = ds.graph
    g.ndata["feat"], g.ndata["label"] = ds.x, ds.y
    f = torch.nn.functional

    def best_test(step_epoch, model, epochs):
        best = (-1.0, 0.0)
        for _ in range(epochs):
            step_epoch()
            val, test = _accuracies(model, g, ds.x, ds.y, (ds.val_idx, ds.test_idx))
            if val > best[0]:
                best = (val, test)
        return best[1]

    torch.manual_seed(0)
    full = GraphSAGE(ds.num_features, hidden, ds.num_classes, num_layers=2, dropout=0.5)
    opt = torch.optim.Adam(full.parameters(), lr=0.01)

    def full_epoch():
        loss = f.cross_entropy(full(g, ds.x)[ds.train_idx], ds.y[ds.train_idx])
        opt.zero_grad()
        loss.backward()
        opt.step()

    full_acc = best_test(full_epoch, full, full_epochs)

    torch.manual_seed(0)
    model = GraphSAGE(ds.num_features, hidden, ds.num_classes, num_layers=2, dropout=0.5)
    opt2 = torch.optim.Adam(model.parameters(), lr=0.01)
    sampler = dl.NeighborSampler(fanouts, prefetch_node_feats=["feat"], prefetch_labels=["label"])
    loader = dl.DataLoader(
        g, ds.train_idx, sampler, batch_size=batch_size, shuffle=True, block_type="gnnsys"
    )

    def mb_epoch():
        for _, _, blocks in loader:  # the DGL-style loop, unchanged
            logits = model(blocks, blocks[0].srcdata["feat"])
            loss = f.cross_entropy(logits, blocks[-1].dstdata["label"])
            opt2.zero_grad()
            loss.backward()
            opt2.step()

    return full_acc, best_test(mb_epoch, model, mb_epochs)


@pytest.fixture
def one_torch_thread():
    # tiny matrices: one thread is as fast and does not fight a busy machine's other jobs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_graphsage_trains_like_full_batch_tiny(one_torch_thread):
    full_acc, mb_acc = _train_compare("tiny", 64, 60, 20, 128, [10, 10])
    assert full_acc > 0.75
    assert mb_acc >= full_acc - 0.02, (full_acc, mb_acc)


@pytest.mark.slow  # a few minutes on 2 cores: CI runs it in its second (slow) step
def test_graphsage_trains_like_full_batch_mini():
    full_acc, mb_acc = _train_compare("mini", 64, 60, 10, 1024, [10, 10])
    assert full_acc > 0.85
    assert mb_acc >= full_acc - 0.02, (full_acc, mb_acc)


def test_pair_graph_api():
    pg = dl.PairGraph(
        torch.tensor([2, 0, 2]),
        torch.tensor([1, 3, 0]),
        4,
        node_ids=torch.tensor([10, 11, 12, 13]),
        edge_ids=torch.tensor([7, 8, 9]),
    )
    assert not pg.is_block and pg.num_nodes() == 4 and pg.num_edges() == 3
    assert pg.srcdata is pg.ndata and pg.ndata[NID].tolist() == [10, 11, 12, 13]
    u, v, e = pg.edges(form="all", order="srcdst")
    assert u.tolist() == [0, 2, 2] and v.tolist() == [3, 0, 1] and e.tolist() == [1, 2, 0]
    assert pg.in_degrees().tolist() == [1, 1, 0, 1] and pg.out_degrees(2) == 2
    with pg.local_scope():
        pg.ndata["h"] = torch.ones(4, 2)
        pg.edata["score"] = torch.ones(3)
    assert "h" not in pg.ndata and "score" not in pg.edata and pg.to("cpu") is pg
    with pytest.raises(ValueError, match="4 rows"):
        pg.ndata["h"] = torch.ones(3)
    # degrees of given nodes are range-checked; types are the homogeneous ones only
    assert pg.in_degrees(torch.tensor([3, 0])).tolist() == [1, 1]
    with pytest.raises(IndexError, match="v=-1 is out of range for 4 nodes"):
        pg.in_degrees(-1)
    with pytest.raises(IndexError, match="u holds id 4"):
        pg.out_degrees(torch.tensor([4]))
    assert pg.num_nodes("_N") == 4 and pg.num_edges(("_N", "_E", "_N")) == 3
    assert pg.nodes("_N").tolist() == [0, 1, 2, 3] and pg.in_degrees(etype="_E").numel() == 4
    with pytest.raises(ValueError, match="ntype='user'"):
        pg.num_nodes("user")
    with pytest.raises(ValueError, match="ntype='user'"):
        pg.num_src_nodes("user")
    with pytest.raises(ValueError, match="etype='follows'"):
        pg.edges(etype="follows")
    with pytest.raises(ValueError, match="etype='follows'"):
        pg.out_degrees(etype="follows")


# ============================================================================ heterographs
BUYS, BOUGHT = ("user", "buys", "item"), ("item", "bought-by", "user")
HAS, TAGS = ("item", "has", "tag"), ("tag", "tags", "item")
FOLLOWS = ("user", "follows", "user")
NUM = {"user": 60, "item": 40, "tag": 12}


@pytest.fixture(scope="module")
def hetero():
    gen = torch.Generator().manual_seed(5)

    def rand(s, d, e):
        return torch.stack(
            [
                torch.randint(0, NUM[s], (e,), generator=gen),
                torch.randint(0, NUM[d], (e,), generator=gen),
            ]
        )

    buys, has = rand("user", "item", 300), rand("item", "tag", 80)
    edges = {BUYS: buys, BOUGHT: buys.flip(0), HAS: has, TAGS: has.flip(0)}
    edges[FOLLOWS] = rand("user", "user", 150)
    g = Graph.from_hetero(edges, NUM)
    g.ndata[("user", "feat")] = torch.randn(60, F, generator=gen)
    g.ndata[("item", "feat")] = torch.randn(40, F, generator=gen)
    g.ndata[("item", "label")] = torch.randint(0, 3, (40,), generator=gen)
    g.edata[("buys", "w")] = torch.rand(300, generator=gen)
    g.edata[(FOLLOWS, "keep")] = torch.arange(150) % 3 != 0
    g.edata[("buys", "p")] = (torch.arange(300) % 2).double()  # odd edge ids only
    g.ei = edges  # per edge type, by edge id (test-only attribute)
    return g


def _in_deg(g, et):
    return torch.bincount(g.ei[et][1], minlength=NUM[et[2]])


def _fanout(layer, et):
    if isinstance(layer, dict):
        return layer[et] if et in layer else layer[et[1]]
    return layer


def _ids(x, t):
    return x[t] if isinstance(x, dict) else x


def _check_typed_batch(g, fanouts, input_nodes, output_nodes, blocks, replace=False):
    """DGL's invariants per type; ``fanouts`` in DGL order (input layer first)."""
    assert len(blocks) == len(fanouts)
    for i, b in enumerate(blocks):
        assert sorted(b.srctypes) == sorted(NUM) and sorted(b.dsttypes) == sorted(NUM)
        assert sorted(b.canonical_etypes) == sorted(g.edge_types)
        for nt in NUM:
            src, dst = b.srcnodes[nt].data[NID], b.dstnodes[nt].data[NID]
            assert src.numel() == b.num_src_nodes(nt) and dst.numel() == b.num_dst_nodes(nt)
            assert torch.equal(src[: b.num_dst_nodes(nt)], dst)  # dst nodes prefix src, per type
            assert src.unique().numel() == src.numel() and bool((src < NUM[nt]).all())
            if i + 1 < len(blocks):
                assert torch.equal(dst, blocks[i + 1].srcnodes[nt].data[NID])
        for et in g.edge_types:
            s, _, d = et
            src_ids, dst_ids = b.srcnodes[s].data[NID], b.dstnodes[d].data[NID]
            u, v = b.edges(etype=et)
            eid = b.edges[et].data[EID]
            # every block edge is an edge of the graph, of its type, with its id
            assert torch.equal(g.ei[et][0, eid], src_ids[u]) and torch.equal(
                g.ei[et][1, eid], dst_ids[v]
            )
            if not replace:
                assert eid.unique().numel() == eid.numel()
            f = _fanout(fanouts[i], et)
            deg = _in_deg(g, et)[dst_ids]
            want = deg if f < 0 else torch.clamp(deg, max=f)
            if replace and f >= 0:
                want = torch.where(deg > 0, torch.full_like(deg, f), 0)
            assert torch.equal(b.in_degrees(etype=et), want), (i, et)
    for nt in NUM:
        assert torch.equal(_ids(input_nodes, nt), blocks[0].srcnodes[nt].data[NID])
        if nt in output_nodes:
            assert torch.equal(output_nodes[nt], blocks[-1].dstnodes[nt].data[NID])
        else:
            assert blocks[-1].num_dst_nodes(nt) == 0


def test_hetero_blocks_follow_dgl_semantics(hetero, block_type):
    g = hetero
    fanouts = [{"buys": 2, "bought-by": 3, HAS: 1, "tags": -1, "follows": 2}, 3]
    sampler = dl.NeighborSampler(
        fanouts, prefetch_node_feats=["feat"], prefetch_labels={"item": ["label"]},
        prefetch_edge_feats=["w"],
    )  # fmt: skip
    indices = {"item": torch.arange(0, 40, 2), "user": torch.arange(10)}
    loader = dl.DataLoader(
        g, indices, sampler, batch_size=8, shuffle=True, seed=1, block_type=block_type
    )
    seen = {"item": [], "user": []}
    w = g.edata[("buys", "w")]
    for input_nodes, output_nodes, blocks in loader:
        _check_typed_batch(g, fanouts, input_nodes, output_nodes, blocks)
        assert set(output_nodes) <= {"item", "user"}
        assert sum(o.numel() for o in output_nodes.values()) in (8, 30 % 8)
        for nt, ids in output_nodes.items():
            seen[nt].append(ids)
        # per-type prefetch: every type that has the column, rows of its sampled nodes
        feat = blocks[0].srcdata["feat"]
        assert set(feat) == {"user", "item"}
        for nt in ("user", "item"):
            assert torch.equal(feat[nt], g.ndata[(nt, "feat")][input_nodes[nt]])
        labels = blocks[-1].dstdata["label"]
        assert set(labels) == {"item"}
        assert torch.equal(
            labels["item"], g.ndata[("item", "label")][blocks[-1].dstnodes["item"].data[NID]]
        )
        for b in blocks:  # edge features of the one type that has them, in every block
            assert torch.equal(b.edges["buys"].data["w"], w[b.edges["buys"].data[EID]])
            assert "w" not in b.edges["follows"].data
    assert len(loader) == 4
    for nt, ids in indices.items():
        assert torch.equal(torch.cat(seen[nt]).sort().values, ids)


def test_hetero_dict_indices_are_batched_like_dgl(hetero):
    # DGL concatenates the dict's ids in its order and cuts batches that may mix types; each
    # output_nodes dict holds the types present, in the dict's order
    s = dl.NeighborSampler([2])
    indices = {"item": torch.tensor([5, 3, 1]), "user": torch.tensor([7, 2])}
    loader = dl.DataLoader(hetero, indices, s, batch_size=2)
    outs = [{k: v.tolist() for k, v in o.items()} for _, o, _ in loader]
    assert outs == [{"item": [5, 3]}, {"item": [1], "user": [7]}, {"user": [2]}]
    assert [list(o) for o in outs] == [["item"], ["item", "user"], ["user"]]
    rev = dl.DataLoader(hetero, {"user": indices["user"], "item": indices["item"]}, s, batch_size=3)
    assert [list(o) for _, o, _ in rev] == [["user", "item"], ["item"]]
    # shuffled: every seed once per epoch, types mixed within batches
    loader = dl.DataLoader(hetero, indices, s, batch_size=2, shuffle=True, seed=3)
    got = {"item": [], "user": []}
    for _, o, _ in loader:
        for k, v in o.items():
            got[k] += v.tolist()
    assert sorted(got["item"]) == [1, 3, 5] and sorted(got["user"]) == [2, 7]


def test_hetero_replace_and_full_neighbours(hetero, block_type):
    fanouts = [2, {"buys": 1, "bought-by": 2, "has": 3, "tags": 1, "follows": 4}]
    s = dl.NeighborSampler(fanouts, replace=True)
    loader = dl.DataLoader(
        hetero, {"user": torch.arange(20)}, s, batch_size=10, block_type=block_type
    )
    for batch in loader:
        _check_typed_batch(hetero, fanouts, *batch, replace=True)
    s = dl.MultiLayerFullNeighborSampler(2)
    seeds = torch.tensor([0, 7])
    inp, out, blocks = next(iter(dl.DataLoader(hetero, {"tag": seeds}, s, batch_size=2)))
    _check_typed_batch(hetero, [-1, -1], inp, out, blocks)
    # the tag seeds' whole in-neighbourhood: items that have them
    has = hetero.ei[HAS]
    want = set(has[0, torch.isin(has[1], seeds)].tolist())
    assert set(blocks[1].srcnodes["item"].data[NID].tolist()) == want


def test_hetero_mask_and_prob_per_edge_type(hetero, block_type):
    g = hetero
    seeds = {"user": torch.arange(30), "item": torch.arange(20)}
    for kw, et, ok in (
        ({"mask": "keep"}, FOLLOWS, lambda e: e % 3 != 0),
        ({"prob": "p"}, BUYS, lambda e: e % 2 == 1),
    ):
        loader = dl.DataLoader(
            g, seeds, dl.NeighborSampler([-1], **kw), batch_size=50, block_type=block_type
        )
        ((_, out, blocks),) = list(loader)
        b = blocks[0]
        dst = b.dstnodes[et[2]].data[NID]
        # the filtered type keeps exactly its allowed in-edges; the other types are untouched
        allowed = ok(torch.arange(g.ei[et].shape[1])) & torch.isin(g.ei[et][1], dst)
        assert sorted(b.edges[et].data[EID].tolist()) == torch.nonzero(allowed).flatten().tolist()
        other = FOLLOWS if et == BUYS else BUYS
        odst = b.dstnodes[other[2]].data[NID]
        assert b.num_edges(other) == int(torch.isin(g.ei[other][1], odst).sum()) > 0


def test_hetero_standalone_sample_and_exclude(hetero):
    s = dl.NeighborSampler([-1])
    inp, out, blocks = s.sample(hetero, {"item": torch.tensor([1, 2])})
    _check_typed_batch(hetero, [-1], inp, out, blocks)
    drop = blocks[0].edges["buys"].data[EID][:3]
    _, _, blocks2 = s.sample(hetero, {"item": torch.tensor([1, 2])}, exclude_eids={"buys": drop})
    got = blocks2[0].edges["buys"].data[EID]
    assert not bool(torch.isin(got, drop).any())
    assert got.numel() == blocks[0].num_edges("buys") - 3
    # the same ids of another type are not excluded
    assert blocks2[0].num_edges("bought-by") == blocks[0].num_edges("bought-by")


def test_hetero_edge_prediction(hetero, block_type):
    g = hetero
    k = 2
    s = dl.as_edge_prediction_sampler(
        dl.NeighborSampler([-1, 2]), exclude="reverse_types",
        reverse_etypes={"buys": "bought-by", "bought-by": "buys"},
        negative_sampler=dl.negative_sampler.Uniform(k), prefetch_labels=["w"],
    )  # fmt: skip
    indices = {"buys": torch.arange(0, 100, 3), "follows": torch.arange(20)}
    loader = dl.DataLoader(
        g, indices, s, batch_size=16, shuffle=True, seed=2, block_type=block_type
    )
    seen = {BUYS: [], FOLLOWS: []}
    for input_nodes, pair, neg, blocks in loader:
        ids = pair.ndata[NID]
        for nt in NUM:
            assert torch.equal(ids[nt], blocks[-1].dstnodes[nt].data[NID])
            assert torch.equal(input_nodes[nt], blocks[0].srcnodes[nt].data[NID])
            assert ids[nt].unique().numel() == ids[nt].numel()
            assert neg.num_nodes(nt) == pair.num_nodes(nt)
        batch_eids = {}
        for et in g.edge_types:
            src_t, _, dst_t = et
            u, v = pair.edges(etype=et)
            e = pair.edges[et].data[EID]
            batch_eids[et] = e
            assert torch.equal(ids[src_t][u], g.ei[et][0, e]) and torch.equal(
                ids[dst_t][v], g.ei[et][1, e]
            )
            nu, nv = neg.edges(etype=et)
            assert torch.equal(ids[src_t][nu], ids[src_t][u].repeat_interleave(k))
            assert nv.numel() == k * e.numel()
            if et in seen:
                seen[et].append(e)
            else:
                assert e.numel() == 0
        assert torch.equal(pair.edges["buys"].data["w"], g.edata[("buys", "w")][batch_eids[BUYS]])
        for b in blocks:  # seed edges and their reverse-type twins are excluded
            assert not bool(torch.isin(b.edges[BUYS].data[EID], batch_eids[BUYS]).any())
            assert not bool(torch.isin(b.edges[BOUGHT].data[EID], batch_eids[BUYS]).any())
            assert not bool(torch.isin(b.edges[FOLLOWS].data[EID], batch_eids[FOLLOWS]).any())
    for et, key in ((BUYS, "buys"), (FOLLOWS, "follows")):
        assert torch.equal(torch.cat(seen[et]).sort().values, indices[key])


def test_hetero_edge_prediction_keeps_unrelated_types(hetero):
    # exclude="self" drops the seeds only: the bought-by twins of buys seeds stay
    s = dl.as_edge_prediction_sampler(dl.NeighborSampler([-1]), exclude="self")
    _, pair, blocks = next(
        iter(dl.DataLoader(hetero, {"buys": torch.arange(40)}, s, batch_size=40))
    )
    e = pair.edges["buys"].data[EID]
    b = blocks[0]
    assert not bool(torch.isin(b.edges[BUYS].data[EID], e).any())
    dst_users = b.dstnodes["user"].data[NID]
    twins = e[torch.isin(hetero.ei[BOUGHT][1, e], dst_users)]
    assert twins.numel() > 0 and bool(torch.isin(twins, b.edges[BOUGHT].data[EID]).all())


def test_hetero_bad_input_names_the_type(hetero):
    g = hetero
    ok = {"item": torch.arange(4)}
    full = {"buys": 1, "bought-by": 1, "has": 1, "tags": 1, "follows": 1}
    with pytest.raises(ValueError, match=r"fanouts\[0\]: edge type 'likes' matches no edge types"):
        dl.DataLoader(g, ok, dl.NeighborSampler([{**full, "likes": 2}]))
    with pytest.raises(
        ValueError, match=r"fanouts\[1\] gives no fanout for edge type \('item', 'has', 'tag'\)"
    ):
        dl.DataLoader(g, ok, dl.NeighborSampler([full, {k: 1 for k in full if k != "has"}]))
    with pytest.raises(ValueError, match="gives edge type .*'buys'.* twice"):
        dl.DataLoader(g, ok, dl.NeighborSampler([{**full, BUYS: 3}]))
    with pytest.raises(ValueError, match="indices: node type 'shop' is not in the graph"):
        dl.DataLoader(g, {"shop": torch.arange(2)}, dl.NeighborSampler([2]))
    with pytest.raises(
        IndexError,
        match=r"indices\['tag'\] holds node id 12, out of range for 12 nodes of type 'tag'",
    ):
        dl.DataLoader(g, {"tag": torch.tensor([0, 12])}, dl.NeighborSampler([2]))
    with pytest.raises(ValueError, match=r"indices must be a dict \{node type: ids\}"):
        dl.DataLoader(g, torch.arange(4), dl.NeighborSampler([2]))
    with pytest.raises(ValueError, match="indices is empty"):
        dl.DataLoader(g, {"item": torch.tensor([], dtype=torch.long)}, dl.NeighborSampler([2]))
    with pytest.raises(ValueError, match=r"prefetch_node_feats: node type 'shop' is not in"):
        dl.DataLoader(g, ok, dl.NeighborSampler([2], prefetch_node_feats={"shop": ["feat"]}))
    with pytest.raises(
        ValueError, match="names 'feat' for node type 'tag', which has no such data"
    ):
        dl.DataLoader(g, ok, dl.NeighborSampler([2], prefetch_node_feats={"tag": ["feat"]}))
    with pytest.raises(ValueError, match="'nope', which is not node data.*'user': \\['feat'\\]"):
        dl.DataLoader(g, ok, dl.NeighborSampler([2], prefetch_labels=["nope"]))
    with pytest.raises(ValueError, match="edge data 'nope' not found"):
        dl.DataLoader(g, ok, dl.NeighborSampler([2], mask="nope"))
    g.ndata["plain"] = torch.zeros(3)  # a plain name on a typed graph belongs to no type
    try:
        with pytest.raises(
            ValueError, match=r"keys its data by type: g.ndata\[\(node_type, 'plain'\)\]"
        ):
            dl.DataLoader(g, ok, dl.NeighborSampler([2], prefetch_node_feats=["plain"]))
    finally:
        del g.ndata["plain"]
    g.ndata[("tag", "short")] = torch.zeros(11)  # a row short of the 12 tags
    try:
        with pytest.raises(
            ValueError,
            match=r"names 'short', but ndata\[\('tag', 'short'\)\] has 11 rows and the graph "
            r"has 12 nodes of type 'tag': one row per node",
        ):
            dl.DataLoader(g, ok, dl.NeighborSampler([2], prefetch_node_feats={"tag": ["short"]}))
    finally:
        del g.ndata[("tag", "short")]
    es = dl.as_edge_prediction_sampler(dl.NeighborSampler([2]))
    with pytest.raises(ValueError, match="indices: edge type 'likes' matches no edge types"):
        dl.DataLoader(g, {"likes": torch.arange(2)}, es)
    with pytest.raises(
        IndexError, match=r"indices\['has'\] holds edge id 80, out of range for 80 edges of type"
    ):
        dl.DataLoader(g, {"has": torch.tensor([80])}, es)
    with pytest.raises(ValueError, match=r"indices must be a dict \{edge type: edge ids\}"):
        dl.DataLoader(g, torch.arange(3), es)
    bad_rev = dl.as_edge_prediction_sampler(
        dl.NeighborSampler([2]), exclude="reverse_types", reverse_etypes={"buys": "sells"}
    )
    with pytest.raises(ValueError, match="reverse_etypes\\['buys'\\]: edge type 'sells'"):
        dl.DataLoader(g, {"buys": torch.arange(2)}, bad_rev)
    with pytest.raises(ValueError, match="reverse_types' needs reverse_etypes"):
        dl.as_edge_prediction_sampler(dl.NeighborSampler([2]), exclude="reverse_types")
    with pytest.raises(TypeError, match="list of dicts"):
        dl.NeighborSampler({"buys": 2})
    with pytest.raises(ValueError, match=r"fanouts\[0\]\['buys'\] = -3"):
        dl.NeighborSampler([{"buys": -3}])


def test_hetero_data_on_a_typed_graph_by_relation_name_or_triple(hetero):
    # edata keys may name the edge type by relation name or triple; plain names are refused
    # on a graph with several types (they name no type)
    s = dl.NeighborSampler([-1], prefetch_edge_feats={FOLLOWS: ["keep"], "buys": ["w"]})
    _, _, blocks = next(
        iter(
            dl.DataLoader(
                hetero, {"user": torch.arange(5), "item": torch.arange(5)}, s, batch_size=10
            )
        )
    )
    b = blocks[0]
    assert torch.equal(
        b.edges["follows"].data["keep"],
        hetero.edata[(FOLLOWS, "keep")][b.edges["follows"].data[EID]],
    )
    assert b.edata["w"].keys() == {BUYS}


def test_idtype_is_kept(graph, hetero):
    s = _sampler()
    inp, out, blocks = next(iter(dl.DataLoader(graph, torch.arange(8), s, batch_size=8, seed=1)))
    assert inp.dtype == out.dtype == blocks[0].srcdata[NID].dtype == torch.int64
    loader = dl.DataLoader(graph, torch.arange(8), s, batch_size=8, seed=1, idtype=torch.int32)
    inp32, out32, blocks32 = next(iter(loader))
    assert inp32.dtype == out32.dtype == torch.int32 and torch.equal(inp32.long(), inp)
    for b, b64 in zip(blocks32, blocks):
        assert b.idtype == torch.int32 and b.srcdata[NID].dtype == torch.int32
        assert b.edata[EID].dtype == torch.int32 and b.edges()[0].dtype == torch.int32
        assert torch.equal(b.edata[EID].long(), b64.edata[EID])
    inp, out, blocks = next(
        iter(
            dl.DataLoader(
                hetero,
                {"item": torch.arange(4)},
                dl.NeighborSampler([2]),
                idtype=torch.int32,
                batch_size=4,
            )
        )
    )
    assert inp["user"].dtype == out["item"].dtype == torch.int32
    assert blocks[0].edges(etype="buys")[0].dtype == torch.int32
    with pytest.raises(ValueError, match="idtype must be torch.int32 or torch.int64"):
        dl.DataLoader(graph, torch.arange(8), s, idtype=torch.float32)


def _fake_dgl(cls_name, module, **attrs):
    cls = type(cls_name, (), {"__module__": module})
    obj = cls()
    obj.__dict__.update(attrs)
    return obj


def test_dgl_sampler_objects_by_exact_class_name(graph):
    assert dl.MultiLayerNeighborSampler is dl.NeighborSampler
    common = dict(edge_dir="in", prob=None, replace=False, prefetch_node_feats=["feat"],
                  prefetch_labels=[], prefetch_edge_feats=[], output_device=None)  # fmt: skip
    theirs = _fake_dgl(
        "NeighborSampler", "dgl.dataloading.neighbor_sampler", fanouts=[2, 3], **common
    )
    _, _, blocks = next(iter(dl.DataLoader(graph, torch.arange(20), theirs, batch_size=20)))
    assert int(blocks[0].in_degrees().max()) == 2 and int(blocks[1].in_degrees().max()) == 3
    assert torch.equal(blocks[0].srcdata["feat"], graph.ndata["feat"][blocks[0].srcdata[NID]])
    full = _fake_dgl("MultiLayerFullNeighborSampler", "dgl.dataloading.neighbor_sampler",
                     fanouts=[-1], **common)  # fmt: skip
    _, out, blocks = next(iter(dl.DataLoader(graph, torch.arange(5), full, batch_size=5)))
    assert torch.equal(blocks[0].in_degrees(), graph.in_degrees()[out])
    # DGL samplers that sample differently are refused, naming the class (ClusterGCN,
    # SAINT and ShaDow map to loaders/dgl_subgraph.py: tests/test_loaders_subgraph_dgl.py)
    for name, module in (
        ("ClusterGCNSampler", "dgl.dataloading.cluster_gcn"),  # a fake: no partition to read
        ("RandomWalkBlockSampler", "dgl.dataloading.custom"),
    ):
        other = _fake_dgl(name, module, fanouts=[5, 5], **common)
        with pytest.raises(TypeError, match=f"{module}.{name}, which gnnsys does not implement"):
            dl.DataLoader(graph, torch.arange(4), other)
    edge = _fake_dgl("EdgePredictionSampler", "dgl.dataloading.base", fanouts=[2])
    with pytest.raises(TypeError, match="EdgePredictionSampler.*as_edge_prediction_sampler"):
        dl.DataLoader(graph, torch.arange(4), edge)  # not DGL's class: no sampler inside
    # DGL's as_edge_prediction_sampler(...) around a sampler gnnsys reproduces is read as ours
    wrap = dict(exclude="self", reverse_eids=None, reverse_etypes=None, prefetch_labels=[])
    edge = _fake_dgl("EdgePredictionSampler", "dgl.dataloading.base", sampler=theirs,
                     negative_sampler=_fake_dgl("PerSourceUniform",
                                                "dgl.dataloading.negative_sampler", k=3),
                     **wrap)  # fmt: skip
    loader = dl.DataLoader(graph, torch.arange(8), edge, batch_size=4, seed=0)
    assert isinstance(loader.graph_sampler, dl.EdgePredictionSampler)
    assert isinstance(loader.graph_sampler.negative_sampler, dl.negative_sampler.Uniform)
    _, pair, neg, blocks = next(iter(loader))
    assert pair.num_edges() == 4 and neg.num_edges() == 12 and len(blocks) == 2
    inner = _fake_dgl("RandomWalkBlockSampler", "dgl.dataloading.custom", fanouts=[2])
    edge = _fake_dgl("EdgePredictionSampler", "dgl.dataloading.base", sampler=inner,
                     negative_sampler=None, **wrap)  # fmt: skip
    with pytest.raises(TypeError, match="graph_sampler.sampler must be.*RandomWalkBlockSampler"):
        dl.DataLoader(graph, torch.arange(4), edge)
    with pytest.raises(TypeError, match="sampler must be.*RandomWalkBlockSampler"):
        dl.as_edge_prediction_sampler(
            _fake_dgl("RandomWalkBlockSampler", "dgl.dataloading.custom", fanouts=[2])
        )
    # DGL's LaborSampler is read by its settings into gnnsys's LABOR-0
    labor = _fake_dgl("LaborSampler", "dgl.dataloading.labor_sampler", fanouts=[2, 3],
                      importance_sampling=0, layer_dependency=True, **common)  # fmt: skip
    loader = dl.DataLoader(graph, torch.arange(20), labor, batch_size=20)
    assert isinstance(loader.graph_sampler, dl.LaborSampler)
    assert loader.graph_sampler.layer_dependency
    _, _, blocks = next(iter(loader))
    assert torch.equal(blocks[0].srcdata["feat"], graph.ndata["feat"][blocks[0].srcdata[NID]])
    # LABOR-i and batch dependency (DGL keeps batch_dependency in its `cnt` counter)
    lab_i = _fake_dgl("LaborSampler", "dgl.dataloading.labor_sampler", fanouts=[2],
                      importance_sampling=1, cnt=torch.tensor([-1, 3]), **common)  # fmt: skip
    loader = dl.DataLoader(graph, torch.arange(4), lab_i, batch_size=4)
    sampler = loader.graph_sampler
    assert (sampler.importance_sampling, sampler.batch_dependency) == (1, 3)
    assert "edge_weights" in next(iter(loader))[2][0].edata


def test_blocks_view_the_samplers_csc(graph, hetero):
    # blocks are the kernel's per-(edge type, hop) CSC: no sort, no recount, no copy
    for g, seeds, etypes in (
        (graph, torch.arange(30), [("_N", "_E", "_N")]),
        (hetero, torch.arange(60, 80), hetero.edge_types),
    ):
        loader = dl.DataLoader(
            g,
            {"item": seeds - 60} if g is hetero else seeds,
            dl.NeighborSampler([3, 4]),
            block_type="gnnsys",
        )
        core = loader._core
        sub = core.sample(seeds, SampleKey(1, 0, 0))
        blocks = core.blocks(sub, {}, {})
        for i, b in enumerate(blocks):
            hop = len(blocks) - i
            for e, et in enumerate(etypes):
                indptr, indices, _, _ = b.adj_csc(et)
                blk = sub.block(hop, e)
                assert indptr.data_ptr() == blk.indptr.data_ptr()
                assert indices.data_ptr() == blk.indices.data_ptr()
                assert (
                    indptr.untyped_storage().data_ptr()
                    == sub.hop_indptr.untyped_storage().data_ptr()
                )


# ---------------------------------------------------------------------------- with DGL itself
def _dgl_hetero(dgl, g):
    dg = dgl.heterograph({et: (ei[0], ei[1]) for et, ei in g.ei.items()}, num_nodes_dict=NUM)
    for nt in ("user", "item"):
        dg.nodes[nt].data["feat"] = g.ndata[(nt, "feat")]
    dg.nodes["item"].data["label"] = g.ndata[("item", "label")]
    dg.edges["buys"].data["w"] = g.edata[("buys", "w")]
    return dg


def test_with_dgl_heterograph_blocks_and_models(hetero):
    dgl = pytest.importorskip("dgl")
    dglnn = pytest.importorskip("dgl.nn")
    dg = _dgl_hetero(dgl, hetero)
    seeds = {"item": torch.arange(0, 40, 2), "user": torch.arange(12)}
    # fanout -1: our blocks and DGL's hold the same nodes and edges per type
    ours = dl.DataLoader(dg, seeds, dl.MultiLayerFullNeighborSampler(2), batch_size=32)
    theirs = dgl.dataloading.DataLoader(
        dg, seeds, dgl.dataloading.MultiLayerFullNeighborSampler(2), batch_size=32
    )
    ((i1, o1, b1),) = list(ours)
    ((i2, o2, b2),) = list(theirs)
    for nt in NUM:
        assert set(i1[nt].tolist()) == set(i2[nt].tolist())
    assert {k: set(v.tolist()) for k, v in o1.items()} == {
        k: set(v.tolist()) for k, v in o2.items()
    }
    for x, y in zip(b1, b2):
        assert isinstance(x, dgl.DGLGraph) and x.is_block
        assert x.srctypes == y.srctypes and x.canonical_etypes == y.canonical_etypes
        for nt in NUM:
            assert (x.num_src_nodes(nt), x.num_dst_nodes(nt)) == (
                y.num_src_nodes(nt),
                y.num_dst_nodes(nt),
            )
        for et in dg.canonical_etypes:
            assert set(x.edges[et].data[EID].tolist()) == set(y.edges[et].data[EID].tolist())
    _check_typed_batch(hetero, [-1, -1], i1, o1, b1)
    # lazy parent columns and per-type data as DGL's blocks have them
    assert torch.equal(b1[0].srcdata["feat"]["user"], dg.nodes["user"].data["feat"][i1["user"]])
    # DGL's own sampler object, with per-type fanouts, is taken by its settings
    their_sampler = dgl.dataloading.NeighborSampler(
        [{et: 2 for et in dg.canonical_etypes}, 3], prefetch_node_feats={"item": ["feat"]}
    )
    _, _, blocks = next(iter(dl.DataLoader(dg, seeds, their_sampler, batch_size=32)))
    assert int(blocks[0].in_degrees(etype="buys").max()) <= 2
    assert torch.equal(
        blocks[0].srcdata["feat"]["item"],
        dg.nodes["item"].data["feat"][blocks[0].srcnodes["item"].data[NID]],
    )
    # DGL's own LaborSampler (LABOR-0) runs as gnnsys's
    _, _, blocks = next(iter(dl.DataLoader(dg, seeds, dgl.dataloading.LaborSampler([2, 2]))))
    assert blocks[0].num_edges() > 0
    # an int32 graph gives int32 ids and blocks, as DGL's loader does
    inp, out, blocks = next(
        iter(dl.DataLoader(dg.int(), seeds, dl.NeighborSampler([2, 2]), batch_size=8))
    )
    assert inp["user"].dtype == out["item"].dtype == torch.int32 and blocks[0].idtype == torch.int32
    # DGL's HeteroGraphConv trains on our blocks unchanged
    torch.manual_seed(0)
    rels = [et[1] for et in dg.canonical_etypes]
    convs = torch.nn.ModuleList(
        [
            dglnn.HeteroGraphConv(
                {r: dglnn.SAGEConv(F, 16, "mean") for r in rels}, aggregate="sum"
            ),
            dglnn.HeteroGraphConv(
                {r: dglnn.SAGEConv(16, 3, "mean") for r in rels}, aggregate="sum"
            ),
        ]
    )
    embed = torch.nn.Parameter(torch.randn(NUM["tag"], F) * 0.1)
    opt = torch.optim.Adam(list(convs.parameters()) + [embed], lr=0.02)
    s = dl.NeighborSampler(
        [4, 4], prefetch_node_feats=["feat"], prefetch_labels={"item": ["label"]}
    )
    loader = dl.DataLoader(dg, {"item": torch.arange(40)}, s, batch_size=20, shuffle=True, seed=0)
    losses = []
    for _ in range(15):
        for inp, _, blocks in loader:
            h = dict(blocks[0].srcdata["feat"])
            h["tag"] = embed[inp["tag"]]
            h = convs[0](blocks[0], h)
            h = {k: torch.relu(v) for k, v in h.items()}
            h = convs[1](blocks[1], h)
            loss = torch.nn.functional.cross_entropy(h["item"], blocks[-1].dstdata["label"]["item"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4, losses


def test_hetero_edge_prediction_callables_and_reverse_ids(hetero):
    g = hetero
    calls = []

    def exclude(eids):  # DGL hands a dict per edge type on a heterograph
        calls.append({k: v.clone() for k, v in eids.items()})
        return {"follows": eids[FOLLOWS] + 1}

    def negatives(graph, eids):
        assert graph is g
        return {FOLLOWS: (g.ei[FOLLOWS][0, eids[FOLLOWS]], torch.zeros_like(eids[FOLLOWS]))}

    s = dl.as_edge_prediction_sampler(
        dl.NeighborSampler([-1]), exclude=exclude, negative_sampler=negatives
    )
    _, pair, neg, blocks = next(
        iter(dl.DataLoader(g, {"follows": torch.arange(10, 30)}, s, batch_size=20))
    )
    assert list(calls[0]) == [FOLLOWS] and calls[0][FOLLOWS].tolist() == list(range(10, 30))
    b = blocks[0]
    assert not bool(torch.isin(b.edges["follows"].data[EID], torch.arange(11, 31)).any())
    ids = pair.ndata[NID]["user"]
    nu, nv = neg.edges(etype="follows")
    u, _ = pair.edges(etype="follows")
    assert torch.equal(ids[nu], ids[u]) and bool((ids[nv] == 0).all())
    assert neg.num_edges("buys") == 0
    # reverse_id per edge type: follows edge e's "reverse" is e + 50 (ids past the range ignored)
    rev = {"follows": torch.arange(150) + 50, "buys": torch.arange(300)}
    s = dl.as_edge_prediction_sampler(
        dl.NeighborSampler([-1]), exclude="reverse_id", reverse_eids=rev
    )
    _, pair, blocks = next(
        iter(dl.DataLoader(g, {"follows": torch.arange(80, 120)}, s, batch_size=40))
    )
    got = blocks[0].edges["follows"].data[EID]
    gone = torch.cat([torch.arange(80, 120), torch.arange(130, 150)])  # 150..169 do not exist
    dst = blocks[0].dstnodes["user"].data[NID]
    kept = torch.isin(g.ei[FOLLOWS][1], dst) & ~torch.isin(torch.arange(150), gone)
    kept = torch.nonzero(kept).flatten()
    assert sorted(got.tolist()) == kept.tolist()
    assert bool(torch.isin(torch.arange(120, 130), kept).any())  # 120..129 are not excluded
    # a reverse id past its type's range names no edge (not one of the next edge type)
    rev = {"buys": torch.arange(300) + 290}
    s = dl.as_edge_prediction_sampler(
        dl.NeighborSampler([-1]), exclude="reverse_id", reverse_eids=rev
    )
    _, _, blocks = next(iter(dl.DataLoader(g, {"buys": torch.arange(20)}, s, batch_size=20)))
    b = blocks[0]
    dst = b.dstnodes["user"].data[NID]
    want = torch.nonzero(torch.isin(g.ei[BOUGHT][1], dst)).flatten()
    assert sorted(b.edges[BOUGHT].data[EID].tolist()) == want.tolist()
    assert bool((want < 10).any())  # bought-by edges 0..9 would be lost to a key collision
    assert not bool(torch.isin(b.edges[BUYS].data[EID], torch.arange(20)).any())
    with pytest.raises(ValueError, match="reverse_eids of edge type .*'follows'.* has 10 entries"):
        bad = dl.as_edge_prediction_sampler(
            dl.NeighborSampler([-1]),
            exclude="reverse_id",
            reverse_eids={"follows": torch.arange(10)},
        )
        dl.DataLoader(g, {"follows": torch.arange(4)}, bad)


def test_pair_graph_hetero_api():
    pg = dl.PairGraph.hetero(
        {
            BUYS: (torch.tensor([0, 1]), torch.tensor([2, 2])),
            FOLLOWS: (torch.tensor([1]), torch.tensor([0])),
        },
        {"user": 2, "item": 3},
        node_ids={"user": torch.tensor([7, 9]), "item": torch.tensor([4, 5, 6])},
        edge_ids={BUYS: torch.tensor([11, 12])},
    )
    assert pg.ntypes == ["user", "item"] and pg.canonical_etypes == [BUYS, FOLLOWS]
    assert pg.num_nodes() == 5 and pg.num_nodes("item") == 3 and pg.num_edges() == 3
    assert pg.ndata[NID]["item"].tolist() == [4, 5, 6] and pg.nodes("user").tolist() == [0, 1]
    assert pg.edata[EID] == {BUYS: pg.edges["buys"].data[EID]}
    assert pg.in_degrees(etype="buys").tolist() == [0, 0, 2] and pg.out_degrees(1, "follows") == 1
    with pytest.raises(ValueError, match="name one"):
        pg.edges()
    with pytest.raises(ValueError, match="ntype='tag'"):
        pg.num_nodes("tag")
    with pg.local_scope():
        pg.ndata["h"] = {"user": torch.ones(2, 1)}
    assert "h" not in pg.ndata
    assert repr(pg).startswith("PairGraph(num_nodes={'user': 2, 'item': 3}")


def test_graph_view_is_kept_with_the_graph_and_follows_its_columns(graph):
    import gc
    import weakref

    g = Graph.from_edge_index(graph.ei, N)
    g.edata["keep"] = torch.ones(E, dtype=torch.bool)
    s = dl.NeighborSampler([-1], mask="keep")
    first = dl.DataLoader(g, torch.arange(50), s, batch_size=50)
    assert dl.DataLoader(g, torch.arange(50), s, batch_size=50)._view is first._view
    assert next(iter(first))[2][0].num_edges() > 0
    g.edata["keep"].zero_()  # changed in place: the next loader samples nothing
    assert next(iter(dl.DataLoader(g, torch.arange(50), s, batch_size=50)))[2][0].num_edges() == 0
    g.edata["keep"] = torch.ones(E, dtype=torch.bool)  # replaced
    assert next(iter(dl.DataLoader(g, torch.arange(50), s, batch_size=50)))[2][0].num_edges() > 0
    ref = weakref.ref(g)
    del g, first
    gc.collect()
    assert ref() is None  # the kept view does not keep the graph alive


def test_a_graph_used_by_a_loader_still_pickles_and_copies(graph):
    # The view kept on the graph holds locks: the graph must still pickle (mp.spawn, DDP) and
    # deep-copy, and the copy samples as the original does.
    import copy
    import pickle

    g = Graph.from_edge_index(graph.ei, N)
    s = dl.NeighborSampler([3, 2])

    def ids(h):
        return _batches_ids(dl.DataLoader(h, torch.arange(40), s, batch_size=20, seed=3))

    want = ids(g)
    for h in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g)):
        got = ids(h)
        assert len(got) == len(want)
        for (a, ea), (b, eb) in zip(got, want):
            assert torch.equal(a, b) and all(torch.equal(x, y) for x, y in zip(ea, eb))


def test_a_dgl_graph_used_by_a_loader_still_pickles():
    # DGL pickles a graph's __dict__, where the view is kept ("cannot pickle '_thread.lock'"
    # before the view's slot pickled as empty)
    import pickle

    dgl = pytest.importorskip("dgl")
    g = dgl.graph((torch.randint(0, 60, (400,)), torch.randint(0, 60, (400,))), num_nodes=60)
    s = dl.NeighborSampler([3, 2])
    want = _batches_ids(dl.DataLoader(g, torch.arange(20), s, batch_size=10, seed=1))
    h = pickle.loads(pickle.dumps(g))
    got = _batches_ids(dl.DataLoader(h, torch.arange(20), s, batch_size=10, seed=1))
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(got, want)) and len(got) == len(want)


# ---------------------------------------------------------------------------- GPU sampling
def test_sampling_device_follows_dgl():
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 1)
    assert dl._sampling_device(cpu, False, cpu) is None  # CPU graph: numba on the CPU
    assert dl._sampling_device(cpu, False, gpu) is None  # ... also when batches go to a GPU
    assert dl._sampling_device(cpu, True, gpu) == gpu  # use_uva: the output GPU, in place
    assert dl._sampling_device(gpu, False, cpu) == gpu  # a CUDA graph: its own GPU


def _batches_ids(loader):
    out = []
    for inp, _, blocks in loader:
        ids = inp if isinstance(inp, torch.Tensor) else torch.cat(list(inp.values()))
        eids = []
        for b in blocks:
            for et in b.canonical_etypes:
                eids.append(b.edges[et].data[EID] if len(b.canonical_etypes) > 1 else b.edata[EID])
        out.append((ids.clone(), [e.clone() for e in eids]))
    return out


@pytest.mark.triton_interpreter
def test_gpu_sampling_path_gives_the_cpu_batches(graph, hetero, monkeypatch):
    # The DGL front's GPU path (the Triton sampler, interpreted on CPU tensors here), forced
    # by pretending the graph wants the GPU: the same blocks as the numba path for a seed.
    def loaders(g, indices, sampler):
        # batches built in the caller: the Triton interpreter is not thread-safe (GPUs are)
        return dl.DataLoader(
            g, indices, sampler, batch_size=8, seed=3, block_type="gnnsys",
            use_prefetch_thread=False,
        )  # fmt: skip

    cases = [
        (graph, torch.arange(20), _sampler(fanouts=(2, 3))),
        (graph, torch.arange(20), _sampler(fanouts=(2, 3), prob="p", replace=True)),
        (hetero, {"item": torch.arange(12)}, dl.NeighborSampler([2, 3])),
    ]
    for g, idx, s in cases:
        want = _batches_ids(loaders(g, idx, s))
        monkeypatch.setattr(dl, "_sampling_device", lambda *a: torch.device("cpu"))
        forced = loaders(g, idx, s)
        assert forced._node_core.sampler.backend == "triton"
        got = _batches_ids(forced)
        monkeypatch.undo()
        assert len(got) == len(want)
        for (a, ea), (b, eb) in zip(got, want):
            assert torch.equal(a, b) and all(torch.equal(x, y) for x, y in zip(ea, eb))


@pytest.mark.triton_interpreter
def test_gpu_sampling_falls_back_to_the_cpu_with_a_warning(graph, monkeypatch):
    monkeypatch.setattr(dl, "_sampling_device", lambda *a: torch.device("cpu"))
    with pytest.warns(UserWarning, match="sampling on the CPU instead of cpu: fanouts above"):
        loader = dl.DataLoader(graph, torch.arange(4), _sampler(fanouts=(2000,)), batch_size=4)
    assert loader._node_core.sampler.backend == "numba"
    next(iter(loader))


def test_labor_sampler_blocks(graph, hetero, block_type):
    # LABOR-0 through the DGL front: blocks keep DGL's invariants, fewer source nodes than
    # neighbour sampling on average, typed graphs too, deterministic for a seed.
    def run(sampler, g=graph, idx=None, seed=5):
        idx = torch.arange(60) if idx is None else idx
        loader = dl.DataLoader(g, idx, sampler, batch_size=60, seed=seed, block_type=block_type)
        return list(loader)

    lab = run(dl.LaborSampler([4, 4], prefetch_node_feats=["feat"]))
    again = run(dl.LaborSampler([4, 4], prefetch_node_feats=["feat"]))
    for (i1, _, b1), (i2, _, b2) in zip(lab, again):
        assert torch.equal(i1, i2) and torch.equal(b1[0].edata[EID], b2[0].edata[EID])
    inp, out, blocks = lab[0]
    assert torch.equal(blocks[-1].dstdata[NID], out)
    assert torch.equal(blocks[0].srcdata["feat"], graph.ndata["feat"][inp])
    for b in blocks:  # every kept edge is a graph edge into its destination
        u, v = b.edges()
        eid = b.edata[EID]
        assert torch.equal(graph.ei[0, eid], b.srcdata[NID][u.long()])
        assert torch.equal(graph.ei[1, eid], b.dstdata[NID][v.long()])
    typed = run(dl.LaborSampler([2, 2]), g=hetero, idx={"item": torch.arange(20)})
    assert typed and typed[0][2][0].num_edges() > 0
    with pytest.raises(TypeError, match="prob must be the name of an edge-data column"):
        dl.LaborSampler([2], prob=3)  # (weighted LABOR itself: tests/test_loaders_labor.py)


# ------------------------------------------- what DGL's own example scripts use (session 46)
def test_blocks_carry_edge_ids_for_edge_data_messages():
    # DGL's CPU SpMM of an edge-data message (fn.copy_e, as RelGraphConv sends) needs the
    # block's edge ids: a block made with an empty id array failed "Check notnull: edges"
    dgl = pytest.importorskip("dgl")
    fn = pytest.importorskip("dgl.function")
    gen = torch.Generator().manual_seed(1)
    ei = torch.randint(0, 200, (2, 1500), generator=gen)
    dg = dgl.graph((ei[0], ei[1]), num_nodes=200)
    _, _, blocks = next(iter(dl.DataLoader(dg, torch.arange(64), dl.NeighborSampler([4]))))
    b = blocks[0]
    w = torch.rand(b.num_edges(), 1, generator=gen)
    b.edata["w"] = w
    b.update_all(fn.copy_e("w", "m"), fn.sum("m", "h"))
    _, v = b.edges()
    want = torch.zeros(b.num_dst_nodes(), 1).index_add_(0, v.long(), w)
    assert torch.allclose(b.dstdata["h"], want)


def test_a_csc_only_dgl_graph_is_sampled():
    # DGL's LABOR example samples g.formats(["csc"]), which cannot list edges by id
    dgl = pytest.importorskip("dgl")
    gen = torch.Generator().manual_seed(2)
    ei = torch.randint(0, 100, (2, 700), generator=gen)
    full = dgl.graph((ei[0], ei[1]), num_nodes=100)
    csc = full.formats(["csc"])
    # the same Graph either way: edge ids kept (its edge_ids map CSC positions to them)
    ours = [Graph.from_dgl(g) for g in (full, csc)]
    assert torch.equal(ours[0].indptr, ours[1].indptr)
    assert torch.equal(ours[0].edge_ids, ours[1].edge_ids)
    assert torch.equal(ours[1].indices.long(), ei[0, ours[1].edge_ids.long()])
    seeds = torch.arange(30)
    for g in (full, csc):
        _, out, blocks = next(
            iter(dl.DataLoader(g, seeds, dl.NeighborSampler([-1]), batch_size=30))
        )
        eid = blocks[0].edata[EID].long()
        u, v = blocks[0].edges()
        src, dst = blocks[0].srcdata[NID].long(), blocks[0].dstdata[NID].long()
        assert torch.equal(ei[0, eid], src[u.long()]) and torch.equal(ei[1, eid], dst[v.long()])
        assert blocks[0].num_edges() == int(torch.isin(ei[1], seeds).sum())


def test_a_loader_follows_replaced_columns(graph, block_type):
    # DGL reads g.ndata at every batch: layer-wise inference replaces a column between two
    # passes of one loader, and the second pass must see the new values
    g = Graph.from_edge_index(graph.ei, N)
    g.ndata["h"] = torch.zeros(N, 3)
    g.edata["keep"] = torch.ones(E, dtype=torch.bool)
    sampler = dl.MultiLayerFullNeighborSampler(1, prefetch_node_feats=["h"], mask="keep")
    loader = dl.DataLoader(g, torch.arange(N), sampler, batch_size=100, block_type=block_type)
    assert all(float(b[0].srcdata["h"].sum()) == 0 for _, _, b in loader)
    g.ndata["h"] = torch.arange(N, dtype=torch.float32)[:, None].repeat(1, 3)
    for _, _, b in loader:
        assert torch.equal(b[0].srcdata["h"][:, 0], b[0].srcdata[NID].float())
    g.edata["keep"] = torch.zeros(E, dtype=torch.bool)  # a new mask: nothing to sample
    assert all(b[0].num_edges() == 0 for _, _, b in loader)
    g.ndata["h"] = torch.zeros(N + 1, 3)
    with pytest.raises(ValueError, match=r"ndata\['h'\] has 301 rows"):
        iter(loader)
    del g.ndata["h"]
    with pytest.raises(ValueError, match="prefetch_node_feats names 'h', which is no longer"):
        iter(loader)


def test_edge_prediction_follows_replaced_labels_and_reads_parent_columns(graph, block_type):
    g = Graph.from_edge_index(graph.ei, N)
    g.ndata["feat"] = graph.ndata["feat"]
    g.edata["lab"] = torch.zeros(E)
    g.edata["w"] = graph.edata["w"]
    s = dl.as_edge_prediction_sampler(
        dl.NeighborSampler([2]), negative_sampler=dl.negative_sampler.Uniform(1),
        prefetch_labels=["lab"],
    )  # fmt: skip
    loader = dl.DataLoader(g, torch.arange(40), s, batch_size=40, block_type=block_type)
    _, pair, neg, _ = next(iter(loader))
    assert float(pair.edata["lab"].sum()) == 0
    # as DGL's (a compacted edge subgraph), the positive pair graph reads every parent column
    nid, eid = pair.ndata[NID].long(), pair.edata[EID].long()
    assert torch.equal(pair.ndata["feat"], graph.ndata["feat"][nid])
    w_by_id = torch.empty(E)
    w_by_id[graph.edge_ids] = graph.edata["w"]
    assert torch.equal(pair.edata["w"], w_by_id[eid])
    assert "feat" not in neg.ndata  # the negative one has only the ids, as DGL's
    g.edata["lab"] = torch.ones(E)
    _, pair, _, _ = next(iter(loader))
    assert float(pair.edata["lab"].sum()) == pair.num_edges()


def test_gpu_cache_of_size_zero_runs_on_the_cpu(graph):
    # DGL's LABOR example passes gpu_cache={"node": {"features": 0}} whatever the device
    s = _sampler()
    ok = dl.DataLoader(graph, torch.arange(8), s, batch_size=8, gpu_cache={"node": {"feat": 0}})
    assert next(iter(ok))[2][0].srcdata["feat"].shape[1] == F
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="gpu_cache caches rows on a GPU"):
            dl.DataLoader(graph, torch.arange(8), s, gpu_cache={"node": {"feat": 10}})
    with pytest.raises(ValueError, match=r"gpu_cache\['node'\]\['feat'\] must be an int >= 0"):
        dl.DataLoader(graph, torch.arange(8), s, gpu_cache={"node": {"feat": -1}})
    with pytest.raises(ValueError, match="gpu_cache keys are 'node' and 'edge'"):
        dl.DataLoader(graph, torch.arange(8), s, gpu_cache={"nodes": {"feat": 1}})


def test_enable_cpu_affinity(graph, capsys):
    import os

    cpus = sorted(os.sched_getaffinity(0))
    loader = dl.DataLoader(graph, torch.arange(200), _sampler(), batch_size=20, num_workers=1)
    with pytest.raises(ValueError, match="at least one DataLoader worker"):
        with dl.DataLoader(graph, torch.arange(8), _sampler()).enable_cpu_affinity():
            pass
    with pytest.raises(ValueError, match="loader_cores has 2 CPUs for num_workers=1"):
        with loader.enable_cpu_affinity(loader_cores=cpus[:1] * 2):
            pass
    with pytest.raises(ValueError, match=r"names CPUs \[100000\]"):
        with loader.enable_cpu_affinity(loader_cores=[100000]):
            pass
    if len(cpus) < 2:
        pytest.skip("pinning a worker apart from the training loop needs two CPUs")
    threads = torch.get_num_threads()
    seen = []
    with loader.enable_cpu_affinity():
        assert os.sched_getaffinity(0) == set(cpus[1:])
        assert torch.get_num_threads() == len(cpus) - 1
        for _ in loader:
            seen.append(os.sched_getaffinity(loader._workers.threads(1)[0].native_id))
    assert seen and all(s == {cpus[0]} for s in seen)
    assert f"assigned to cpus [{cpus[0]}]" in capsys.readouterr().out
    assert os.sched_getaffinity(0) == set(cpus) and torch.get_num_threads() == threads
    for _ in loader:  # the kept worker thread may run anywhere again
        pass
    assert os.sched_getaffinity(loader._workers.threads(1)[0].native_id) == set(cpus)


def test_global_uniform_negatives(graph, hetero, block_type):
    neg = dl.negative_sampler.GlobalUniform(3)
    edges = set(map(tuple, graph.ei.t().tolist()))
    s = dl.as_edge_prediction_sampler(dl.NeighborSampler([2]), negative_sampler=neg)
    runs = []
    for _ in range(2):
        loader = dl.DataLoader(
            graph, torch.arange(300), s, batch_size=100, seed=4, block_type=block_type
        )
        runs.append([ng.edges() for _, _, ng, _ in loader])
        for _, _, ng, _ in loader:
            u, v = ng.edges()
            nid = ng.ndata[NID].long()
            pairs = list(zip(nid[u.long()].tolist(), nid[v.long()].tolist()))
            assert 0 < len(pairs) <= 300 and len(set(pairs)) == len(pairs)
            assert not any(p in edges or p[0] == p[1] for p in pairs)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(*runs))  # deterministic given a seed
    u, v = neg(graph, torch.arange(10))  # DGL's call form
    assert u.numel() == v.numel() <= 30 and not any(p in edges for p in zip(u.tolist(), v.tolist()))
    out = neg(hetero, {"buys": torch.arange(5)})
    ((et, (u, v)),) = out.items()
    assert et == BUYS and bool((u < NUM["user"]).all()) and bool((v < NUM["item"]).all())
    buys = set(map(tuple, hetero.ei[BUYS].t().tolist()))
    assert not any(p in buys for p in zip(u.tolist(), v.tolist()))
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        dl.negative_sampler.GlobalUniform(0)


def test_dataset_is_the_seeds(graph):
    loader = dl.DataLoader(graph, torch.arange(37), _sampler(), batch_size=10)
    assert len(loader.dataset) == 37 and len(loader) == 4


def test_a_sampler_of_the_users_own_runs_on_dgls_dataloader(graph):
    if dl._dgl() is None:  # DGL's own classes are not there to subclass
        with pytest.raises(AttributeError, match="BlockSampler is DGL's own"):
            dl.BlockSampler  # noqa: B018
        return
    dgl = dl._dgl()
    assert dl.BlockSampler is dgl.dataloading.BlockSampler
    assert dl.GraphDataLoader is dgl.dataloading.GraphDataLoader
    for name in dl._DGL_OWN:  # what custom samplers and whole-graph scripts import
        assert getattr(dl, name) is getattr(dgl.dataloading, name), name
    from gnnsys.loaders.dgl import set_src_lazy_features  # noqa: F401

    class OneHop(dl.BlockSampler):  # a sampler of the user's own, as DGL's LADIES example
        def sample_blocks(self, g, seed_nodes, exclude_eids=None):
            frontier = dgl.sampling.sample_neighbors(g, seed_nodes, 2)
            block = dgl.to_block(frontier, seed_nodes)
            return block.srcdata[dgl.NID], seed_nodes, [block]

    src, dst = graph.ei
    dg = dgl.graph((src, dst), num_nodes=N)
    with pytest.warns(UserWarning, match="sampler of your own"):
        loader = dl.DataLoader(dg, torch.arange(40), OneHop(), batch_size=20, seed=1)
    assert isinstance(loader, dgl.dataloading.DataLoader)
    batches = list(loader)
    assert len(batches) == 2 and int(batches[0][2][0].in_degrees().max()) <= 2
    # DGL's edge-prediction wrapper is read as ours only around a sampler we reproduce
    wrapped = dgl.dataloading.as_edge_prediction_sampler(OneHop())
    with pytest.warns(UserWarning, match="sampler of your own"):
        loader = dl.DataLoader(dg, torch.arange(10), wrapped, batch_size=5)
    assert isinstance(loader, dgl.dataloading.DataLoader)
    wrapped = dgl.dataloading.as_edge_prediction_sampler(
        dgl.dataloading.NeighborSampler([2]),
        negative_sampler=dgl.dataloading.negative_sampler.GlobalUniform(2),
    )
    ours = dl.DataLoader(dg, torch.arange(10), wrapped, batch_size=5, seed=1)
    assert isinstance(ours, dl.DataLoader)
    assert isinstance(ours.graph_sampler.negative_sampler, dl.negative_sampler.GlobalUniform)
    input_nodes, pair, neg, blocks = next(iter(ours))
    assert pair.num_edges() == 5 and neg.num_edges() <= 10

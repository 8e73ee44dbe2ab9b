"""HeteroDataset and the ogbn-mag-shaped generator: shape, structure, determinism, the cache,
PyG conversion, validation, and R-GCN > MLP on tiny-mag."""

import importlib.util
import json
import os
from pathlib import Path

import numba
import numpy as np
import pytest
import torch

from gnnsys.datasets import HETERO_NAMES, HeteroDataset, add_reverse_edges, synthetic
from gnnsys.datasets import hetero as H
from gnnsys.graph import Graph

CITES = ("paper", "cites", "paper")
WRITES = ("author", "writes", "paper")
AFFIL = ("author", "affiliated_with", "institution")
TOPIC = ("paper", "has_topic", "field_of_study")
REVERSE = {
    AFFIL: ("institution", "rev_affiliated_with", "author"),
    WRITES: ("paper", "rev_writes", "author"),
    TOPIC: ("field_of_study", "rev_has_topic", "paper"),
}


@pytest.fixture(scope="module")
def tiny():
    return synthetic("tiny-mag", cache=False)


def _arrays(ds):
    g = ds.graph
    out = {"indptr": g.indptr, "indices": g.indices, "edge_ids": g.edge_ids,
           "type_per_edge": g.type_per_edge, "x": ds.x_dict["paper"], "y": ds.y,
           "year": ds.year, "train": ds.train_idx, "val": ds.val_idx, "test": ds.test_idx}  # fmt: skip
    return out


def _assert_same(a, b):
    assert a.num_nodes_dict == b.num_nodes_dict and a.edge_types == b.edge_types
    for k, v in _arrays(a).items():
        assert torch.equal(v, _arrays(b)[k]), k


# ---------------------------------------------------------------------- shape
def test_specs_have_ogbn_mag_sizes():
    mag = H.HETERO_SPECS["mag"]
    assert mag.num_nodes == (736389, 1134649, 8740, 59965) and mag.num_classes == 349
    assert dict(zip(H.MAG_EDGE_TYPES, mag.num_edges)) == {
        AFFIL: 1043998, WRITES: 7145660, CITES: 5416271, TOPIC: 7505078,
    }  # fmt: skip
    mini = H.HETERO_SPECS["mini-mag"]
    assert mini.num_nodes == tuple(round(n / 20) for n in mag.num_nodes)
    assert mini.num_edges == tuple(round(e / 20) for e in mag.num_edges)
    assert mag.feat_dim == mini.feat_dim == 128 and mini.num_classes < mag.num_classes
    assert HETERO_NAMES == ("tiny-mag", "mini-mag", "mag")


def test_tiny_shape(tiny):
    ds = tiny
    spec = H.HETERO_SPECS["tiny-mag"]
    assert isinstance(ds, HeteroDataset) and ds.name == "tiny-mag" and ds.target == "paper"
    assert ds.node_types == ["paper", "author", "institution", "field_of_study"]
    assert ds.num_nodes_dict == dict(zip(H.MAG_NODE_TYPES, spec.num_nodes))
    assert ds.edge_types == [AFFIL, WRITES, CITES, TOPIC, *REVERSE.values()]
    counts = ds.num_edges_dict
    for et, e in zip(H.MAG_EDGE_TYPES, spec.num_edges):
        if et != CITES:  # exact counts; cites is symmetric (2x, less mutual citations)
            assert counts[et] == counts[REVERSE[et]] == e, et
    assert spec.num_edges[2] < counts[CITES] <= 2 * spec.num_edges[2]
    n = spec.num_nodes[0]
    assert list(ds.x_dict) == ["paper"] and ds.x_dict["paper"].shape == (n, 128)
    assert ds.x_dict["paper"].dtype == torch.float32 and ds.num_features == 128
    assert ds.y.dtype == torch.int64 and ds.num_classes == 8
    assert torch.bincount(ds.y, minlength=8).min() > 0 and int(ds.y.max()) < 8
    assert (
        ds.year.dtype == torch.int64 and int(ds.year.min()) >= 2010 and int(ds.year.max()) <= 2019
    )


def test_time_split(tiny):
    ds = tiny
    year = ds.year
    assert bool((year[ds.train_idx] < 2018).all()) and bool((year[ds.val_idx] == 2018).all())
    assert bool((year[ds.test_idx] == 2019).all())
    allidx = torch.cat([ds.train_idx, ds.val_idx, ds.test_idx])
    assert torch.equal(torch.sort(allidx).values, torch.arange(ds.y.numel()))
    frac = torch.tensor([ds.train_idx.numel(), ds.val_idx.numel(), ds.test_idx.numel()]) / 2877
    assert torch.allclose(frac.double(), torch.tensor([0.855, 0.088, 0.057]).double(), atol=0.02)
    assert "year < 2018" in ds.meta["split"]


# ---------------------------------------------------------------------- structure
def test_relations_are_simple_and_reverses_match(tiny):
    ei = tiny.edge_index_dict
    counts = tiny.num_nodes_dict
    for et, e in ei.items():
        keys = e[0] * counts[et[2]] + e[1]
        assert keys.unique().numel() == keys.numel(), f"{et} has parallel edges"
        assert int(e[0].max()) < counts[et[0]] and int(e[1].max()) < counts[et[2]]
    for et, rev in REVERSE.items():
        assert torch.equal(ei[rev], ei[et].flip(0))
    c = ei[CITES]
    assert not bool((c[0] == c[1]).any())  # no self citations
    fwd = set(map(tuple, c.T.tolist()))
    assert fwd == {(d, s) for s, d in fwd}  # symmetric


def test_coverage(tiny):
    ei, n = tiny.edge_index_dict, tiny.num_nodes_dict
    assert int(torch.bincount(ei[WRITES][1], minlength=n["paper"]).min()) >= 1
    assert int(torch.bincount(ei[WRITES][0], minlength=n["author"]).min()) >= 1
    assert int(torch.bincount(ei[TOPIC][0], minlength=n["paper"]).min()) >= 1
    assert int(torch.bincount(ei[AFFIL][1], minlength=n["institution"]).min()) >= 1


def test_planted_communities(tiny):
    ei, y = tiny.edge_index_dict, tiny.y
    p = torch.bincount(y).double() / y.numel()
    chance = float((p * p).sum())  # two random papers share a class
    c = ei[CITES]
    same = (y[c[0]] == y[c[1]]).double().mean().item()
    intra = H.HETERO_SPECS["tiny-mag"].intra[2]
    assert intra - 0.05 < same < intra + (1 - intra) * chance + 0.02, (same, chance)
    # Papers sharing an author share a class far more often than chance (authors' home class).
    w = ei[WRITES]
    shape = (tiny.num_nodes_dict["author"], 2877)
    a = torch.sparse_coo_tensor(w, torch.ones(w.shape[1]), shape, check_invariants=True)
    onehot = torch.nn.functional.one_hot(y, 8).double()
    per_author = torch.sparse.mm(a.double(), onehot)  # [A, C] papers of each class
    k = per_author.sum(1)
    pairs_same = (per_author * (per_author - 1)).sum()
    pairs = (k * (k - 1)).sum()
    assert float(pairs_same / pairs) > 1.3 * chance  # ~1.0x without planted classes


def test_power_law_degrees(tiny):
    ei, n = tiny.edge_index_dict, tiny.num_nodes_dict
    # The weights' tail is cut at its expected maximum, so hubs stand out less on few nodes.
    for et, side, hub in ((CITES, 1, 15), (WRITES, 0, 15), (TOPIC, 1, 5)):
        deg = torch.bincount(ei[et][side], minlength=n[et[2 * side]]).double()
        assert deg.max() > hub * deg.mean(), et  # hubs
        assert deg.median() < 0.8 * deg.mean(), et  # a heavy right tail


def test_same_seed_same_arrays_other_seed_differs(tiny):
    _assert_same(tiny, synthetic("tiny-mag", seed=0, cache=False))
    other = synthetic("tiny-mag", seed=1, cache=False)
    assert not torch.equal(other.y, tiny.y)
    assert not torch.equal(other.graph.indices, tiny.graph.indices)


def test_thread_count_does_not_change_arrays(tiny):
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = synthetic("tiny-mag", cache=False)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = synthetic("tiny-mag", cache=False)
    finally:
        numba.set_num_threads(old)
    _assert_same(one, two)
    _assert_same(one, tiny)


# ---------------------------------------------------------------------- cache
def test_cache_round_trip(tmp_path, tiny):
    first = synthetic("tiny-mag", root=tmp_path)
    folder = tmp_path / "synthetic" / f"tiny-mag-seed0-{H.GENERATOR_VERSION}"
    assert [f.name for f in (tmp_path / "synthetic").iterdir()] == [folder.name]
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted([f"{k}.npy" for k in H._ARRAYS] + ["meta.json"])
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["version"] == H.GENERATOR_VERSION and meta["num_edges"] == tiny.num_edges
    second = synthetic("tiny-mag", root=tmp_path)
    _assert_same(first, tiny)
    _assert_same(second, tiny)
    assert second.meta["seed"] == 0 and second.meta["name"] == "tiny-mag"
    # Memory-mapped copy-on-write: writing to a loaded copy never touches the file.
    second.x_dict["paper"][0, 0] = 1e6
    assert synthetic("tiny-mag", root=tmp_path).x_dict["paper"][0, 0] == tiny.x_dict["paper"][0, 0]
    synthetic("tiny-mag", seed=1, root=tmp_path)
    assert len(list((tmp_path / "synthetic").iterdir())) == 2  # keyed by seed


def test_cache_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GNNSYS_HOME", str(tmp_path / "home"))
    synthetic("tiny-mag")
    assert (tmp_path / "home" / "synthetic" / f"tiny-mag-seed0-{H.GENERATOR_VERSION}").is_dir()


def test_damaged_cache_is_regenerated(tmp_path, tiny):
    synthetic("tiny-mag", root=tmp_path)
    folder = tmp_path / "synthetic" / f"tiny-mag-seed0-{H.GENERATOR_VERSION}"
    os.remove(folder / "type_per_edge.npy")
    with pytest.warns(UserWarning, match="regenerating"):
        again = synthetic("tiny-mag", root=tmp_path)
    _assert_same(again, tiny)
    np.save(folder / "indices.npy", np.zeros(5, np.int32))  # wrong length: caught on load
    with pytest.warns(UserWarning, match="regenerating"):
        again = synthetic("tiny-mag", root=tmp_path)
    _assert_same(again, tiny)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp dirs


def test_names_and_arguments():
    with pytest.raises(ValueError, match="tiny.*rmat20.*tiny-mag.*mini-mag.*'mag'"):
        synthetic("huge-mag")
    with pytest.raises(ValueError, match="seed"):
        synthetic("tiny-mag", seed=-1)
    with pytest.raises(TypeError, match="seed"):
        synthetic("tiny-mag", seed=1.5)
    with pytest.raises(ValueError, match="tiny-mag"):
        H.synthetic_hetero("tiny")


# ---------------------------------------------------------------------- PyG
def test_to_pyg_and_back(tiny):
    data = tiny.to_pyg()
    assert set(data.node_types) == set(tiny.node_types)
    for t, n in tiny.num_nodes_dict.items():
        assert data[t].num_nodes == n
    p = data["paper"]
    assert torch.equal(p.x, tiny.x_dict["paper"]) and torch.equal(p.y, tiny.y)
    assert torch.equal(p.year, tiny.year)
    assert int(p.train_mask.sum()) == tiny.train_idx.numel()
    assert torch.equal(torch.nonzero(p.test_mask).view(-1), tiny.test_idx)
    assert "x" not in data["author"]
    for et in tiny.edge_types:
        assert torch.equal(data[et].edge_index, tiny.edge_index_dict[et])
    back = HeteroDataset.from_pyg(data, name="back")
    assert back.target == "paper" and back.num_classes == 8 and back.meta["split"] == "masks"
    _assert_same(back, tiny)


def test_reverse_edges_match_pyg_to_undirected():
    import torch_geometric.transforms as T
    from torch_geometric.data import HeteroData

    rng = np.random.default_rng(0)
    counts = {"paper": 12, "author": 9, "field_of_study": 4}
    edges = {
        ("author", "writes", "paper"): torch.from_numpy(rng.integers(0, [[9], [12]], (2, 30))),
        CITES: torch.from_numpy(rng.integers(0, 12, (2, 40))),  # with duplicates and loops
        ("paper", "has_topic", "field_of_study"): torch.from_numpy(
            rng.integers(0, [[12], [4]], (2, 20))
        ),
    }
    data = HeteroData()
    for t, n in counts.items():
        data[t].num_nodes = n
    for et, e in edges.items():
        data[et].edge_index = e
    ref = T.ToUndirected()(data)
    ours = add_reverse_edges(edges, counts)
    assert list(ours) == list(ref.edge_types)
    for et in ref.edge_types:
        assert torch.equal(ours[et], ref[et].edge_index), et


def test_add_reverse_edges_errors():
    with pytest.raises(ValueError, match="exists already"):
        add_reverse_edges({("a", "r", "b"): torch.zeros(2, 0, dtype=torch.long),
                           ("b", "rev_r", "a"): torch.zeros(2, 0, dtype=torch.long)},
                          {"a": 1, "b": 1})  # fmt: skip
    with pytest.raises(ValueError, match=r"\[2, E\]"):
        add_reverse_edges({("a", "r", "b"): torch.zeros(3, 1, dtype=torch.long)}, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="node id 2, out of range for 2 'a' nodes"):
        add_reverse_edges({("a", "r", "a"): torch.tensor([[0], [2]])}, {"a": 2})
    with pytest.raises(ValueError, match="node id -1"):
        add_reverse_edges({("a", "r", "a"): torch.tensor([[0], [-1]])}, {"a": 2})
    with pytest.raises(ValueError, match="lacks node type 'a'"):
        add_reverse_edges({("a", "r", "a"): torch.tensor([[0], [1]])}, {"b": 2})
    with pytest.raises(ValueError, match="edge types must be"):
        add_reverse_edges({"r": torch.tensor([[0], [1]])}, {"a": 2})


def _small(**kw):
    g = Graph.from_hetero({("p", "c", "p"): torch.tensor([[0, 1], [1, 2]]),
                           ("a", "w", "p"): torch.tensor([[0], [2]])}, {"p": 3, "a": 1})  # fmt: skip
    args = dict(name="s", graph=g, x_dict={"p": torch.zeros(3, 2)}, y=torch.tensor([0, 1, 1]),
                year=None, train_idx=torch.tensor([0]), val_idx=torch.tensor([1]),
                test_idx=torch.tensor([2]), num_classes=2, target="p")  # fmt: skip
    args.update(kw)
    return HeteroDataset(**args)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(graph="g"), TypeError, "graph"),
        (dict(target="q"), ValueError, "target"),
        (dict(x_dict={"q": torch.zeros(3, 2)}), ValueError, "'q'"),
        (dict(x_dict={"p": torch.zeros(2, 2)}), ValueError, "2 rows.*3 'p' nodes"),
        (dict(x_dict={"p": torch.zeros(3, 2, dtype=torch.long)}), ValueError, "float"),
        (dict(y=torch.tensor([0, 1, 1], dtype=torch.int32)), ValueError, "int64"),
        (dict(y=torch.tensor([0, 1])), ValueError, r"shape \[3\]"),
        (dict(y=torch.tensor([0, 1, 2])), ValueError, "label 2"),
        (dict(year=torch.tensor([2000, 2001])), ValueError, "year"),
        (dict(test_idx=torch.tensor([3])), ValueError, "test_idx"),
        (dict(num_classes=0), ValueError, "num_classes"),
        (dict(num_classes=True), TypeError, "num_classes"),
    ],
)
def test_validation(kw, exc, match):
    with pytest.raises(exc, match=match):
        _small(**kw)


def test_small_dataset_mask_repr_and_from_pyg_without_masks():
    ds = _small(y=torch.tensor([0, -1, 1]))
    assert ds.mask("val").tolist() == [False, True, False]
    with pytest.raises(ValueError, match="split"):
        ds.mask("dev")
    assert "target='p'" in repr(ds) and ds.num_edges_dict == {
        ("p", "c", "p"): 2,
        ("a", "w", "p"): 1,
    }
    data = ds.to_pyg()
    for k in ("train_mask", "val_mask", "test_mask"):
        del data["p"][k]
    with pytest.raises(ValueError, match="split_seed"):
        HeteroDataset.from_pyg(data)
    back = HeteroDataset.from_pyg(data, split_seed=0)
    assert sorted(torch.cat([back.train_idx, back.val_idx, back.test_idx]).tolist()) == [0, 2]
    data["a"].y = torch.tensor([0])
    with pytest.raises(ValueError, match="target"):
        HeteroDataset.from_pyg(data, split_seed=0)
    assert HeteroDataset.from_pyg(data, target="p", split_seed=0).target == "p"
    with pytest.raises(TypeError, match="HeteroData"):
        HeteroDataset.from_pyg({"x": 1})


# ---------------------------------------------------------------------- use
def test_typed_sampler_reads_the_graph(tiny):
    from gnnsys.loaders.base import SampleKey
    from gnnsys.loaders.neighbor import NeighborSampler

    g = tiny.graph
    sampler = NeighborSampler(g, {et: [4, 3] for et in g.edge_types})
    seeds = tiny.train_idx[:32]  # papers are node type 0: global id = paper id
    sub = sampler.sample(seeds, SampleKey(seed=0))
    assert torch.equal(sub.type_nodes(0)[:32], seeds)
    off = g.type_offsets()
    for k, t in enumerate(g.node_types):
        nodes = sub.type_nodes(k)
        assert bool(((nodes >= off[k]) & (nodes < off[k + 1])).all()), t
    assert sub.row.numel() > 32


def _acceptance():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "hetero_acceptance.py"
    spec = importlib.util.spec_from_file_location("hetero_acceptance", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rgcn_beats_mlp_on_tiny(tiny):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread avoids OpenMP spinning on a busy host
    try:
        row = _acceptance().run(tiny, epochs=30, seed=0)
    finally:
        torch.set_num_threads(threads)
    assert row["rgcn_test_acc"] > row["mlp_test_acc"] + 15, row
    assert row["mlp_test_acc"] < 50, row  # paper features alone are weak


def test_nan_features_of_a_node_type_are_refused(tiny):
    import dataclasses

    x = tiny.x_dict["paper"].clone()
    x[2, 0] = float("nan")
    with pytest.raises(ValueError, match=r"x_dict\[.paper.\] holds NaN or inf: row 2"):
        dataclasses.replace(tiny, x_dict={"paper": x})

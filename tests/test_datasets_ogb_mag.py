"""ogbn-mag from small folders written here in OGB's and PyG's raw layouts, and broken ones."""

import gzip
import shutil

import numpy as np
import pytest
import torch

from gnnsys.datasets import HeteroDataset, ogb
from gnnsys.datasets.ogb_mag import ogbn_mag

COUNTS = {"author": 30, "field_of_study": 8, "institution": 5, "paper": 20}  # OGB's header order
RELATIONS = [
    ("author", "affiliated_with", "institution", 25),
    ("author", "writes", "paper", 60),
    ("paper", "cites", "paper", 45),
    ("paper", "has_topic", "field_of_study", 50),
]
F = 4


def _gz(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    edges = {}
    for h, r, t, e in RELATIONS:
        # Distinct pairs in random order; cites holds a few mutual pairs (a->b and b->a).
        pairs = rng.permutation(COUNTS[h] * COUNTS[t])[:e]
        src, dst = pairs // COUNTS[t], pairs % COUNTS[t]
        if h == t:
            keep = src != dst
            src, dst = src[keep], dst[keep]
            src, dst = np.concatenate([src, dst[:3]]), np.concatenate([dst, src[:3]])
        edges[(h, r, t)] = np.stack([src, dst])
    n = COUNTS["paper"]
    x = (rng.standard_normal((n, F)) * 10.0 ** rng.integers(-3, 3, (n, F))).astype(np.float32)
    y = rng.integers(0, 349, n)
    year = rng.integers(2010, 2020, n)
    ids = np.arange(n)
    parts = (ids[year < 2018], ids[year == 2018], ids[year > 2018])
    return edges, x, y, year, parts


def _write(root, layout="ogb", seed=0, triplets=True):
    """Write ogbn-mag's raw files; returns the dataset folder and the arrays written."""
    edges, x, y, year, parts = arrays = _arrays(seed)
    folder = root / ("ogbn_mag" if layout == "ogb" else "mag")
    raw = folder / "raw"
    split = (folder if layout == "ogb" else raw) / "split" / "time"
    _gz(raw / "num-node-dict.csv.gz", [",".join(COUNTS), ",".join(map(str, COUNTS.values()))])
    if triplets:
        _gz(raw / "triplet-type-list.csv.gz", [",".join(et) for et in edges])
    for k, (et, ei) in enumerate(edges.items()):
        rel = raw / "relations" / "___".join(et)
        _gz(rel / "edge.csv.gz", [f"{s},{d}" for s, d in ei.T])
        _gz(rel / "num-edge-list.csv.gz", [str(ei.shape[1])])
        _gz(rel / "edge_reltype.csv.gz", [str(k)] * ei.shape[1])
    _gz(raw / "node-feat" / "paper" / "node-feat.csv.gz",
        [",".join(repr(float(v)) for v in row) for row in x])  # fmt: skip
    _gz(raw / "node-feat" / "paper" / "node_year.csv.gz", [str(v) for v in year])
    _gz(raw / "node-label" / "paper" / "node-label.csv.gz", [str(v) for v in y])
    _gz(raw / "nodetype-has-label.csv.gz", [",".join(COUNTS), "False,False,False,True"])
    for name, idx in zip(("train", "valid", "test"), parts):
        _gz(split / "paper" / f"{name}.csv.gz", [str(i) for i in idx])
    _gz(split / "nodetype-has-split.csv.gz", [",".join(COUNTS), "False,False,False,True"])
    return folder, arrays


def _pyg_reference(edges, x, y, year, parts, undirected):
    """The HeteroData PyG's OGB_MAG builds from the same files (+ T.ToUndirected())."""
    import torch_geometric.transforms as T
    from torch_geometric.data import HeteroData

    data = HeteroData()
    data["paper"].x = torch.from_numpy(x)
    for t in ("author", "institution", "field_of_study"):
        data[t].num_nodes = COUNTS[t]
    for et, ei in edges.items():
        data[et].edge_index = torch.from_numpy(ei)
    return T.ToUndirected()(data) if undirected else data


def test_ogb_layout_matches_pyg(tmp_path):
    _, (edges, x, y, year, parts) = _write(tmp_path)
    ds = ogb("ogbn-mag", tmp_path)
    assert isinstance(ds, HeteroDataset) and ds.name == "ogbn-mag" and ds.num_classes == 349
    assert ds.target == "paper" and ds.meta["split"] == "time" and ds.meta["undirected"] is True
    assert ds.num_nodes_dict == {"paper": 20, "author": 30, "institution": 5, "field_of_study": 8}
    assert torch.equal(ds.x_dict["paper"], torch.from_numpy(x)) and list(ds.x_dict) == ["paper"]
    assert torch.equal(ds.y, torch.from_numpy(y)) and torch.equal(ds.year, torch.from_numpy(year))
    for idx, ref in zip((ds.train_idx, ds.val_idx, ds.test_idx), parts):
        assert idx.tolist() == ref.tolist()
    ref = _pyg_reference(edges, x, y, year, parts, undirected=True)
    assert sorted(ds.edge_types) == sorted(ref.edge_types) and len(ds.edge_types) == 7
    for et in ref.edge_types:  # same edges in the same order as T.ToUndirected()
        assert torch.equal(ds.edge_index_dict[et], ref[et].edge_index), et
    ei = edges[("paper", "cites", "paper")]
    both = {(int(s), int(d)) for s, d in ei.T} | {(int(d), int(s)) for s, d in ei.T}
    assert len(both) < 2 * ei.shape[1]  # mutual citations are stored once per direction
    assert ds.edge_index_dict[("paper", "cites", "paper")].T.tolist() == sorted(map(list, both))


def test_directed_keeps_the_files_edges(tmp_path):
    _, (edges, *_rest) = _write(tmp_path)
    ds = ogbn_mag(tmp_path, undirected=False)
    assert ds.edge_types == list(edges)  # OGB's sorted relation order
    for et, ei in edges.items():
        assert torch.equal(ds.edge_index_dict[et], torch.from_numpy(ei)), et


def test_pyg_layout_and_dataset_folder_as_root(tmp_path):
    folder, (edges, x, *_rest) = _write(tmp_path, layout="pyg", triplets=False)
    a = ogbn_mag(tmp_path)
    b = ogbn_mag(folder)
    shutil.rmtree(tmp_path / "mag")
    _write(tmp_path, layout="ogb")
    c = ogbn_mag(tmp_path)
    for ds in (a, b):
        assert ds.edge_types == c.edge_types
        for et in c.edge_types:
            assert torch.equal(ds.edge_index_dict[et], c.edge_index_dict[et])
        assert torch.equal(ds.x_dict["paper"], c.x_dict["paper"])
        assert torch.equal(ds.train_idx, c.train_idx) and torch.equal(ds.test_idx, c.test_idx)


def test_to_pyg_round_trip(tmp_path):
    _write(tmp_path)
    ds = ogbn_mag(tmp_path)
    back = HeteroDataset.from_pyg(ds.to_pyg(), name="ogbn-mag")
    assert back.num_classes <= 349 and torch.equal(back.y, ds.y)
    assert torch.equal(back.year, ds.year) and torch.equal(back.val_idx, ds.val_idx)
    for et in ds.edge_types:
        assert torch.equal(back.edge_index_dict[et], ds.edge_index_dict[et])


REQUIRED = [
    "raw/num-node-dict.csv.gz",
    "raw/relations/author___writes___paper/edge.csv.gz",
    "raw/relations/paper___cites___paper/edge.csv.gz",
    "raw/node-feat/paper/node-feat.csv.gz",
    "raw/node-feat/paper/node_year.csv.gz",
    "raw/node-label/paper/node-label.csv.gz",
    "split/time/paper/valid.csv.gz",
]


@pytest.mark.parametrize("rel", REQUIRED)
def test_missing_file_is_named(tmp_path, rel):
    folder, _ = _write(tmp_path)
    (folder / rel).unlink()
    with pytest.raises(FileNotFoundError, match=rel.split("/")[-1].replace(".", r"\.")) as err:
        ogbn_mag(tmp_path)
    assert rel.split("/")[-2] in str(err.value)


def test_missing_folder_lists_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ogbn-mag folder.*num-node-dict.csv.gz"):
        ogbn_mag(tmp_path)


def _rewrite(path, lines):
    path.unlink()
    _gz(path, lines)


def test_wrong_edge_count(tmp_path):
    folder, _ = _write(tmp_path)
    rel = folder / "raw/relations/author___writes___paper"
    _rewrite(rel / "num-edge-list.csv.gz", ["61"])
    with pytest.raises(ValueError, match=r"author___writes___paper/edge\.csv\.gz has 60 rows, "
                                         "expected 61"):  # fmt: skip
        ogbn_mag(tmp_path)


def test_wrong_feature_rows(tmp_path):
    folder, _ = _write(tmp_path)
    path = folder / "raw/node-feat/paper/node-feat.csv.gz"
    _rewrite(path, ["1,2,3,4"] * 19)
    with pytest.raises(ValueError, match=r"node-feat\.csv\.gz has 19 rows, expected 20"):
        ogbn_mag(tmp_path)


def test_node_id_out_of_range(tmp_path):
    folder, _ = _write(tmp_path)
    _rewrite(folder / "raw/relations/paper___has_topic___field_of_study/edge.csv.gz", ["0,8"])
    _rewrite(folder / "raw/relations/paper___has_topic___field_of_study/num-edge-list.csv.gz",
             ["1"])  # fmt: skip
    with pytest.raises(ValueError, match=r"has_topic.*destination id 8 is out of range for 8 "
                                         "'field_of_study'"):  # fmt: skip
        ogbn_mag(tmp_path)


@pytest.mark.parametrize(
    "lines, match",
    [
        (["author,paper"], "header of node types and one row"),
        (["author,field_of_study,institution,paper", "30,8,5"], "3 fields"),
        (["author,field_of_study,institution,paper", "30,8,x,20"], "'institution'.*'x'"),
        (["author,field_of_study,institution", "30,8,5"], "no 'paper' column"),
    ],
)
def test_bad_node_counts(tmp_path, lines, match):
    folder, _ = _write(tmp_path)
    _rewrite(folder / "raw/num-node-dict.csv.gz", lines)
    with pytest.raises(ValueError, match=match):
        ogbn_mag(tmp_path)


def test_wrong_paper_count_shows_in_the_edges(tmp_path):
    folder, _ = _write(tmp_path)
    _rewrite(folder / "raw/num-node-dict.csv.gz",
             ["author,field_of_study,institution,paper", "30,8,5,10"])  # fmt: skip
    with pytest.raises(ValueError, match="out of range for 10 'paper' nodes"):
        ogbn_mag(tmp_path)


def test_bad_labels_and_split(tmp_path):
    folder, (_, _, y, _, parts) = _write(tmp_path)
    label = folder / "raw/node-label/paper/node-label.csv.gz"
    _rewrite(label, ["349"] + [str(v) for v in y[1:]])
    with pytest.raises(ValueError, match="349, outside 0..348"):
        ogbn_mag(tmp_path)
    _rewrite(label, [str(v) for v in y])
    _rewrite(folder / "split/time/paper/test.csv.gz", ["20"])
    with pytest.raises(IndexError, match=r"test\.csv\.gz holds paper id 20"):
        ogbn_mag(tmp_path)


def test_unknown_relation_type(tmp_path):
    folder, _ = _write(tmp_path)
    _rewrite(folder / "raw/triplet-type-list.csv.gz", ["author,writes,venue"])
    with pytest.raises(ValueError, match="'venue'"):
        ogbn_mag(tmp_path)


def test_bad_arguments(tmp_path):
    _write(tmp_path)
    with pytest.raises(TypeError, match="root"):
        ogbn_mag(3)
    with pytest.raises(TypeError, match="undirected"):
        ogbn_mag(tmp_path, undirected="yes")
    with pytest.raises(ValueError, match="split"):
        ogbn_mag(tmp_path, split="../x")
    with pytest.raises(FileNotFoundError, match="sales"):
        ogbn_mag(tmp_path, split="sales")

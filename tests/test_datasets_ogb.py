"""Offline OGB loading from small folders written here in OGB's layouts, and the CSV reader."""

import gzip
import importlib

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnnsys.datasets import ogb

O = importlib.import_module("gnnsys.datasets.ogb")  # the module; the package exports the function

N, E, F = 30, 70, 3


def _gz(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def _graph_arrays(seed=0, n=N, e=E):
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, e)
    dst = (src + rng.integers(1, n, e)) % n  # no self loops
    x = rng.standard_normal((n, F)).astype(np.float32) * 10.0 ** rng.integers(-4, 4, (n, F))
    y = rng.integers(0, 5, n)
    perm = rng.permutation(n)
    return src, dst, x.astype(np.float32), y, (perm[:10], perm[10:15], perm[15:])


def _write_split(folder, split, parts):
    for fname, idx in zip(("train", "valid", "test"), parts):
        _gz(folder / "split" / split / f"{fname}.csv.gz", [str(int(i)) for i in idx])


def _write_raw_csv(root, name, split, seed=0):
    src, dst, x, y, parts = _graph_arrays(seed)
    folder = root / name.replace("-", "_")
    raw = folder / "raw"
    _gz(raw / "edge.csv.gz", [f"{s},{d}" for s, d in zip(src, dst)])
    _gz(raw / "node-feat.csv.gz", [",".join(repr(float(v)) for v in row) for row in x])
    _gz(raw / "node-label.csv.gz", [str(v) for v in y])
    _gz(raw / "num-node-list.csv.gz", [str(N)])
    _gz(raw / "num-edge-list.csv.gz", [str(E)])
    _write_split(folder, split, parts)
    return folder, (src, dst, x, y, parts)


def _adj(src, dst, n=N, counts=False):
    # Adjacency with edge multiplicities (counts=True) or 0/1 entries.
    a = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)).tocsr()
    if not counts:
        a.data[:] = 1
    return a


def _graph_adj(ds):
    a = ds.graph.to_scipy().tocsr()
    assert a.max() == 1  # no duplicate edges
    return a


def test_arxiv_raw_csv_symmetrised_and_directed(tmp_path):
    _, (src, dst, x, y, parts) = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    ds = ogb("ogbn-arxiv", tmp_path)
    assert ds.name == "ogbn-arxiv" and ds.num_classes == 40 and ds.num_nodes == N
    assert (_graph_adj(ds) != (_adj(src, dst) + _adj(dst, src)).sign()).nnz == 0
    assert torch.equal(ds.x, torch.from_numpy(x)) and ds.x.dtype == torch.float32
    assert torch.equal(ds.y, torch.from_numpy(y))
    for idx, ref in zip((ds.train_idx, ds.val_idx, ds.test_idx), parts):
        assert idx.tolist() == ref.tolist()
    directed = ogb("ogbn-arxiv", tmp_path, undirected=False)
    assert directed.num_edges == E
    assert (directed.graph.to_scipy().tocsr() != _adj(src, dst, counts=True)).nnz == 0


def test_products_raw_adds_inverse_edges(tmp_path):
    _, (src, dst, *_rest) = _write_raw_csv(tmp_path, "ogbn-products", "sales_ranking", seed=1)
    for undirected in (True, False):
        ds = ogb("ogbn-products", tmp_path, undirected=undirected)
        assert ds.num_classes == 47 and ds.num_edges == 2 * E
        a = ds.graph.to_scipy().tocsr()
        assert (a != a.T).nnz == 0


def test_root_may_be_the_dataset_folder_itself(tmp_path):
    folder, _ = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    assert ogb("ogbn-arxiv", folder).num_nodes == N
    assert ogb("ogbn-arxiv", str(tmp_path)).num_nodes == N


def _pyg_data(seed=0):
    from torch_geometric.data import Data

    src, dst, x, y, parts = _graph_arrays(seed)
    ei = np.stack([src, dst])
    data = Data(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(ei),
        y=torch.from_numpy(y).view(-1, 1),
        node_year=torch.zeros(N, 1, dtype=torch.long),
    )
    data.num_nodes = N
    return data, (src, dst, x, y, parts)


@pytest.mark.parametrize("style", ["ogb_collate", "pyg_save"])
def test_pyg_processed_file(tmp_path, style):
    from torch_geometric.data import InMemoryDataset

    data, (src, dst, x, y, parts) = _pyg_data()
    folder = tmp_path / "ogbn_arxiv_pyg"  # ogb uses this name when it exists
    (folder / "processed").mkdir(parents=True)
    path = folder / "processed" / "geometric_data_processed.pt"
    if style == "ogb_collate":  # what ogb 1.3.6's PygNodePropPredDataset writes
        torch.save(InMemoryDataset.collate([data]), path)
    else:  # what newer PyG's InMemoryDataset.save writes
        InMemoryDataset.save([data], str(path))
    _write_split(folder, "time", parts)
    ds = ogb("ogbn-arxiv", tmp_path)
    assert ds.meta["source"].endswith("(processed)")
    assert (_graph_adj(ds) != (_adj(src, dst) + _adj(dst, src)).sign()).nnz == 0
    assert torch.equal(ds.x, torch.from_numpy(x)) and torch.equal(ds.y, torch.from_numpy(y))


def test_library_agnostic_processed_file_and_split_dict(tmp_path):
    src, dst, x, y, parts = _graph_arrays(2)
    # products processed files already hold both directions; they are taken as they are.
    ei = np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])])
    folder = tmp_path / "ogbn_products"
    (folder / "processed").mkdir(parents=True)
    graph = {"edge_index": ei, "node_feat": x, "edge_feat": None, "num_nodes": N}
    torch.save(
        {"graph": graph, "labels": y.reshape(-1, 1)}, folder / "processed" / "data_processed"
    )
    (folder / "split" / "sales_ranking").mkdir(parents=True)
    split = {"train": torch.from_numpy(parts[0]), "valid": parts[1], "test": parts[2].tolist()}
    torch.save(split, folder / "split" / "sales_ranking" / "split_dict.pt")
    ds = ogb("ogbn-products", tmp_path)
    assert ds.num_edges == 2 * E
    assert ds.test_idx.tolist() == parts[2].tolist() and ds.val_idx.tolist() == parts[1].tolist()


def test_papers100m_npz_with_unlabelled_nodes(tmp_path):
    src, dst, x, y, parts = _graph_arrays(3)
    folder = tmp_path / "ogbn_papers100M"
    (folder / "raw").mkdir(parents=True)
    np.savez(
        folder / "raw" / "data.npz",
        edge_index=np.stack([src, dst]),
        node_feat=x.astype(np.float16),
        num_nodes_list=np.array([N]),
        num_edges_list=np.array([E]),
        node_year=np.zeros((N, 1), dtype=np.int64),
    )
    labels = y.astype(np.float64).reshape(-1, 1)
    labels[::3] = np.nan
    np.savez(folder / "raw" / "node-label.npz", node_label=labels)
    _write_split(folder, "time", parts)
    ds = ogb("ogbn-papers100M", tmp_path)
    assert ds.num_classes == 172 and ds.x.dtype == torch.float16
    expect = np.where(np.arange(N) % 3 == 0, -1, y)
    assert ds.y.tolist() == expect.tolist()
    directed = ogb("ogbn-papers100M", tmp_path, undirected=False)
    assert (directed.graph.to_scipy().tocsr() != _adj(src, dst, counts=True)).nnz == 0


def test_broken_processed_file_falls_back_to_raw(tmp_path):
    folder, _ = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    (folder / "processed").mkdir()
    torch.save({"unexpected": 1}, folder / "processed" / "data_processed")
    with pytest.warns(UserWarning, match="reading raw files"):
        ds = ogb("ogbn-arxiv", tmp_path)
    assert ds.meta["source"].endswith("(raw)")


# ---------------------------------------------------------------------- errors
def test_unknown_name_and_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="ogbn-arxiv.*ogbn-products.*ogbn-papers100M"):
        ogb("ogbn-proteins", tmp_path)
    with pytest.raises(TypeError, match="root"):
        ogb("ogbn-arxiv", None)
    with pytest.raises(TypeError, match="undirected"):
        ogb("ogbn-arxiv", tmp_path, undirected=1)


def test_missing_folder_lists_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="ogbn_arxiv.*raw/.*edge.csv.gz.*split/time"):
        ogb("ogbn-arxiv", tmp_path)
    with pytest.raises(FileNotFoundError, match="data.npz.*node-label.npz"):
        ogb("ogbn-papers100M", tmp_path)


def test_missing_raw_file_lists_expected_files(tmp_path):
    folder, _ = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    (folder / "raw" / "node-feat.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match="lacks node-feat.csv.gz.*num-edge-list.csv.gz"):
        ogb("ogbn-arxiv", tmp_path)


def test_missing_split_lists_expected_files(tmp_path):
    folder, _ = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    (folder / "split" / "time" / "valid.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match="lacks valid.csv.gz.*train.csv.gz"):
        ogb("ogbn-arxiv", tmp_path)
    with pytest.raises(FileNotFoundError, match="split/other"):
        ogb("ogbn-arxiv", tmp_path, split="other")


def test_malformed_raw_files(tmp_path):
    folder, (src, dst, *_r) = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    raw = folder / "raw"
    lines = [f"{s},{d}" for s, d in zip(src, dst)]
    _gz(raw / "edge.csv.gz", lines[:5] + ["7,x"] + lines[6:])
    with pytest.raises(ValueError, match="edge.csv.gz: line 6: expected 2 comma-separated"):
        ogb("ogbn-arxiv", tmp_path)
    _gz(raw / "edge.csv.gz", lines[:-1])
    with pytest.raises(ValueError, match="has 69 rows, expected 70"):
        ogb("ogbn-arxiv", tmp_path)
    _gz(raw / "edge.csv.gz", lines[:-1] + [f"0,{N}"])
    with pytest.raises(ValueError, match=f"holds node id {N}, out of range"):
        ogb("ogbn-arxiv", tmp_path)
    _gz(raw / "edge.csv.gz", lines)
    _gz(raw / "node-label.csv.gz", ["41"] * N)
    with pytest.raises(ValueError, match="hold 41, outside 0..39"):
        ogb("ogbn-arxiv", tmp_path)
    (raw / "node-label.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="not a readable gzip"):
        ogb("ogbn-arxiv", tmp_path)


def test_split_ids_out_of_range(tmp_path):
    folder, _ = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    _gz(folder / "split" / "time" / "test.csv.gz", ["1", str(N + 4)])
    with pytest.raises(IndexError, match=f"time/test holds node id {N + 4}"):
        ogb("ogbn-arxiv", tmp_path)


# ---------------------------------------------------------------------- CSV reader
def test_float_parsing_matches_python(tmp_path):
    tokens = [
        "1.5e-3", "-2", "+3.25", "4.0", "0.000001234", "123456789012345678901234",
        "3.14159265358979323846", "-0.0", "1E5", "7.", ".5", "2.5e+10", "1e-30", "9e22",
    ]  # fmt: skip
    rows = [",".join(tokens[i : i + 2]) for i in range(0, len(tokens), 2)]
    _gz(tmp_path / "f.csv.gz", rows)
    got = O.read_csv_gz(tmp_path / "f.csv.gz", integer=False)
    np.testing.assert_allclose(got.reshape(-1), [float(t) for t in tokens], rtol=1e-15)


def test_special_values_blanks_and_crlf(tmp_path):
    path = tmp_path / "s.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"nan, 1\r\n\r\n  -inf ,2\r\nInf,NaN\r\n\n1e400,3")  # no final newline
    got = O.read_csv_gz(path, integer=False, rows=4, cols=2)
    assert np.isnan(got[0, 0]) and got[0, 1] == 1 and got[1, 0] == -np.inf
    assert got[2, 0] == np.inf and np.isnan(got[2, 1]) and got[3, 0] == np.inf


def test_streaming_blocks_and_parallel_chunks_agree(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    ints = rng.integers(-(10**12), 10**12, (500, 3))
    _gz(tmp_path / "i.csv.gz", [",".join(map(str, r)) for r in ints])
    monkeypatch.setattr(O, "_BLOCK", 97)  # many partial lines carried between blocks
    monkeypatch.setattr(O, "_MIN_CHUNK", 16)  # several parallel chunks per block
    got = O.read_csv_gz(tmp_path / "i.csv.gz", integer=True, rows=500, cols=3)
    assert got.dtype == np.int64 and np.array_equal(got, ints)
    got = O.read_csv_gz(tmp_path / "i.csv.gz", integer=True)  # rows and cols unknown
    assert np.array_equal(got, ints)


def test_integers_stay_exact_beyond_float_precision(tmp_path):
    big = [2**53 + 1, -(2**59) - 3, 10**18 - 1]  # ids up to 18 digits
    _gz(tmp_path / "b.csv.gz", [str(v) for v in big])
    got = O.read_csv_gz(tmp_path / "b.csv.gz", integer=True)
    assert got.dtype == np.int64 and got.reshape(-1).tolist() == big
    as_float = O.read_csv_gz(tmp_path / "b.csv.gz", integer=False, dtype=np.float32)
    assert as_float.dtype == np.float32 and as_float[0, 0] == np.float32(2**53)


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("1,2\n3\n", dict(integer=True), "line 2: expected 2"),
        ("1,2\n3,4,5\n", dict(integer=True), "line 2: expected 2"),
        ("1,2\n1.5,2\n", dict(integer=True), "line 2: expected 2 comma-separated integers"),
        ("1\n2\n\n-\n", dict(integer=False), "line 4: expected 1 comma-separated numbers"),
        ("1e\n", dict(integer=False), "line 1"),
        ("12345678901234567890\n", dict(integer=True), "line 1"),
        ("1\n2\n3\n", dict(integer=True, rows=2), "more than the expected 2 rows"),
        ("1\n2\n", dict(integer=True, rows=3), "has 2 rows, expected 3"),
        ("1\n", dict(integer=False, dtype=np.int32), "integer=False parses numbers into a float"),
    ],
)
def test_csv_errors(tmp_path, text, kwargs, match):
    with gzip.open(tmp_path / "e.csv.gz", "wt") as fh:
        fh.write(text)
    with pytest.raises(ValueError, match=match):
        O.read_csv_gz(tmp_path / "e.csv.gz", **kwargs)


def test_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing file"):
        O.read_csv_gz(tmp_path / "nope.csv.gz", integer=True)


def _write_papers(tmp_path, save=np.savez, edge_index=None, seed=4):
    src, dst, x, y, parts = _graph_arrays(seed)
    folder = tmp_path / "ogbn_papers100M"
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    save(
        folder / "raw" / "data.npz",
        edge_index=np.stack([src, dst]) if edge_index is None else edge_index,
        node_feat=x,
        num_nodes_list=np.array([N]),
        num_edges_list=np.array([E]),
    )
    labels = y.astype(np.float64).reshape(-1, 1)
    labels[1::4] = np.nan
    save(folder / "raw" / "node-label.npz", node_label=labels)
    _write_split(folder, "time", parts)
    return folder, src, dst, x, labels, parts


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("undirected", [True, False])
def test_papers100m_raw_is_streamed_to_a_mapped_csc_folder(tmp_path, save, undirected):
    from gnnsys.datasets.dataset import graph_from_coo

    folder, src, dst, x, labels, parts = _write_papers(tmp_path, save)
    ds = ogb("ogbn-papers100M", tmp_path, undirected=undirected, memory_budget="2G")
    ref = graph_from_coo(src, dst, N, symmetrise=undirected, dedupe=undirected)
    assert torch.equal(ds.graph.indptr, ref.indptr) and torch.equal(ds.graph.indices, ref.indices)
    assert ds.graph._source is not None  # memory-mapped from the converted folder
    assert ds.x.dtype == torch.float16 and torch.equal(ds.x, torch.from_numpy(x).half())
    expect = np.where(np.isnan(labels[:, 0]), -1, labels[:, 0]).astype(np.int64)
    assert ds.y.tolist() == expect.tolist()
    assert ds.train_idx.tolist() == parts[0].tolist() and ds.test_idx.tolist() == parts[2].tolist()
    (out,) = [p for p in (folder / "processed").iterdir() if p.name.startswith("gnnsys_csc")]
    assert ("undirected" if undirected else "directed") in out.name
    stamp = (out / "meta.json").stat().st_mtime_ns
    again = ogb("ogbn-papers100M", tmp_path, undirected=undirected)  # read, not converted again
    assert (out / "meta.json").stat().st_mtime_ns == stamp
    assert torch.equal(again.graph.indices, ds.graph.indices)


def test_papers100m_fortran_edge_index_and_bad_raw_files(tmp_path):
    from gnnsys.datasets.dataset import graph_from_coo

    src, dst = _graph_arrays(4)[:2]
    _write_papers(tmp_path, edge_index=np.asfortranarray(np.stack([src, dst])))
    ds = ogb("ogbn-papers100M", tmp_path)
    ref = graph_from_coo(src, dst, N, symmetrise=True, dedupe=True)
    assert torch.equal(ds.graph.indices, ref.indices)
    bad = tmp_path / "b"
    _write_papers(bad, edge_index=np.stack([src, dst + N]))
    with pytest.raises(ValueError, match=r"data.npz:edge_index holds node id \d+, out of range"):
        ogb("ogbn-papers100M", bad)
    junk = tmp_path / "j"
    folder = _write_papers(junk)[0]
    (folder / "raw" / "node-label.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="node-label.npz is not a readable npz"):
        ogb("ogbn-papers100M", junk)
    assert not any(p.name.startswith("gnnsys_csc") for p in (folder / "processed").iterdir())

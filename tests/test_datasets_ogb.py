"""Offline OGB loading from small folders written here in OGB's layouts, and the CSV reader."""

import gzip
import importlib
import json

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
    ds = ogb("ogbn-papers100M", tmp_path, node_order="given")
    assert ds.num_classes == 172 and ds.x.dtype == torch.float16
    expect = np.where(np.arange(N) % 3 == 0, -1, y)
    assert ds.y.tolist() == expect.tolist()
    directed = ogb("ogbn-papers100M", tmp_path, undirected=False, node_order="given")
    assert (directed.graph.to_scipy().tocsr() != _adj(src, dst, counts=True)).nnz == 0


def test_broken_processed_file_falls_back_to_raw(tmp_path):
    folder, _ = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    (folder / "processed").mkdir()
    torch.save({"unexpected": 1}, folder / "processed" / "data_processed")
    with pytest.warns(UserWarning, match="reading raw files"):
        ds = ogb("ogbn-arxiv", tmp_path)
    assert ds.meta["source"].endswith("(raw)")


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"\x80\x04garbage, not a pickle"),  # UnpicklingError
        lambda p: p.write_bytes(p.read_bytes()[:200]),  # a torn zip: RuntimeError
        lambda p: p.write_bytes(b""),  # EOFError
    ],
)
def test_corrupt_processed_file_falls_back_to_raw(tmp_path, damage):
    folder, _ = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    (folder / "processed").mkdir()
    path = folder / "processed" / "geometric_data_processed.pt"
    torch.save(_pyg_data()[0], path)
    damage(path)
    with pytest.warns(UserWarning, match="reading raw files; .*geometric_data_processed.pt: "):
        ds = ogb("ogbn-arxiv", tmp_path)
    assert ds.meta["source"].endswith("(raw)")


def test_corrupt_split_dict_names_the_file(tmp_path):
    folder, _ = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    (folder / "split" / "time" / "split_dict.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"split_dict.pt cannot be read \(UnpicklingError: "):
        ogb("ogbn-arxiv", tmp_path)


def test_overlapping_or_repeated_split_ids_warn(tmp_path):
    folder, (*_, (train, val, test)) = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    _write_split(folder, "time", [np.concatenate([train, train[:2]]), val, test[:5]])
    with pytest.warns(UserWarning) as caught:
        ogb("ogbn-arxiv", tmp_path)
    text = " | ".join(str(w.message) for w in caught)
    assert "train_idx lists 2 node(s) more than once" in text
    assert "val_idx and test_idx" not in text
    _write_split(folder, "time", [train, np.concatenate([val, test[:3]]), test])
    with pytest.warns(UserWarning, match="val_idx and test_idx share 3 node"):
        ogb("ogbn-arxiv", tmp_path)


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


def test_impossible_or_negative_counts_are_one_line_errors(tmp_path):
    # A count the file cannot hold is refused before anything is allocated for it (1e11 rows
    # of int64 pairs asked numpy for 1.6 TB); a negative one names its value.
    folder, _ = _write_raw_csv(tmp_path, "ogbn-arxiv", "time")
    raw = folder / "raw"
    _gz(raw / "num-edge-list.csv.gz", [str(10**11)])
    with pytest.raises(ValueError, match="expected to hold 100000000000 rows.*count beside it"):
        ogb("ogbn-arxiv", tmp_path)
    _gz(raw / "num-edge-list.csv.gz", [str(E)])
    _gz(raw / "num-node-list.csv.gz", ["-3"])
    with pytest.raises(ValueError, match="one non-negative count, got -3"):
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


def _write_papers(tmp_path, save=np.savez, edge_index=None, seed=4, n=N, e=E):
    src, dst, x, y, parts = _graph_arrays(seed, n, e)
    folder = tmp_path / "ogbn_papers100M"
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    save(
        folder / "raw" / "data.npz",
        edge_index=np.stack([src, dst]) if edge_index is None else edge_index,
        node_feat=x,
        num_nodes_list=np.array([n]),
        num_edges_list=np.array([e]),
    )
    labels = y.astype(np.float64).reshape(-1, 1)
    labels[1::4] = np.nan
    save(folder / "raw" / "node-label.npz", node_label=labels)
    _write_split(folder, "time", parts)
    return folder, src, dst, x, labels, parts


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("undirected", [True, False])
def test_papers100m_raw_is_streamed_to_a_mapped_csc_folder(
    tmp_path, save, undirected, budget_above_rss
):
    from gnnsys.datasets.dataset import graph_from_coo

    folder, src, dst, x, labels, parts = _write_papers(tmp_path, save)
    ds = ogb(
        "ogbn-papers100M",
        tmp_path,
        undirected=undirected,
        memory_budget=budget_above_rss("1G"),
        node_order="given",
    )
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
    again = ogb("ogbn-papers100M", tmp_path, undirected=undirected, node_order="given")  # read
    assert (out / "meta.json").stat().st_mtime_ns == stamp
    assert torch.equal(again.graph.indices, ds.graph.indices)


def test_papers100m_fortran_edge_index_and_bad_raw_files(tmp_path):
    from gnnsys.datasets.dataset import graph_from_coo

    src, dst = _graph_arrays(4)[:2]
    _write_papers(tmp_path, edge_index=np.asfortranarray(np.stack([src, dst])))
    ds = ogb("ogbn-papers100M", tmp_path, node_order="given")
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


# ---------------------------------------------------------------------- papers100M hot-first
def _edges(folder, to_orig=None):
    # The folder's (src, dst) pairs, sorted; ids mapped to OGB's when to_orig is given.
    indptr, indices = np.load(folder / "indptr.npy"), np.load(folder / "indices.npy")
    dst = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    src = indices.astype(np.int64)
    if to_orig is not None:
        src, dst = to_orig[src], to_orig[dst]
    return np.unique(np.stack([src, dst], 1), axis=0, return_counts=True)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("undirected", [True, False])
def test_papers100m_degree_order_is_the_given_folder_renamed(
    tmp_path, save, undirected, monkeypatch
):
    from gnnsys.datasets import load_folder
    from gnnsys.datasets import ogb_stream as S

    n = 200
    folder, src, dst = _write_papers(tmp_path, save, seed=5, n=n, e=500)[:3]
    given = S.papers100m_to_folder(
        folder, tmp_path / "given", undirected=undirected, split="time", node_order="given"
    )
    monkeypatch.setattr(S, "_permute_room", lambda budget: 700)  # many ranges and windows
    deg = S.papers100m_to_folder(folder, tmp_path / "deg", undirected=undirected, split="time")
    meta = json.loads((deg / "meta.json").read_text())
    assert meta["node_order"] == "degree" and meta["permute"]["ranges"] > 5
    assert meta["permute"]["reads"] > meta["permute"]["ranges"]  # several windows a range
    assert json.loads((given / "meta.json").read_text())["node_order"] == "given"
    assert not (given / "orig_ids.npy").exists()
    assert sorted(p.name for p in deg.iterdir()) == sorted(
        [p.name for p in given.iterdir()] + ["orig_ids.npy"]
    )  # the temporary tables are gone
    orig = np.load(deg / "orig_ids.npy").astype(np.int64)
    assert np.array_equal(np.sort(orig), np.arange(n)) and not np.array_equal(orig, np.arange(n))
    rank = np.empty(n, dtype=np.int64)
    rank[orig] = np.arange(n)
    x_given, x_deg = np.load(given / "x.npy"), np.load(deg / "x.npy")
    assert x_deg.dtype == np.float16 and np.array_equal(x_deg, x_given[orig])
    assert np.array_equal(np.load(deg / "y.npy"), np.load(given / "y.npy")[orig])
    for part in ("train_idx", "val_idx", "test_idx"):
        ids_given, ids_deg = np.load(given / f"{part}.npy"), np.load(deg / f"{part}.npy")
        assert ids_deg.dtype == np.int64 and np.array_equal(orig[ids_deg], ids_given)
        assert np.array_equal(ids_deg, rank[ids_given])  # OGB's order kept
    for a, b in zip(_edges(given), _edges(deg, orig)):
        assert np.array_equal(a, b)
    # hot-first: by edge count in the raw edge list (in + out when symmetrising), busiest first
    count = np.bincount(dst, minlength=n) + (np.bincount(src, minlength=n) if undirected else 0)
    assert np.all(np.diff(count[orig]) <= 0)
    ds = load_folder(deg)
    assert ds.meta["node_order"] == "degree" and ds.num_nodes == n
    assert torch.equal(ds.x, torch.from_numpy(x_given[orig]))


@pytest.mark.parametrize("budget", [56, 200, 1000, 1 << 20])
@pytest.mark.parametrize("tail", [(), (3,), (2, 5)])
def test_take_rows_is_an_out_of_core_fancy_index(tmp_path, budget, tail):
    from gnnsys.datasets.ogb_stream import take_rows

    rng = np.random.default_rng(0)
    src = rng.standard_normal((97, *tail)).astype(np.float32)
    order = np.concatenate([rng.permutation(97), rng.integers(0, 97, 20)]).astype(np.int32)
    np.save(tmp_path / "src.npy", src)
    np.save(tmp_path / "order.npy", order)
    row = 4 * int(np.prod(tail, dtype=np.int64))
    if budget < 8 + 2 * 4 + row + 2 * row + 8:
        with pytest.raises(ValueError, match="too small to take rows"):
            take_rows(tmp_path / "src.npy", tmp_path / "order.npy", tmp_path / "o.npy",
                      memory_budget=budget)  # fmt: skip
        return
    plan = take_rows(
        tmp_path / "src.npy", tmp_path / "order.npy", tmp_path / "o.npy", memory_budget=budget
    )
    assert np.array_equal(np.load(tmp_path / "o.npy"), src[order])
    k, w = plan["range_rows"], plan["window_rows"]
    assert k * (8 + 2 * 4 + row) + w * (2 * row + 8) <= budget  # the stated peak
    assert plan["ranges"] == -(-order.size // k) and (budget > 1000 or plan["ranges"] > 1)


def test_take_rows_and_renamed_ids_errors(tmp_path):
    from gnnsys.datasets.ogb_stream import renamed_ids, take_rows

    np.save(tmp_path / "src.npy", np.zeros((5, 2), dtype=np.float16))
    np.save(tmp_path / "bad.npy", np.array([0, 5, 1]))
    with pytest.raises(ValueError, match="row id 5, out of range for 5 rows"):
        take_rows(tmp_path / "src.npy", tmp_path / "bad.npy", tmp_path / "o.npy",
                  memory_budget="1M")  # fmt: skip
    np.save(tmp_path / "perm.npy", np.array([3, 0, 4, 1, 2]))
    got = renamed_ids(tmp_path / "perm.npy", [np.array([0, 4, 0]), np.array([], dtype=np.int64)],
                      memory_budget=40)  # fmt: skip
    assert got[0].tolist() == [1, 2, 1] and got[1].size == 0
    with pytest.raises(ValueError, match="does not hold node id 7"):
        renamed_ids(tmp_path / "perm.npy", [np.array([7])], memory_budget="1M")


def test_papers100m_node_order_argument_and_cache(tmp_path):
    from gnnsys.datasets.ogb_stream import papers100m_to_folder

    folder = _write_papers(tmp_path)[0]
    with pytest.raises(ValueError, match=r"node_order must be one of \('given', 'degree'\)"):
        papers100m_to_folder(folder, tmp_path / "o", undirected=True, split="time",
                             node_order="hot")  # fmt: skip
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match=r"node_order must be one of \('given', 'degree'\)"):
        ogb("ogbn-papers100M", tmp_path, node_order="random")
    arxiv = tmp_path / "a"
    _write_raw_csv(arxiv, "ogbn-arxiv", "time")
    with pytest.raises(ValueError, match="node_order='degree' is for ogbn-papers100M's raw"):
        ogb("ogbn-arxiv", arxiv, node_order="degree")
    assert ogb("ogbn-arxiv", arxiv, node_order="given").num_nodes == N

    hot = ogb("ogbn-papers100M", tmp_path)  # the default: hot-first
    assert hot.meta["node_order"] == "degree"
    given = ogb("ogbn-papers100M", tmp_path, node_order="given")  # not the cached hot folder
    assert given.meta["node_order"] == "given"
    orig = torch.from_numpy(
        np.load(folder / "processed" / _cached(folder, "degree") / "orig_ids.npy")
    )
    assert torch.equal(hot.x, given.x[orig.long()]) and not torch.equal(hot.x, given.x)
    # a folder whose meta says another order is converted again, not reused
    out = folder / "processed" / _cached(folder, "given")
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "node_order": "degree"}))
    again = ogb("ogbn-papers100M", tmp_path, node_order="given")
    assert json.loads((out / "meta.json").read_text())["node_order"] == "given"
    assert torch.equal(again.x, given.x) and torch.equal(again.train_idx, given.train_idx)
    stamp = (out / "meta.json").stat().st_mtime_ns
    ogb("ogbn-papers100M", tmp_path, node_order="given")  # now reused
    assert (out / "meta.json").stat().st_mtime_ns == stamp


def _cached(folder, order):
    (name,) = [
        p.name
        for p in (folder / "processed").iterdir()
        if p.name.startswith(f"gnnsys_csc_undirected_{order}_")
    ]
    return name


def test_train_ogb_node_order_flag_reaches_the_conversion(tmp_path):
    from gnnsys.cli import build_parser, validate_train_args
    from gnnsys.trainer import load_dataset

    _write_papers(tmp_path)
    parser = build_parser()
    for flag, want in ((["--ogb-node-order", "given"], "given"), ([], "degree")):
        args = parser.parse_args(
            ["train", "--dataset", "ogbn-papers100M", "--root", str(tmp_path), *flag]
        )
        validate_train_args(args, parser)
        assert load_dataset(args).meta["node_order"] == want

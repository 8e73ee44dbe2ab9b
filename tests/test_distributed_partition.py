"""gnnsys.distributed.partition: partition folders written part by part and read one part at a
time (round trip against the full CSC, mapped graphs, every error, one part's files only)."""

import builtins
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import gnnsys
from gnnsys.datasets.dataset import Dataset
from gnnsys.distributed import (
    PartitionBook,
    PartitionError,
    check_parts,
    load_part,
    partition,
)
from gnnsys.graph import Graph
from gnnsys.loaders.neighbor import prepared_adjacency
from gnnsys.pipeline_parallel.partition import _has_pymetis, describe

METHODS = ["random", pytest.param("metis", marks=pytest.mark.skipif(
    not _has_pymetis(), reason="pymetis is not installed"))]  # fmt: skip
ARRAYS = ("owned", "indptr", "indices", "edge_ids", "x", "y", "train", "val", "test", "halo")


@pytest.fixture(scope="module")
def tiny():
    return gnnsys.datasets.synthetic("tiny")


def _weighted(n=60, seed=0):
    """A hand-made dataset whose graph has edge ids (dedupe reorders) and float32 weights."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, 5 * n), generator=g)
    graph = Graph.from_edge_index(ei, n, edge_weight=torch.rand(5 * n, generator=g), dedupe=True)
    perm = torch.randperm(n, generator=g)
    return Dataset(
        name="hand",
        graph=graph,
        x=torch.randn(n, 5, generator=g).half(),
        y=torch.randint(0, 3, (n,), generator=g),
        train_idx=perm[:30],
        val_idx=perm[30:40],
        test_idx=perm[40:],
        num_classes=3,
    )


def _check_round_trip(ds, path, num_parts):
    """Every node owned once; the parts' in-edges are the full CSC; x, y, splits, halos match."""
    graph = ds.graph
    book = PartitionBook.open(path)
    n, e = graph.num_nodes, graph.num_edges
    assert (book.num_parts, book.num_nodes, book.meta["num_edges"]) == (num_parts, n, e)
    assert len(book.run_id) == 32 and int(book.run_id, 16) >= 0
    assert book.node_part.dtype == np.int16 and book.node_part.shape == (n,)
    node_part = np.asarray(book.node_part, np.int64)
    adj = prepared_adjacency(graph, pack=False)  # the samplers' edge ids
    full_eid = adj.edge_ids if adj.edge_ids.size else np.arange(e)
    full_dst = np.repeat(np.arange(n), np.diff(graph.indptr.numpy()))
    dst, src, eid, owned_all, weights = [], [], [], [], []
    for i in range(num_parts):
        lp = load_part(path, i)
        assert lp.part_meta["run_id"] == book.run_id and lp.num_owned == book.meta["part_sizes"][i]
        assert np.all(np.diff(lp.owned) > 0) and np.all(node_part[lp.owned] == i)
        assert np.array_equal(lp.owned, np.flatnonzero(node_part == i))
        for name in ARRAYS:
            arr = getattr(lp, name)
            assert isinstance(arr, np.memmap), name
            assert arr.dtype == (ds.x.numpy().dtype if name == "x" else np.int64), name
        owned_all.append(lp.owned)
        d = np.repeat(lp.owned, np.diff(lp.indptr))
        dst.append(d)
        src.append(lp.indices)
        eid.append(lp.edge_ids)
        if graph.edge_weight is not None:
            assert lp.edge_weight.dtype == np.float64
            weights.append(lp.edge_weight)
        else:
            assert lp.edge_weight is None and not (lp.path / "edge_weight.npy").exists()
        assert np.array_equal(lp.x, ds.x.numpy()[lp.owned])
        assert np.array_equal(lp.y, ds.y.numpy()[lp.owned])
        for split in ("train", "val", "test"):
            idx = getattr(ds, f"{split}_idx").numpy()
            assert np.array_equal(getattr(lp, split), idx[node_part[idx] == i]), split
        outside = lp.indices[node_part[lp.indices] != i]
        assert np.array_equal(lp.halo, np.unique(outside))
        assert lp.halo.size == book.meta["halo_sizes"][i]
        assert np.array_equal(lp.local_index(lp.owned[::-1]), np.arange(lp.num_owned)[::-1])
    assert np.array_equal(np.sort(np.concatenate(owned_all)), np.arange(n))
    # Stable by destination: each node's segment keeps the part's (= the full CSC's) order.
    order = np.argsort(np.concatenate(dst), kind="stable")
    assert np.array_equal(np.concatenate(dst)[order], full_dst)
    assert np.array_equal(np.concatenate(src)[order], graph.indices.numpy())
    assert np.array_equal(np.concatenate(eid)[order], full_eid)
    if weights:
        assert np.array_equal(np.concatenate(weights)[order], graph.edge_weight.numpy())
    want = describe(graph, torch.from_numpy(node_part), num_parts)
    assert book.meta["halo_sizes"] == want.halo_sizes
    assert book.meta["part_sizes"] == want.part_sizes
    # edge_cut: in-edges whose source another part owns
    remote = node_part[graph.indices.numpy()] != node_part[full_dst]
    assert book.meta["edge_cut"] == int(remote.sum())
    return book


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("num_parts", [1, 2, 3])
def test_round_trip(tiny, tmp_path, method, num_parts):
    book = partition(tiny, num_parts, tmp_path / "p", method=method, seed=1)
    _check_round_trip(tiny, tmp_path / "p", num_parts)
    meta = book.meta
    assert meta["method"] == (method if num_parts > 1 else "trivial")
    assert (meta["format"], meta["version"], meta["dataset"], meta["seed"]) == (
        "gnnsys-partition", 1, "tiny", 1)  # fmt: skip
    assert (meta["num_classes"], meta["feature_dim"], meta["feature_dtype"]) == (8, 32, "float32")
    assert meta["has_edge_weight"] is False
    parts = [f"part-{i:04d}" for i in range(num_parts)]
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert names == ["node_part.npy", *parts, "partition.json"]
    assert not [p for p in tmp_path.iterdir() if p.name != "p"]  # no temporary folder left


@pytest.mark.parametrize("method", ["random", "bfs"])
def test_edge_ids_weights_and_float16(tmp_path, method):
    ds = _weighted()
    assert ds.graph.edge_ids is not None
    book = partition(ds, 3, tmp_path / "p", method=method)
    _check_round_trip(ds, tmp_path / "p", 3)
    assert book.meta["has_edge_weight"] is True and book.meta["feature_dtype"] == "float16"


def test_as_many_parts_as_nodes_and_no_more(tmp_path):
    ds = _weighted(n=4)
    partition(ds, 4, tmp_path / "p", method="random")
    _check_round_trip(ds, tmp_path / "p", 4)
    assert [load_part(tmp_path / "p", i).num_owned for i in range(4)] == [1, 1, 1, 1]
    # more parts than nodes is a mistake (--parts 3000 for 3): refused before anything is
    # written (it wrote thousands of empty part folders)
    with pytest.raises(PartitionError, match="num_parts=6 exceeds the graph's 4 nodes"):
        partition(ds, 6, tmp_path / "q", method="random")
    assert not (tmp_path / "q").exists()


def _files(path):
    """Every file's bytes (run_id lines removed from the JSON files)."""
    out = {}
    for f in sorted(Path(path).rglob("*")):
        if f.suffix == ".json":
            meta = json.loads(f.read_text())
            meta.pop("run_id")
            out[f.relative_to(path)] = meta
        elif f.is_file():
            out[f.relative_to(path)] = f.read_bytes()
    return out


def test_mapped_graph_partitions_to_the_same_files(tiny, tmp_path):
    from gnnsys.graph_io import file_backed

    tiny.graph.save(tmp_path / "g")
    mapped = Graph.load(tmp_path / "g", mmap=True)
    assert file_backed(mapped) is not None
    splits = {f"{s}_idx": getattr(tiny, f"{s}_idx") for s in ("train", "val", "test")}
    ds = Dataset("tiny", mapped, tiny.x, tiny.y, **splits, num_classes=tiny.num_classes)
    a = partition(tiny, 3, tmp_path / "a", method="random", seed=5)
    b = partition(ds, 3, tmp_path / "b", method="random", seed=5)
    assert a.run_id != b.run_id
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert file_backed(mapped) is not None  # still the mapped arrays, read in place


@pytest.mark.parametrize(
    "method, num_parts", [("random", 3), ("random", 1), ("metis", 1), ("bfs", 1)]
)
def test_random_never_copies_the_whole_graph(tiny, tmp_path, monkeypatch, method, num_parts):
    # "random" (and one part, whatever the method) deals nodes without the vertex
    # partitioner's symmetrised copy of the edges (graphs bigger than RAM), as it would
    from gnnsys.pipeline_parallel import partition as vertex

    want = vertex.partition(tiny.graph, num_parts, method=method, seed=4)

    def no_copy(*args, **kwargs):
        raise AssertionError("the whole graph was copied")

    monkeypatch.setattr(vertex, "symmetrize", no_copy)
    book = partition(tiny, num_parts, tmp_path / "p", method=method, seed=4)
    monkeypatch.undo()  # (the round-trip check below symmetrises on purpose)
    assert np.array_equal(np.asarray(book.node_part, np.int64), want.part.numpy())
    assert book.meta["method"] == want.method
    _check_round_trip(tiny, tmp_path / "p", num_parts)


def test_same_seed_same_parts(tiny, tmp_path):
    a = partition(tiny, 3, tmp_path / "a", method="random", seed=7)
    b = partition(tiny, 3, tmp_path / "b", method="random", seed=7)
    c = partition(tiny, 3, tmp_path / "c", method="random", seed=8)
    assert np.array_equal(a.node_part, b.node_part)
    assert not np.array_equal(a.node_part, c.node_part)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    if _has_pymetis():
        m1 = partition(tiny, 3, tmp_path / "m1", method="metis", seed=7)
        m2 = partition(tiny, 3, tmp_path / "m2", method="metis", seed=7)
        assert np.array_equal(m1.node_part, m2.node_part)


def test_book_owner_and_check_parts(tiny, tmp_path):
    book = partition(tiny, 3, tmp_path / "p", method="random")
    ids = np.array([0, 17, 2548])
    assert np.array_equal(book.owner(ids), np.asarray(book.node_part)[ids].astype(np.int64))
    assert book.owner(torch.tensor([17])).tolist() == [int(book.node_part[17])]
    with pytest.raises(IndexError, match="out of range for 2549"):
        book.owner(np.array([2549]))
    assert check_parts(tmp_path / "p", 3)["run_id"] == book.run_id
    with pytest.raises(PartitionError, match=r"--parts 4 does not match .* holds 3 parts"):
        check_parts(tmp_path / "p", 4)
    assert book.part_path(2) == tmp_path / "p" / "part-0002"


def test_local_index_names_ids_not_owned(tiny, tmp_path):
    partition(tiny, 2, tmp_path / "p", method="random")
    lp = load_part(tmp_path / "p", 0)
    other = load_part(tmp_path / "p", 1).owned[:2]
    assert lp.owns(other).tolist() == [False, False] and lp.owns(lp.owned[:1]).all()
    want = f"part 0 .* does not own global id\\(s\\) {other[0]}, {other[1]}"
    with pytest.raises(PartitionError, match=want):
        lp.local_index(np.concatenate([lp.owned[:1], other]))
    assert lp.local_index(torch.from_numpy(lp.owned[[3, 1]])).tolist() == [3, 1]


def test_load_part_opens_only_its_own_folder(tiny, tmp_path, monkeypatch):
    path = tmp_path / "p"
    partition(tiny, 3, path, method="random")
    opened = []
    real_open, real_io_open, real_load = builtins.open, io.open, np.load

    def spy(real):
        def wrapped(file, *a, **k):
            opened.append(str(file))
            return real(file, *a, **k)

        return wrapped

    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    monkeypatch.setattr(np, "load", spy(real_load))
    lp = load_part(path, 1, mmap=False)
    monkeypatch.undo()
    assert opened and all("part-0000" not in f and "part-0002" not in f for f in opened), opened
    assert any(f.endswith("part-0001/x.npy") for f in opened)
    # and with the other parts gone altogether (another machine's files)
    shutil.rmtree(path / "part-0000")
    shutil.rmtree(path / "part-0002")
    again = load_part(path, 1)
    assert np.array_equal(again.x, lp.x) and np.array_equal(again.indices, lp.indices)


# ---------------------------------------------------------------------- errors
@pytest.fixture
def folder(tiny, tmp_path):
    partition(tiny, 3, tmp_path / "p", method="random")
    return tmp_path / "p"


def _edit_json(path, **changes):
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def test_missing_top_level_files(folder):
    (folder / "node_part.npy").unlink()
    with pytest.raises(PartitionError, match="node_part.npy is missing"):
        load_part(folder, 0)
    (folder / "partition.json").unlink()
    with pytest.raises(PartitionError, match=r"partition.json is missing: .* not a partition"):
        PartitionBook.open(folder)
    with pytest.raises(PartitionError, match="no partition folder at"):
        load_part(folder / "absent", 0)


@pytest.mark.parametrize("where", ["partition.json", "part-0001/part.json"])
@pytest.mark.parametrize(
    "change, message",
    [({"format": "gnnsys-csc"}, "has format 'gnnsys-csc'"), ({"version": 3}, "format version 3")],
)
def test_wrong_format_or_version(folder, where, change, message):
    _edit_json(folder / where, **change)
    with pytest.raises(PartitionError, match=message) as err:
        load_part(folder, 1)
    assert where in str(err.value)


def test_missing_part_folder(folder):
    shutil.rmtree(folder / "part-0002")
    with pytest.raises(PartitionError, match=r"part-0002 is missing: .* has 3 parts"):
        load_part(folder, 2)
    load_part(folder, 1)  # the others still open


def test_part_from_another_run_is_refused(tiny, folder, tmp_path):
    partition(tiny, 3, tmp_path / "other", method="random")
    shutil.rmtree(folder / "part-0001")
    shutil.copytree(tmp_path / "other" / "part-0001", folder / "part-0001")
    with pytest.raises(PartitionError, match="part-0001 comes from another partitioning run"):
        load_part(folder, 1)


@pytest.mark.parametrize("part", [3, -1])
def test_part_out_of_range(folder, part):
    with pytest.raises(PartitionError, match=rf"part {part} is out of range: .* 3 parts \(0..2\)"):
        load_part(folder, part)
    with pytest.raises(TypeError, match="part must be an int"):
        load_part(folder, "1")


def test_truncated_and_mismatched_arrays(folder):
    x = folder / "part-0000" / "x.npy"
    x.write_bytes(x.read_bytes()[:-10])
    with pytest.raises(PartitionError, match=r"x.npy is truncated"):
        load_part(folder, 0)
    ind = folder / "part-0001" / "indices.npy"
    np.save(ind, np.load(ind)[:-1])
    with pytest.raises(PartitionError, match=r"indices.npy has shape .* expected \(\d+,\)"):
        load_part(folder, 1)
    owned = folder / "part-0002" / "owned.npy"
    np.save(owned, np.load(owned).astype(np.int32))
    with pytest.raises(PartitionError, match="owned.npy has dtype int32, expected int64"):
        load_part(folder, 2)
    (folder / "part-0002" / "owned.npy").write_bytes(b"not an array")
    with pytest.raises(PartitionError, match="owned.npy is not a .npy array"):
        load_part(folder, 2)
    np.save(folder / "node_part.npy", np.zeros(5, np.int16))
    with pytest.raises(PartitionError, match=r"node_part.npy has shape \(5,\)"):
        PartitionBook.open(folder)


def test_arrays_inconsistent_with_part_json(folder):
    pj = folder / "part-0000" / "part.json"
    n = json.loads(pj.read_text())["num_owned"]
    _edit_json(pj, num_owned=n + 1)
    with pytest.raises(PartitionError, match=rf"num_owned {n + 1} differs from part_sizes\[0\]"):
        load_part(folder, 0)
    _edit_json(pj, num_owned=n, num_edges=3)
    with pytest.raises(PartitionError, match=r"indices.npy has shape .* expected \(3,\)"):
        load_part(folder, 0)
    _edit_json(pj, num_edges=json.loads(pj.read_text())["num_edges"], part=1)
    with pytest.raises(PartitionError, match="part is 1, expected 0"):
        load_part(folder, 0)
    np.save(folder / "part-0001" / "halo.npy", np.arange(3))
    with pytest.raises(PartitionError, match=r"halo.npy has 3 ids, .* halo_sizes\[1\]"):
        load_part(folder, 1)


def test_out_folder_rules(tiny, tmp_path):
    out = tmp_path / "p"
    out.mkdir()  # an empty folder is fine
    first = partition(tiny, 2, out, method="random")
    with pytest.raises(PartitionError, match="already exists and is not empty; pass overwrite"):
        partition(tiny, 2, out, method="random")
    second = partition(tiny, 3, out, method="random", overwrite=True)
    assert second.run_id != first.run_id and second.num_parts == 3
    assert (out / "part-0002").is_dir() and PartitionBook.open(out).run_id == second.run_id
    other = tmp_path / "home"
    other.mkdir()
    (other / "precious.txt").write_text("keep")
    with pytest.raises(PartitionError, match="holds no partition.json: refusing"):
        partition(tiny, 2, other, method="random", overwrite=True)
    assert (other / "precious.txt").read_text() == "keep"
    (tmp_path / "file").write_text("")
    with pytest.raises(PartitionError, match="exists and is not a folder"):
        partition(tiny, 2, tmp_path / "file", method="random", overwrite=True)


def test_out_folder_holding_the_working_directory_is_never_replaced(tiny, tmp_path, monkeypatch):
    out = tmp_path / "p"
    partition(tiny, 2, out, method="random")
    (out / "work").mkdir()
    monkeypatch.chdir(out / "work")  # overwrite would delete the folder the user stands in
    with pytest.raises(PartitionError, match=r"p holds the working directory: refusing"):
        partition(tiny, 2, out, method="random", overwrite=True)
    monkeypatch.chdir(tmp_path)
    assert (out / "work").is_dir() and PartitionBook.open(out).num_parts == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)  # an empty folder needs no overwrite, but not the cwd either
    with pytest.raises(PartitionError, match="holds the working directory"):
        partition(tiny, 2, empty, method="random")


def test_bad_arguments(tiny, tmp_path, monkeypatch):
    import gnnsys.pipeline_parallel.partition as vp

    out = tmp_path / "p"
    with pytest.raises(ValueError, match="num_parts must be >= 1"):
        partition(tiny, 0, out)
    with pytest.raises(ValueError, match="method must be one of"):
        partition(tiny, 2, out, method="kahip")
    with pytest.raises(TypeError, match="must be a gnnsys.datasets.Dataset"):
        partition(tiny.graph, 2, out)
    monkeypatch.setattr(vp, "_has_pymetis", lambda: False)
    with pytest.raises(PartitionError, match=r"method='metis' needs pymetis .*method='random'"):
        partition(tiny, 2, out, method="metis")
    assert partition(tiny, 2, out, method="auto").meta["method"] == "bfs"
    bf16 = Dataset(name="b", graph=tiny.graph, x=tiny.x.bfloat16(), y=tiny.y,
                   train_idx=tiny.train_idx, val_idx=tiny.val_idx, test_idx=tiny.test_idx,
                   num_classes=tiny.num_classes)  # fmt: skip
    with pytest.raises(PartitionError, match="dtype bfloat16"):
        partition(bf16, 2, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_damaged_split_files_are_refused_at_load(folder):
    part = folder / "part-0001"
    train, y = np.load(part / "train.npy"), np.load(part / "y.npy")
    other = np.load(folder / "part-0000" / "owned.npy")[0]
    np.save(part / "train.npy", np.concatenate([train, [other]]))
    with pytest.raises(
        PartitionError, match=rf"train.npy: part 1 .* does not own global id\(s\) {other}"
    ):
        load_part(folder, 1)
    np.save(part / "train.npy", train)
    owned = np.load(part / "owned.npy")
    val = np.load(part / "val.npy")
    bad = y.copy()
    bad[np.searchsorted(owned, val[0])] = 99
    np.save(part / "y.npy", bad)
    with pytest.raises(
        PartitionError, match=r"y.npy holds label 99 for a node of val.npy; labels must be in 0..7"
    ):
        load_part(folder, 1)
    bad = y.copy()
    bad[np.searchsorted(owned, train[:2])] = -1
    np.save(part / "y.npy", bad)
    with pytest.raises(PartitionError, match=r"train.npy holds 2 unlabelled node\(s\)"):
        load_part(folder, 1)


def test_damaged_typed_split_files_are_refused_at_load(tmp_path):
    ds = gnnsys.datasets.synthetic("tiny-mag", cache=False)
    partition(ds, 2, tmp_path / "p", method="random")
    part = tmp_path / "p" / "part-0000"
    meta = json.loads((tmp_path / "p" / "partition.json").read_text())
    t = meta["node_types"].index(meta["target"])
    train, owned = np.load(part / "train.npy"), np.load(part / "owned.npy")
    not_target = owned[np.searchsorted(owned, meta["node_type_offset"][t + 1])]
    np.save(part / "train.npy", np.concatenate([train, [not_target]]))
    with pytest.raises(PartitionError, match=r"train.npy holds ids that are not 'paper' nodes"):
        load_part(tmp_path / "p", 0)
    np.save(part / "train.npy", train)
    y = np.load(part / f"y.{t}.npy")
    first = np.searchsorted(owned, meta["node_type_offset"][t])
    y[np.searchsorted(owned, train[0]) - first] = ds.num_classes
    np.save(part / f"y.{t}.npy", y)
    with pytest.raises(
        PartitionError, match=rf"y.{t}.npy holds label {ds.num_classes} for a node of train.npy"
    ):
        load_part(tmp_path / "p", 0)

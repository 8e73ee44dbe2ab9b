"""The folder format: round trip, hand-written folders, and the errors for bad ones."""

import json
import os

import numpy as np
import pytest
import torch

from gnnsys.datasets import load_folder, save_folder, synthetic


@pytest.fixture(scope="module")
def tiny():
    return synthetic("tiny", cache=False)


def _small_folder(path, **override):
    # 5 nodes, directed edges in no particular order, one duplicate kept as is.
    arrays = {
        "src": np.array([3, 0, 1, 4, 0, 0], dtype=np.int64),
        "dst": np.array([0, 1, 2, 2, 4, 1], dtype=np.int64),
        "x": np.arange(10, dtype=np.float32).reshape(5, 2),
        "y": np.array([0, 1, 2, 1, 0], dtype=np.int64),
        "train_idx": np.array([0, 2], dtype=np.int64),
    }
    arrays.update(override)
    path.mkdir(parents=True, exist_ok=True)
    for k, v in arrays.items():
        if v is not None:
            np.save(path / f"{k}.npy", v)
    return path


def test_round_trip(tmp_path, tiny):
    out = save_folder(tiny, tmp_path / "tiny")
    assert out == tmp_path / "tiny"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir would, not mkdtemp's 0700
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["src.npy", "dst.npy", "x.npy", "y.npy", "train_idx.npy", "val_idx.npy"]
        + ["test_idx.npy", "meta.json"]
    )
    src, dst = np.load(out / "src.npy"), np.load(out / "dst.npy")
    assert src.dtype == dst.dtype == np.int64 and src.size == tiny.num_edges
    # Symmetric graph: both directions are written.
    pairs = set(zip(src.tolist(), dst.tolist()))
    assert all((d, s) in pairs for s, d in list(pairs)[:500])
    back = load_folder(out)
    assert back.name == "tiny" and back.num_classes == tiny.num_classes
    assert torch.equal(back.graph.indptr, tiny.graph.indptr)
    assert torch.equal(back.graph.indices, tiny.graph.indices)
    for k in ("x", "y", "train_idx", "val_idx", "test_idx"):
        assert torch.equal(getattr(back, k), getattr(tiny, k)), k
    assert torch.equal(back.graph.to_edge_index(), tiny.graph.to_edge_index())


def test_no_mmap_and_name_override(tmp_path, tiny):
    save_folder(tiny, tmp_path / "d")
    back = load_folder(tmp_path / "d", mmap=False, name="renamed")
    assert back.name == "renamed" and torch.equal(back.x, tiny.x)


def test_overwrite(tmp_path, tiny):
    save_folder(tiny, tmp_path / "d")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_folder(tiny, tmp_path / "d")
    other = synthetic("tiny", seed=1, cache=False)
    save_folder(other, tmp_path / "d", overwrite=True)
    assert torch.equal(load_folder(tmp_path / "d").y, other.y)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temp dirs left
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        save_folder(tiny, tmp_path / "file", overwrite=True)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="refusing to replace a folder that is not a data"):
        save_folder(tiny, tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "a.txt").read_text() == "keep"


def test_a_folder_where_a_file_belongs_is_named(tmp_path):
    folder = _small_folder(tmp_path / "s", x=None)
    (folder / "x.npy").mkdir()
    with pytest.raises(ValueError, match=r"x.npy is a folder; a dataset folder's files are"):
        load_folder(folder)


@pytest.mark.parametrize(
    "damage, match",
    [
        ("no_columns", "x has 0 feature columns"),
        ("no_nodes", "the dataset has no nodes"),
        ("huge_label", r"num_classes=1000000001 \(largest label 1000000000\) is more than"),
        ("huge_meta_classes", r"num_classes=1000000000 \(largest label 2\) is more than the 5"),
    ],
)
def test_degenerate_folders_are_clear_errors(tmp_path, damage, match):
    # These reached the model (in_feats=0, a reshape of 0 rows, a 512 GB output layer).
    folder = _small_folder(tmp_path / "s")
    if damage == "no_columns":
        np.save(folder / "x.npy", np.zeros((5, 0), np.float32))
    elif damage == "no_nodes":
        for f in ("src", "dst", "y", "train_idx"):
            np.save(folder / f"{f}.npy", np.zeros(0, np.int64))
        np.save(folder / "x.npy", np.zeros((0, 2), np.float32))
    elif damage == "huge_label":
        y = np.load(folder / "y.npy")
        y[0] = 10**9
        np.save(folder / "y.npy", y)
    else:
        (folder / "meta.json").write_text(json.dumps({"num_classes": 10**9}))
    with pytest.raises(ValueError, match=match):
        load_folder(folder)


def test_hand_written_folder_defaults(tmp_path):
    ds = load_folder(_small_folder(tmp_path / "s"))
    assert ds.name == "s" and ds.num_classes == 3 and ds.num_nodes == 5
    assert ds.val_idx.numel() == 0
    assert ds.test_idx.tolist() == [1, 3, 4]  # everything outside train and val
    # Edges kept exactly (duplicates too), grouped by destination in file order.
    assert ds.graph.indptr.tolist() == [0, 1, 3, 5, 5, 6]
    assert ds.graph.indices.tolist() == [3, 0, 0, 1, 4, 0]


def test_meta_json_supplies_num_classes_and_is_checked(tmp_path):
    folder = _small_folder(tmp_path / "s")
    (folder / "meta.json").write_text(json.dumps({"num_classes": 5, "name": "five"}))
    ds = load_folder(folder)
    assert ds.num_classes == 5 and ds.name == "five"
    (folder / "meta.json").write_text(json.dumps({"num_nodes": 6}))
    with pytest.raises(ValueError, match="num_nodes=6"):
        load_folder(folder)
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_folder(folder)


def test_missing_files_list_expected(tmp_path):
    folder = _small_folder(tmp_path / "s", y=None)
    with pytest.raises(FileNotFoundError, match="lacks y.npy.*src.npy, dst.npy, x.npy, y.npy"):
        load_folder(folder)
    with pytest.raises(FileNotFoundError, match="no folder.*src.npy"):
        load_folder(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as err:  # no split file: no "it has ... but" hint
        load_folder(empty)
    assert "lacks src.npy, dst.npy, x.npy, y.npy, train_idx.npy; expected" in str(err.value)


@pytest.mark.parametrize(
    "override, exc, match",
    [
        (dict(src=np.array([0.0, 1, 1, 4, 0, 0])), ValueError, "src.npy must be a 1-D integer"),
        (dict(dst=np.array([0, 1, 2, 2, 5, 1])), ValueError, "dst.npy holds node id 5"),
        (dict(src=np.array([-1, 0, 1, 4, 0, 0])), ValueError, "src.npy holds a negative"),
        (dict(dst=np.array([0, 1, 2])), ValueError, "same length"),
        (dict(x=np.arange(5, dtype=np.float32)), ValueError, "x.npy must be a float array"),
        (dict(x=np.zeros((5, 2), dtype=np.int64)), ValueError, "x.npy must be a float array"),
        (dict(y=np.array([0, 1, 2])), ValueError, "y.npy has 3 labels"),
        (dict(y=np.array([0, 1, 2, 1, -2])), ValueError, "y holds label -2"),
        (dict(train_idx=np.array([0, 7])), IndexError, "train_idx.npy holds node id 7"),
        (dict(val_idx=np.array([-1])), IndexError, "val_idx.npy holds node id -1"),
        (dict(test_idx=np.array([[1]])), ValueError, "test_idx.npy must be a 1-D"),
        (dict(src=np.array([object()] * 6)), ValueError, "not a readable .npy"),
    ],
)
def test_malformed_folder(tmp_path, override, exc, match):
    with pytest.raises(exc, match=match):
        load_folder(_small_folder(tmp_path / "s", **override))


def test_bad_argument_types(tmp_path, tiny):
    with pytest.raises(TypeError, match="dataset must be"):
        save_folder("tiny", tmp_path / "d")
    with pytest.raises(TypeError, match="path must be"):
        save_folder(tiny, 3)
    with pytest.raises(TypeError, match="path must be"):
        load_folder(None)


def test_folder_without_split_files_gets_a_seeded_split(tmp_path):
    y = np.array([0, 1, 2, 1, 0, -1, 2, 1, 0, 2], dtype=np.int64)  # node 5 unlabelled
    folder = _small_folder(
        tmp_path / "s",
        src=np.array([0, 1, 2, 3], dtype=np.int64),
        dst=np.array([1, 2, 3, 4], dtype=np.int64),
        x=np.zeros((10, 2), dtype=np.float32),
        y=y,
        train_idx=None,
    )
    with pytest.raises(FileNotFoundError, match=r"lacks train_idx.npy \(or pass split_seed"):
        load_folder(folder)
    a = load_folder(folder, split_seed=3)
    b = load_folder(folder, split_seed=3)
    c = load_folder(folder, split_seed=4)
    # 9 labelled nodes: 60/20/20 -> 5/2/2, disjoint, covering exactly the labelled ones
    parts = [a.train_idx.tolist(), a.val_idx.tolist(), a.test_idx.tolist()]
    assert [len(p) for p in parts] == [5, 2, 2]
    assert sorted(sum(parts, [])) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert all(p == sorted(p) for p in parts)
    assert parts == [b.train_idx.tolist(), b.val_idx.tolist(), b.test_idx.tolist()]
    assert parts != [c.train_idx.tolist(), c.val_idx.tolist(), c.test_idx.tolist()]
    assert a.meta["split"] == "random 60/20/20 of the labelled nodes, seed 3"
    assert a.num_classes == 3


def test_split_files_win_over_split_seed(tmp_path):
    ds = load_folder(_small_folder(tmp_path / "s"), split_seed=0)
    assert ds.train_idx.tolist() == [0, 2] and ds.meta["split"] == "files"


def test_partial_split_without_train_is_refused(tmp_path):
    folder = _small_folder(tmp_path / "s", train_idx=None, val_idx=np.array([1]))
    with pytest.raises(FileNotFoundError, match=r"it has val_idx.npy but no train_idx.npy"):
        load_folder(folder, split_seed=0)
    with pytest.raises(TypeError, match="split_seed must be an int or None"):
        load_folder(folder, split_seed=1.5)


@pytest.mark.parametrize("bad", [0, "3", 2.0, True])
def test_meta_num_classes_must_be_a_positive_int(tmp_path, bad):
    folder = _small_folder(tmp_path / "s")
    (folder / "meta.json").write_text(json.dumps({"num_classes": bad}))
    with pytest.raises(ValueError, match=r"meta.json: num_classes must be an int >= 1"):
        load_folder(folder)


@pytest.mark.parametrize(
    "meta, match",
    [
        ({"num_nodes": "5"}, r"meta.json: num_nodes must be an int >= 0, got '5'"),
        ({"num_edges": 6.0}, r"meta.json: num_edges must be an int >= 0, got 6.0"),
        ({"num_edges": 5}, r"meta.json says num_edges=5 but src.npy / dst.npy hold 6"),
        ({"format_version": "1"}, r"meta.json: format_version '1' is not one this gnnsys reads"),
        ({"format_version": 2}, r"format_version 2 is not one this gnnsys reads \(1\)"),
    ],
)
def test_meta_counts_and_version_are_checked(tmp_path, meta, match):
    folder = _small_folder(tmp_path / "s")
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=match):
        load_folder(folder)


def test_foreign_byte_order_and_uint64_ids_name_the_file(tmp_path):
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    folder = _small_folder(tmp_path / "a", x=x.astype(x.dtype.newbyteorder("S")))
    with pytest.raises(ValueError, match=r"/a/x.npy is stored (big|little)-endian, not in this"):
        load_folder(folder)
    folder = _small_folder(tmp_path / "b", train_idx=np.array([0, 2**64 - 3], np.uint64))
    with pytest.raises(ValueError, match=r"train_idx.npy holds 18446744073709551613, beyond int64"):
        load_folder(folder)
    folder = _small_folder(tmp_path / "c", train_idx=np.array([0, 2], np.uint64))
    assert load_folder(folder).train_idx.tolist() == [0, 2]  # uint64 ids in range are fine


def test_labels_beyond_meta_num_classes_name_the_folder(tmp_path):
    folder = _small_folder(tmp_path / "s")
    (folder / "meta.json").write_text(json.dumps({"num_classes": 2}))
    with pytest.raises(ValueError, match=r"dataset folder '.*/s': y holds label 2"):
        load_folder(folder)


def test_empty_or_truncated_npy_names_the_file(tmp_path):
    folder = _small_folder(tmp_path / "s")
    (folder / "y.npy").write_bytes(b"")
    with pytest.raises(ValueError, match=r"s/y.npy is not a readable .npy array \(EOFError"):
        load_folder(folder)
    np.save(folder / "y.npy", np.arange(5))
    (folder / "y.npy").write_bytes((folder / "y.npy").read_bytes()[:-8])
    with pytest.raises(ValueError, match=r"s/y.npy is not a readable .npy array"):
        load_folder(folder)


def test_csc_layout_maps_the_graph_back_and_halves_features(tmp_path):
    ds = synthetic("tiny")
    path = save_folder(ds, tmp_path / "csc", layout="csc", x_dtype=torch.float16)
    assert not (path / "src.npy").exists() and (path / "graph.json").is_file()
    back = load_folder(path)
    assert torch.equal(back.graph.indptr, ds.graph.indptr)
    assert torch.equal(back.graph.indices, ds.graph.indices)
    assert back.graph._source is not None  # memory-mapped, not rebuilt
    assert back.x.dtype == torch.float16 and torch.equal(back.x, ds.x.half())
    assert torch.equal(back.train_idx, ds.train_idx) and back.num_classes == ds.num_classes
    with pytest.raises(ValueError, match="layout"):
        save_folder(ds, tmp_path / "bad", layout="csr")
    with pytest.raises(TypeError, match="x_dtype"):
        save_folder(ds, tmp_path / "bad", x_dtype=torch.int8)

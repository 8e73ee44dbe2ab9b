"""Graph.save / Graph.load: the on-disk CSC folder, memory-mapped back."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

from gnnsys import Graph, graph_io
from gnnsys.datasets import synthetic
from gnnsys.graph_io import load_graph, npy_header, save_graph
from gnnsys.loaders import NeighborSampler
from gnnsys.loaders.base import SampleKey


def _graph() -> Graph:
    ei = torch.tensor([[0, 1, 2, 2, 3, 0], [1, 2, 0, 1, 1, 3]])
    return Graph.from_edge_index(ei, 4, edge_weight=torch.rand(6))


def _same(a: Graph, b: Graph) -> None:
    for name in ("indptr", "indices", "edge_ids", "edge_weight", "node_type_offset",
                 "type_per_edge"):  # fmt: skip
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and torch.equal(x, y), name
    assert a.node_types == b.node_types and a.edge_types == b.edge_types


@pytest.mark.parametrize("mmap", [True, False])
def test_round_trip_homogeneous(tmp_path, mmap):
    g = _graph()
    g.save(tmp_path / "g")
    back = Graph.load(tmp_path / "g", mmap=mmap)
    _same(g, back)
    assert back.is_hetero is False


def test_round_trip_typed(tmp_path):
    g = Graph.from_hetero(
        {("a", "to", "b"): torch.tensor([[0, 1, 1], [0, 0, 1]]),
         ("b", "back", "a"): torch.tensor([[1], [0]])},
        {"a": 2, "b": 2},
    )  # fmt: skip
    save_graph(g, tmp_path / "h")
    back = load_graph(tmp_path / "h")
    _same(g, back)
    assert back.to_hetero()[0].keys() == g.to_hetero()[0].keys()


def test_mapped_graph_samples_the_same_batches(tmp_path):
    g = synthetic("tiny").graph
    g.save(tmp_path / "tiny")
    mapped = Graph.load(tmp_path / "tiny")
    seeds = torch.arange(0, 2000, 7)
    for key in (SampleKey(3, 1, 0), SampleKey(3, 1, 5)):
        a = NeighborSampler(g, [10, 5]).sample(seeds, key)
        b = NeighborSampler(mapped, [10, 5]).sample(seeds, key)
        assert torch.equal(a.nodes, b.nodes)
        assert torch.equal(a.row, b.row) and torch.equal(a.col, b.col)
        assert torch.equal(a.edge_ids, b.edge_ids)


def test_mapped_graph_pickles_as_its_folder_and_shares_without_copy(tmp_path):
    g = synthetic("tiny").graph
    g.save(tmp_path / "tiny")
    mapped = Graph.load(tmp_path / "tiny")
    blob = pickle.dumps(mapped)
    assert len(blob) < 1000  # the folder's name, not 100 KB of edges
    again = pickle.loads(blob)
    assert torch.equal(again.indices, g.indices)
    ptr = mapped.indices.data_ptr()
    assert mapped.share_memory_() is mapped and mapped.indices.data_ptr() == ptr
    # Once its arrays are replaced the graph is no longer the files': it pickles by value.
    mapped.indices = mapped.indices.clone()
    assert len(pickle.dumps(mapped)) > 10_000


def test_save_refuses_an_existing_path_unless_overwrite(tmp_path):
    g = _graph()
    g.save(tmp_path / "g")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        g.save(tmp_path / "g")
    g.save(tmp_path / "g", overwrite=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="holds no graph.json: refusing to replace"):
        g.save(tmp_path / "other", overwrite=True)
    assert (tmp_path / "other" / "keep.txt").exists()
    with pytest.raises(TypeError, match="gnnsys.Graph"):
        save_graph("not a graph", tmp_path / "x")


def test_missing_truncated_or_inconsistent_files_are_named(tmp_path):
    g = synthetic("tiny").graph
    folder = tmp_path / "g"
    g.save(folder)
    ix = folder / "indices.npy"
    data = ix.read_bytes()
    ix.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="indices.npy is truncated"):
        Graph.load(folder)
    ix.unlink()
    with pytest.raises(FileNotFoundError, match="indices.npy is missing"):
        Graph.load(folder)
    np.save(ix, np.zeros(5, dtype=np.int32))
    with pytest.raises(ValueError, match=r"indices.npy has shape \(5,\)"):
        Graph.load(folder)
    bad = g.indices.numpy().copy()
    bad[3] = g.num_nodes + 7
    np.save(ix, bad)
    with pytest.raises(ValueError, match="out of range"):
        Graph.load(folder)
    (folder / "graph.json").write_text("{not json")
    with pytest.raises(ValueError, match="graph.json is not valid JSON"):
        Graph.load(folder)
    (folder / "graph.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="does not describe"):
        Graph.load(folder)
    with pytest.raises(FileNotFoundError, match="no graph folder"):
        Graph.load(tmp_path / "nowhere")


def test_id_arrays_of_other_dtypes_or_bad_edge_ids_are_named(tmp_path):
    g = Graph.from_csc(torch.tensor([0, 2, 3, 3]), torch.tensor([1, 2, 0]),
                       edge_ids=torch.tensor([4, 5, 6]))  # fmt: skip
    folder = tmp_path / "g"
    g.save(folder)
    ix = folder / "indices.npy"
    np.save(ix, g.indices.numpy().astype(np.uint64))
    with pytest.raises(ValueError, match=r"indices.npy holds <u8; indices must be int32 or"):
        Graph.load(folder)
    np.save(ix, g.indices.numpy().astype(">i8"))  # big-endian
    with pytest.raises(ValueError, match=r"indices.npy holds >i8"):
        Graph.load(folder)
    np.save(ix, g.indices.numpy())
    np.save(folder / "edge_ids.npy", np.array([4, -7, 6]))
    with pytest.raises(ValueError, match="edge_ids holds -7"):
        Graph.load(folder)


@pytest.mark.parametrize("change", [{"num_nodes": None}, {"num_nodes": "four"},
                                    {"num_edges": -1}])  # fmt: skip
def test_bad_counts_in_graph_json_are_named(tmp_path, change):
    folder = tmp_path / "g"
    _graph().save(folder)
    meta = json.loads((folder / "graph.json").read_text())
    for k, v in change.items():
        if v is None:
            del meta[k]
        else:
            meta[k] = v
    (folder / "graph.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="graph.json: num_nodes and num_edges must be integers"):
        Graph.load(folder)


def test_npy_header_is_fixed_length_and_rewritable(tmp_path):
    path = tmp_path / "a.npy"
    data = np.arange(10, dtype=np.int32)
    with open(path, "wb") as f:
        f.write(npy_header(np.int32, (10**12,)))  # provisional, larger than the data
        data.tofile(f)
        f.seek(0)
        f.write(npy_header(np.int32, (10,)))
    assert len(npy_header(np.int32, (10,))) == len(npy_header(np.int32, (10**12,))) == 128
    assert np.array_equal(np.load(path), data)
    assert np.array_equal(np.load(path, mmap_mode="r"), data)


def test_samplers_read_a_mapped_graph_in_place(tmp_path):
    from gnnsys.loaders.neighbor import prepared_adjacency

    g = synthetic("tiny").graph
    g.save(tmp_path / "tiny")
    mapped = Graph.load(tmp_path / "tiny")
    adj = prepared_adjacency(mapped)
    assert np.shares_memory(adj.adj, mapped.indices.numpy())  # no copy of the edges
    assert np.shares_memory(adj.indptr, mapped.indptr.numpy())
    assert not np.shares_memory(prepared_adjacency(g).adj, g.indices.numpy())  # packed copy


def test_arrays_too_big_to_map_copy_on_write_are_mapped_read_only(tmp_path, monkeypatch):
    # The kernel refuses a private map larger than its commit limit (a 28 GB feature table on
    # a 24 GiB machine): simulated here, the graph still loads, mapped read-only, with a warning.
    import errno

    g = synthetic("tiny").graph
    g.save(tmp_path / "g")
    real = np.load

    def refusing(path, mmap_mode=None, **kw):
        if mmap_mode == "c":
            raise OSError(errno.ENOMEM, "Cannot allocate memory")
        return real(path, mmap_mode=mmap_mode, **kw)

    monkeypatch.setattr(np, "load", refusing)
    with pytest.warns(UserWarning, match="mapped read-only"):
        back = Graph.load(tmp_path / "g")
    assert torch.equal(back.indices, g.indices)
    assert back._source is not None  # still the files, mapped in place


def test_mapped_arrays_are_advised_by_size(tmp_path, monkeypatch):
    from gnnsys import graph_io

    g = synthetic("tiny").graph
    g.save(tmp_path / "g")
    seen = []
    real = graph_io.advise_random
    monkeypatch.setattr(graph_io, "advise_random", lambda a: seen.append(a.numel()) or real(a))
    Graph.load(tmp_path / "g")
    assert sorted(seen) == sorted([g.indptr.numel(), g.indices.numel()])
    # A small map is read ahead whole; one bigger than half the available memory is random.
    assert real(Graph.load(tmp_path / "g").indices) == "MADV_WILLNEED"
    assert real(Graph.load(tmp_path / "g").indices, hot_first=True) == "MADV_WILLNEED"
    monkeypatch.setattr(graph_io, "_available_bytes", lambda: 1000)
    assert real(Graph.load(tmp_path / "g").indices) == "MADV_RANDOM"
    # hot-first rows: random, and the leading 500 bytes (half the available) read ahead
    calls = []
    monkeypatch.setattr(graph_io, "madvise", lambda a, adv, nbytes=None: calls.append(
        (adv, nbytes)) or True)  # fmt: skip
    assert real(Graph.load(tmp_path / "g").indices, hot_first=True) == "MADV_RANDOM+WILLNEED"
    assert calls[-2:] == [("MADV_RANDOM", None), ("MADV_WILLNEED", 500)]
    monkeypatch.setenv("GNNSYS_MMAP_ADVICE", "normal")
    assert real(Graph.load(tmp_path / "g").indices) is None


def test_advice_follows_a_memory_cgroup_limit_not_the_hosts_memory(tmp_path, monkeypatch):
    # In a container or a Slurm job the host's MemAvailable says the map fits; the cgroup's
    # headroom (here 1000 bytes under a 1 GiB limit) says it does not: read at random.
    from gnnsys import _mapped

    g = synthetic("tiny").graph
    g.save(tmp_path / "g")
    assert graph_io.advise_random(Graph.load(tmp_path / "g").indices) == "MADV_WILLNEED"
    monkeypatch.setattr(_mapped, "cgroup_memory", lambda: (1 << 30, 1000))
    assert graph_io._available_bytes() == 1000
    assert graph_io.advise_random(Graph.load(tmp_path / "g").indices) == "MADV_RANDOM"


def test_willneed_is_advised_a_readahead_window_at_a_time():
    from gnnsys.graph_io import _WILLNEED_CHUNK as C
    from gnnsys.graph_io import advice_ranges

    # one call reads at most one readahead window (8 MiB of 1 GiB, measured): so pieces
    assert advice_ranges(4096, 4096 + 2 * C + 10, "MADV_WILLNEED") == [
        (4096, C), (4096 + C, C), (4096 + 2 * C, 10)
    ]  # fmt: skip
    assert advice_ranges(4096, 4096 + 5 * C, "MADV_RANDOM") == [(4096, 5 * C)]
    assert advice_ranges(4096, 4096, "MADV_WILLNEED") == [(4096, 0)]


def test_mapped_npy_follows_the_map(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(24, dtype=np.float32).reshape(6, 4))
    t = graph_io.reopen_npy(str(tmp_path / "x.npy"), False)
    assert graph_io.mapped_npy(t) == (str(tmp_path / "x.npy"), False)
    assert t[5, 3] == 23.0
    assert graph_io.mapped_npy(t.clone()) is None and graph_io.mapped_npy(t.numpy()) is None
    u = graph_io.reopen_npy(str(tmp_path / "x.npy"), False)
    np.save(tmp_path / "new.npy", np.zeros((6, 4), np.float32))
    os.replace(tmp_path / "new.npy", tmp_path / "x.npy")  # saved over, as save_folder does
    assert graph_io.mapped_npy(u) is None and u[5, 3] == 23.0  # u keeps the old file's rows


def test_check_replaceable_rules(tmp_path, monkeypatch):
    from gnnsys.graph_io import check_replaceable

    marks, what = ("graph.json",), "graph folder"
    check_replaceable(tmp_path / "new", False, marks, what)  # absent: fine
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        check_replaceable(empty, False, marks, what)
    check_replaceable(empty, False, marks, what, empty_ok=True)
    check_replaceable(empty, True, marks, what)
    (empty / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="already exists and is not empty"):
        check_replaceable(empty, False, marks, what, empty_ok=True)
    with pytest.raises(FileExistsError, match="holds no graph.json: refusing .* graph folder"):
        check_replaceable(empty, True, marks, what, empty_ok=True)
    (empty / "graph.json").write_text("{}")
    check_replaceable(empty, True, marks, what)
    monkeypatch.chdir(empty)
    with pytest.raises(FileExistsError, match="holds the working directory"):
        check_replaceable(empty, True, marks, what)

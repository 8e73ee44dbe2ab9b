"""Dataset.from_pyg and random_split: a user's own PyG graph as a Dataset, and its checks."""

import pytest
import torch
from torch_geometric.data import Data

from gnnsys.datasets import synthetic
from gnnsys.datasets.dataset import Dataset, random_split


def _data(**override):
    fields = dict(
        x=torch.arange(12, dtype=torch.float32).view(6, 2),
        y=torch.tensor([0, 1, 2, 1, 0, 2]),
        edge_index=torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]),
    )
    fields.update(override)
    return Data(**{k: v for k, v in fields.items() if v is not None})


def test_round_trip_through_to_pyg():
    tiny = synthetic("tiny")
    back = Dataset.from_pyg(tiny.to_pyg(), name="tiny")
    assert back.num_classes == tiny.num_classes and back.meta["split"] == "masks"
    assert torch.equal(back.graph.indptr, tiny.graph.indptr)
    assert torch.equal(back.graph.indices, tiny.graph.indices)
    for k in ("x", "y", "train_idx", "val_idx", "test_idx"):
        assert torch.equal(getattr(back, k), getattr(tiny, k)), k


def test_edges_kept_as_given_and_labels_as_column():
    ds = Dataset.from_pyg(_data(y=torch.tensor([[0], [1], [2], [1], [0], [2]])), split_seed=0)
    assert ds.graph.to_edge_index().tolist() == [[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]
    assert ds.y.tolist() == [0, 1, 2, 1, 0, 2] and ds.num_classes == 3


def test_a_dict_of_fields_works_too():
    ds = Dataset.from_pyg(_data().to_dict(), split_seed=1)
    assert ds.num_nodes == 6 and ds.meta["split"].endswith("seed 1")


def test_masks_give_the_split_and_missing_val_test_are_empty():
    mask = torch.tensor([True, False, True, False, False, False])
    ds = Dataset.from_pyg(_data(train_mask=mask))
    assert ds.train_idx.tolist() == [0, 2] and ds.val_idx.numel() == ds.test_idx.numel() == 0


@pytest.mark.parametrize(
    "override, exc, match",
    [
        (dict(x=None), ValueError, "needs a tensor 'x', got missing"),
        (dict(x=torch.zeros(6, 2, dtype=torch.int64)), ValueError, "x must be a float tensor"),
        (dict(y=torch.tensor([0.0, 1, 2, 1, 0, 2])), ValueError, "y must be an integer tensor"),
        (dict(y=torch.tensor([0, 1, 2])), ValueError, "y has 3 labels but x has 6 rows"),
        (dict(y=torch.tensor([0, 1, 2, 1, 0, -3])), ValueError, "y holds label -3"),
        (dict(edge_index=torch.tensor([0, 1])), ValueError, r"edge_index must be \[2, E\]"),
        (dict(edge_index=torch.tensor([[0], [6]])), ValueError, r"edge_index\[1\] holds node id 6"),
        (dict(edge_index=torch.tensor([[-1], [0]])), ValueError, "edge_index.0. holds a negative"),
        (dict(edge_index=torch.tensor([[0.0], [1.0]])), ValueError, "integer node ids"),
        (
            dict(train_mask=torch.tensor([1, 0, 1, 0, 0, 0])),
            ValueError,
            "train_mask must be a bool",
        ),
        (dict(train_mask=torch.ones(6, 2, dtype=torch.bool)), ValueError, r"keep one column"),
        (dict(val_mask=torch.ones(6, dtype=torch.bool)), ValueError, "but no train_mask"),
        (dict(num_nodes=7), ValueError, "num_nodes is 7 but x has 6 rows"),
    ],
)
def test_malformed_pyg_data(override, exc, match):
    with pytest.raises(exc, match=match):
        Dataset.from_pyg(_data(**override), split_seed=0)


def test_nan_or_inf_features_name_the_row():
    x = torch.arange(12, dtype=torch.float32).view(6, 2)
    x[4, 1] = float("inf")
    with pytest.raises(ValueError, match="x holds NaN or inf: row 4 has 1 such value"):
        Dataset.from_pyg(_data(x=x), split_seed=0)
    x[4, 1] = float("nan")
    with pytest.raises(ValueError, match="row 4"):
        Dataset.from_pyg(_data(x=x), split_seed=0)


def test_a_table_too_big_to_scan_is_not_scanned(monkeypatch):
    import gnnsys._checks

    monkeypatch.setattr(gnnsys._checks, "FINITE_CHECK_BYTES", 47)  # x is 48 bytes
    x = torch.full((6, 2), float("nan"))
    assert Dataset.from_pyg(_data(x=x), split_seed=0).x.isnan().all()


def test_shared_or_repeated_split_nodes_warn():
    masks = [torch.tensor(m, dtype=torch.bool) for m in
             ([1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0])]  # fmt: skip
    with pytest.warns(
        UserWarning, match=r"train_idx and val_idx share 1 node\(s\) \(e.g. node 1\)"
    ):
        Dataset.from_pyg(_data(train_mask=masks[0], val_mask=masks[1], test_mask=masks[2]))
    ds = synthetic("tiny")
    with pytest.warns(UserWarning, match="test_idx lists 1 node.s. more than once .e.g. node"):
        Dataset("tiny", ds.graph, ds.x, ds.y, ds.train_idx, ds.val_idx, ds.test_idx[[0, 0, 1]],
                ds.num_classes)  # fmt: skip


def test_no_masks_and_no_seed_is_an_error():
    with pytest.raises(ValueError, match="no train_mask/val_mask/test_mask; pass split_seed"):
        Dataset.from_pyg(_data())


def test_not_a_data_object():
    with pytest.raises(TypeError, match="expected a torch_geometric Data or a dict"):
        Dataset.from_pyg([1, 2, 3])


def test_random_split_is_seeded_disjoint_and_skips_unlabelled():
    y = torch.tensor([0, -1, 1, 1, 0, 2, -1, 2, 0, 1, 1])  # 9 labelled
    a, b = random_split(y, 5), random_split(y, 5)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert [p.numel() for p in a] == [5, 2, 2]
    assert sorted(torch.cat(a).tolist()) == [0, 2, 3, 4, 5, 7, 8, 9, 10]
    assert any(not torch.equal(p, q) for p, q in zip(a, random_split(y, 6)))
    with pytest.raises(ValueError, match="no labelled node"):
        random_split(torch.tensor([-1, -1]), 0)
    with pytest.raises(TypeError, match="seed must be an int"):
        random_split(y, "0")


def test_a_killed_runs_temporary_folder_is_removed_by_the_next_run(tmp_path):
    """make_temp_dir removes the leftovers of dead processes of this host for the same target
    (with a warning), and keeps those of live processes, other hosts and other targets."""
    import os
    import subprocess
    import sys

    from gnnsys.datasets.dataset import _host_tag, make_temp_dir

    final = tmp_path / "papers"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    host = _host_tag()
    left = tmp_path / f".papers.{host}.{dead_pid}.0123456789ab.tmp"
    (left / "sub").mkdir(parents=True)
    (left / "sub" / "x.npy").write_bytes(b"\0" * 4096)
    live = tmp_path / f".papers.{host}.{os.getpid()}.ba9876543210.tmp"
    other_host = tmp_path / f".papers.{'0' * 8 if host != '0' * 8 else '1' * 8}.{dead_pid}.aa.tmp"
    other_target = tmp_path / f".products.{host}.{dead_pid}.0123456789ab.tmp"
    checkpoint_like = tmp_path / ".papers.k3j4l5m6.tmp"  # mkstemp's pattern: not ours
    for p in (live, other_host, other_target):
        p.mkdir()
    checkpoint_like.write_bytes(b"x")
    with pytest.warns(UserWarning, match="did not finish"):
        tmp = make_temp_dir(final)
    assert not left.exists()
    assert live.is_dir() and other_host.is_dir() and other_target.is_dir()
    assert checkpoint_like.is_file()
    assert tmp.is_dir() and tmp.name.startswith(f".papers.{host}.{os.getpid()}.")

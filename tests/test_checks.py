"""The one id check: ``gnnsys._checks.check_index`` and its row-worded form ``check_ids``."""

import numpy as np
import pytest
import torch

from gnnsys import _checks
from gnnsys._checks import (
    as_device,
    check_data_device,
    check_finite_rows,
    check_ids,
    check_index,
    warn_split_problems,
)


def test_one_implementation_behind_both_names():
    assert check_ids.func is check_index and check_ids.keywords == {"unit": "rows"}


def test_accepts_and_converts():
    out = check_ids("ids", torch.tensor([3, 0, 2], dtype=torch.int32), 4)
    assert out.dtype == torch.int64 and out.tolist() == [3, 0, 2]
    assert check_ids("ids", np.array([1, 2]), 3).tolist() == [1, 2]
    assert check_ids("ids", [0], None).tolist() == [0]
    strided = torch.arange(10)[::2]
    assert check_ids("ids", strided, 10).is_contiguous()
    assert check_index("ids", strided, 10).tolist() == [0, 2, 4, 6, 8]
    assert check_ids("ids", torch.empty(0, dtype=torch.long), 1).numel() == 0
    assert check_index("ids", [], 1).dtype == torch.int64  # an empty list is empty ids
    assert check_index("ids", torch.tensor([255], dtype=torch.uint8), 256).tolist() == [255]
    # the largest valid id passes, one more does not
    assert check_index("ids", torch.tensor([0, 4]), 5).tolist() == [0, 4]


@pytest.mark.parametrize(
    "value, kw, exc, msg",
    [
        (torch.tensor([0, 5]), {}, ValueError, r"ids holds id 5, out of range for 5 rows \(valid"),
        (torch.tensor([-2, 1]), {}, ValueError, "ids holds a negative id: -2"),
        (torch.tensor([1.0]), {}, ValueError, "ids must hold integer ids, got dtype torch.float32"),
        (torch.tensor([True]), {}, ValueError, "integer ids"),
        (torch.zeros(2, 2, dtype=torch.long), {}, ValueError, "1-dimensional, got shape"),
        (torch.empty(0, dtype=torch.long), {"allow_empty": False}, ValueError, "ids is empty"),
        (torch.tensor([7]), {"exc": IndexError}, IndexError, "out of range"),
        (torch.tensor([-7]), {"exc": IndexError}, IndexError, "negative"),
        ("x", {}, TypeError, "got str"),
        (torch.tensor([1], device="meta"), {}, ValueError, "must be on cpu, got a tensor on meta"),
        (torch.tensor([1], device="meta"), {"allow_cuda": True}, ValueError, "must be on cpu"),
    ],
)
def test_rejects_with_row_messages(value, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        check_ids("ids", value, 5, **kw)


@pytest.mark.parametrize(
    "value, msg",
    [
        (torch.tensor([0, 5]), r"nodes holds id 5, out of range for 5 nodes \(valid: 0..4\)"),
        (torch.tensor([-1]), "nodes holds a negative id: -1"),
        (torch.tensor([0.5]), "nodes must hold integer node ids, got dtype torch.float32"),
        # int64 ids far outside int32 are range errors, never wrapped into range
        (torch.tensor([2**32 + 1]), "holds id 4294967297"),
        (torch.tensor([-(2**32)]), "holds a negative id: -4294967296"),
    ],
)
def test_rejects_with_node_messages(value, msg):
    with pytest.raises(ValueError, match=msg):
        check_index("nodes", value, 5)


def test_device_rules():
    meta = torch.tensor([1], device="meta")
    with pytest.raises(ValueError, match="must be on cpu, got a tensor on meta"):
        check_index("ids", meta, None)
    with pytest.raises(ValueError, match="must be on cuda, got a tensor on cpu"):
        check_index("ids", torch.tensor([1]), None, device="cuda")
    # device=None accepts any device: the dtype and shape checks still apply
    with pytest.raises(ValueError, match="integer node ids"):
        check_index("ids", torch.tensor([1.0], device="meta"), None, device=None)
    # a meta tensor has no values: its range cannot be checked (was "Tensor.item() cannot be
    # called on meta tensors")
    with pytest.raises(
        ValueError, match="ids must be on a cpu or cuda device, got a tensor on meta"
    ):
        check_index("ids", meta, 5, device=None)


def test_checks_module_does_not_import_numba_until_a_range_check():
    # gnnsys._checks is imported by everything (the CLI too): it must stay cheap to import.
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(_checks))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in top for a in n.names} | {
        n.module for n in top if isinstance(n, ast.ImportFrom)
    }
    assert not any(str(x).startswith(("numba", "gnnsys._ids")) for x in names), names


def test_nccl_device_one_gpu_per_rank():
    assert _checks.nccl_device(1, 2, device_count=4) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="this machine has none"):
        _checks.nccl_device(0, 1, device_count=0)
    with pytest.raises(ValueError, match=r"2 ranks on this machine but 1 GPU\(s\).*--nproc 1"):
        _checks.nccl_device(1, 2, device_count=1)
    with pytest.raises(ValueError, match="local rank 3 is outside 0..1"):
        _checks.nccl_device(3, 2, device_count=4)


def test_devices_named_in_errors():
    assert as_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"device='gpu' is not a valid device"):
        as_device("gpu")
    check_data_device("x", torch.zeros(2))
    with pytest.raises(ValueError, match="x must be on a cpu or cuda device, got a tensor on meta"):
        check_data_device("x", torch.zeros(2, device="meta"))


def test_finite_rows_and_split_warnings(monkeypatch):
    x = torch.zeros(70_000, 3)  # two scan steps
    x[65_540, 1] = float("-inf")
    with pytest.raises(ValueError, match="x holds NaN or inf: row 65540 has 1 such value"):
        check_finite_rows("x", x)
    check_finite_rows("ids", torch.arange(5))  # integer tables hold no NaN
    ids = {"train_idx": torch.tensor([3, 1, 3]), "test_idx": torch.tensor([1, 7])}
    with pytest.warns(UserWarning) as caught:
        warn_split_problems(ids, "d")
    assert [str(w.message) for w in caught] == [
        "d: train_idx lists 1 node(s) more than once (e.g. node 3); they are trained or scored "
        "once per listing",
        "d: train_idx and test_idx share 1 node(s) (e.g. node 1); accuracy on test_idx is not "
        "measured on unseen nodes",
    ]


@pytest.mark.parametrize("device", ["meta", "foo", 0])
def test_data_device_accepts_cpu_and_cuda_only(device):
    from gnnsys._checks import data_device

    assert data_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^device"):
        data_device(device)

"""check_ids: the loaders' fast id validation (same rules and messages as check_index)."""

import numpy as np
import pytest
import torch

from gnnsys.loaders._validate import check_ids


def test_accepts_and_converts():
    out = check_ids("ids", torch.tensor([3, 0, 2], dtype=torch.int32), 4)
    assert out.dtype == torch.int64 and out.tolist() == [3, 0, 2]
    assert check_ids("ids", np.array([1, 2]), 3).tolist() == [1, 2]
    assert check_ids("ids", [0], None).tolist() == [0]
    strided = torch.arange(10)[::2]
    assert check_ids("ids", strided, 10).is_contiguous()
    assert check_ids("ids", torch.empty(0, dtype=torch.long), 1).numel() == 0


@pytest.mark.parametrize(
    "value, kw, exc, msg",
    [
        (torch.tensor([0, 5]), {}, ValueError, "ids holds id 5, out of range for 5 rows"),
        (torch.tensor([-2, 1]), {}, ValueError, "negative id: -2"),
        (torch.tensor([1.0]), {}, ValueError, "integer ids, got dtype torch.float32"),
        (torch.tensor([True]), {}, ValueError, "integer ids"),
        (torch.zeros(2, 2, dtype=torch.long), {}, ValueError, "1-dimensional"),
        (torch.empty(0, dtype=torch.long), {"allow_empty": False}, ValueError, "empty"),
        (torch.tensor([7]), {"exc": IndexError}, IndexError, "out of range"),
        ("x", {}, TypeError, "got str"),
        (torch.tensor([1], device="meta"), {}, ValueError, "must be on cpu"),
    ],
)
def test_rejects(value, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        check_ids("ids", value, 5, **kw)

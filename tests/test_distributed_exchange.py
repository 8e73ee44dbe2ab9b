"""gnnsys.distributed.exchange: the exchanges' groups are gloo groups whatever the job's default
backend (they carry host memory; a group inheriting NCCL would refuse CPU tensors)."""

import numpy as np
import pytest
import torch
import torch.distributed as dist

from gnnsys.distributed import exchange as exchange_mod
from gnnsys.distributed import task as task_mod
from gnnsys.distributed.exchange import Exchange


@pytest.fixture
def one_rank_group(tmp_path, monkeypatch):
    """A one-rank gloo job whose ``new_group`` calls are recorded (their backend argument)."""
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    made = []
    real = dist.new_group

    def recording(*args, **kwargs):
        made.append(kwargs.get("backend"))
        return real(*args, **kwargs)

    monkeypatch.setattr(dist, "new_group", recording)
    try:
        yield made
    finally:
        dist.destroy_process_group()


def test_every_exchange_group_is_gloo(one_rank_group):
    ex = Exchange(timeout_s=30)
    lanes = Exchange.lanes(2, timeout_s=30)
    mine = task_mod.exchange_groups(1, 1, 30.0, lanes=2)
    assert one_rank_group == ["gloo"] * 5  # asked for explicitly, not inherited
    for e in [ex, *lanes, *mine]:
        assert dist.get_backend(e.group) == "gloo"
    assert exchange_mod.EXCHANGE_BACKEND == "gloo"


def test_one_rank_exchange_counts_nothing_sent(one_rank_group):
    ex = Exchange()
    rows = torch.arange(6).reshape(3, 2)
    got, counts = ex.alltoallv(rows, np.array([3]), "ids")
    assert torch.equal(got, rows) and counts.tolist() == [3]
    assert ex.bytes_sent["ids"] == 0 and ex.messages["ids"] == 1
    with pytest.raises(ValueError, match="summing to 3 rows"):
        ex.alltoallv(rows, np.array([2]), "ids")


def test_a_group_that_cannot_carry_host_tensors_is_refused(one_rank_group, monkeypatch):
    group = dist.new_group(backend="gloo")
    monkeypatch.setattr(dist, "get_backend", lambda g=None: "nccl")  # as an NCCL group reads
    with pytest.raises(ValueError, match="'nccl' group cannot"):
        Exchange(group)
    monkeypatch.setattr(dist, "get_backend", lambda g=None: "cpu:gloo,cuda:nccl")
    assert Exchange(group).size == 1  # a device-mapped group with gloo for the CPU is fine


def test_large_receive_buffers_are_pooled_and_never_handed_out_while_held(one_rank_group):
    ex = Exchange()
    small = ex.pool.take(16, (4,), torch.float32)  # under POOLED_BYTES: a plain tensor
    assert small.shape == (16, 4) and not ex.pool._free
    rows = exchange_mod.POOLED_BYTES // 64
    held = ex.pool.take(rows, (16,), torch.float32)
    dropped = ex.pool.take(rows, (16,), torch.float32)
    freed, shape = dropped.data_ptr(), tuple(dropped.shape)
    del dropped
    assert shape == (rows, 16) and freed != held.data_ptr()
    again = ex.pool.take(rows + 7, (16,), torch.float32)  # fits the freed one (sized with slack)
    assert again.data_ptr() == freed and again.shape == (rows + 7, 16)
    assert ex.pool.take(rows, (16,), torch.float32).data_ptr() not in (freed, held.data_ptr())

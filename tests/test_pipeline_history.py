"""gnnsys.pipeline_parallel.history: per-layer histories, staleness accounting, EMA smoothing."""

import pytest
import torch

from gnnsys.pipeline_parallel.history import History


def test_write_then_read_fresh_and_stale_rows():
    h = History([1, 2], num_nodes=6, dims=[3, 4])
    v = torch.arange(9, dtype=torch.float32).view(3, 3)
    h.write(1, torch.tensor([0, 2, 4]), v, epoch=1)
    out = h.read(1, fresh=torch.tensor([4]), stale=torch.tensor([0, 2]), epoch=2, stale_edges=5)
    assert torch.equal(out, torch.stack([v[2], v[0], v[1]]))
    assert h.stale_reads[2] == 5
    assert h.max_stale_age == 1  # written in epoch 1, read in epoch 2
    assert h.max_fresh_age == 1  # a fresh row from last epoch is counted, so tests can catch it
    assert h.buf[2].shape == (6, 4)


def test_unwritten_rows_are_counted_not_aged():
    h = History([0], num_nodes=4, dims=2)
    h.write(0, torch.tensor([0]), torch.ones(1, 2), epoch=0)
    h.read(0, fresh=torch.tensor([], dtype=torch.long), stale=torch.tensor([0, 3]), epoch=1)
    assert h.unwritten_reads[1] == 1
    assert h.max_stale_age == 1


def test_write_detaches():
    h = History([0], num_nodes=3, dims=2)
    x = torch.ones(3, 2, requires_grad=True)
    h.write(0, torch.arange(3), x * 2, epoch=1)
    assert not h.buf[0].requires_grad


def test_ema_smoothing_for_stale_reads_only():
    h = History([0], num_nodes=2, dims=1, momentum=0.5)
    ids = torch.tensor([0, 1])
    h.write(0, ids, torch.tensor([[4.0], [8.0]]), epoch=1)  # first write copies
    h.write(0, ids, torch.tensor([[0.0], [0.0]]), epoch=2)
    fresh = h.read(0, fresh=ids, stale=torch.tensor([], dtype=torch.long), epoch=2)
    stale = h.read(0, fresh=torch.tensor([], dtype=torch.long), stale=ids, epoch=3)
    assert fresh.flatten().tolist() == [0.0, 0.0]  # raw last value
    assert stale.flatten().tolist() == [2.0, 4.0]  # 0.5 * old + 0.5 * new


def test_errors():
    h = History([1], num_nodes=4, dims=2)
    with pytest.raises(KeyError, match="keeps layers \\[1\\], not layer 0"):
        h.write(0, torch.tensor([0]), torch.zeros(1, 2), epoch=1)
    with pytest.raises(ValueError, match="ids holds id 4"):
        h.write(1, torch.tensor([4]), torch.zeros(1, 2), epoch=1)
    with pytest.raises(ValueError, match="values must have shape \\[1, 2\\]"):
        h.write(1, torch.tensor([0]), torch.zeros(1, 3), epoch=1)
    with pytest.raises(ValueError, match="stale holds a negative id"):
        h.read(1, torch.tensor([0]), torch.tensor([-1]), epoch=1)
    with pytest.raises(ValueError, match="momentum must be in \\[0, 1\\)"):
        History([0], 2, 2, momentum=1.0)
    with pytest.raises(ValueError, match="dims has 2 entries for 1 layers"):
        History([0], 2, [2, 3])

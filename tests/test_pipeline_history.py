"""gnnsys.pipeline_parallel.history: per-layer histories, staleness accounting, EMA smoothing,
fresh-read gradient accumulation."""

import pytest
import torch

from gnnsys.pipeline_parallel.history import FreshGrads, History


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


@pytest.mark.parametrize("fused", [True, False])
def test_read_places_rows_at_given_positions(monkeypatch, fused):
    # A chunk block's history run keeps one layout whatever the order: rows land where asked,
    # with the same statistics as the default layout (fresh rows, then stale ones).
    import gnnsys.pipeline_parallel.history as hist

    if not fused:
        monkeypatch.setattr(hist, "_fused_read_applies", lambda *a: False)
    h = History([0], num_nodes=6, dims=2, momentum=0.5)
    v = torch.arange(12, dtype=torch.float32).view(6, 2)
    h.write(0, torch.arange(6), v, epoch=1)
    h.write(0, torch.tensor([1, 4]), v[[1, 4]] + 100, epoch=2)
    fresh, stale = torch.tensor([4, 1]), torch.tensor([0, 5, 2])
    default = h.read(0, fresh, stale, epoch=2, stale_edges=3)
    out = h.read(0, fresh, stale, epoch=2, stale_edges=3,
                 fresh_at=torch.tensor([3, 0]), stale_at=torch.tensor([1, 4, 2]))  # fmt: skip
    assert torch.equal(out[[3, 0, 1, 4, 2]], default)
    assert torch.equal(out[3], v[4] + 100)  # fresh: this epoch's write
    assert h.stale_reads[2] == 6 and h.max_fresh_age == 0 and h.max_stale_age == 1


@pytest.mark.parametrize("fused", [True, False])
def test_read_placement_errors(monkeypatch, fused):
    import gnnsys.pipeline_parallel.history as hist

    if not fused:
        monkeypatch.setattr(hist, "_fused_read_applies", lambda *a: False)
    h = History([0], num_nodes=4, dims=2)
    one, none = torch.tensor([0]), torch.tensor([], dtype=torch.long)
    with pytest.raises(ValueError, match="give both fresh_at and stale_at"):
        h.read(0, one, none, epoch=0, fresh_at=torch.tensor([0]))
    with pytest.raises(ValueError, match="hold 2/0 positions for 1/0 rows"):
        h.read(0, one, none, epoch=0, fresh_at=torch.tensor([0, 1]), stale_at=none)
    with pytest.raises((ValueError, IndexError), match="fresh_at holds id 1|out of bounds"):
        h.read(0, one, none, epoch=0, fresh_at=torch.tensor([1]), stale_at=none)
    with pytest.raises(ValueError, match="must name every output row once"):
        h.read(0, one, one, epoch=0, fresh_at=torch.tensor([1]), stale_at=torch.tensor([1]))


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


def test_fresh_grads_flow_from_a_later_reader_to_the_writer():
    # Chunk A (rows 0, 1) writes layer 0; chunk B reads row 1 fresh: y = 3 * row1.
    g = FreshGrads(num_nodes=3)
    w = torch.tensor(2.0, requires_grad=True)
    x = torch.tensor([[1.0], [5.0]])
    h_a = g.inject(0, x * w, torch.tensor([0, 1]))  # A's layer-0 input, forward
    leaf = g.leaf(h_a[1:].detach())  # B's fresh read of row 1
    (3 * leaf).sum().backward()  # B's backward first (GPipe: reverse order)
    g.add(0, torch.tensor([1]), leaf.grad)
    h_a.sum().backward()  # then A's: d/dw [x0 w + x1 w + 3 x1 w] = 1 + 5 + 15
    assert w.grad.item() == 21.0
    g.reset()
    assert g.buf[0].abs().sum() == 0


def test_fresh_grads_accumulate_and_ignore_none():
    g = FreshGrads(num_nodes=4)
    g.add(1, torch.tensor([2]), None)
    assert 1 not in g.buf
    g.add(1, torch.tensor([2, 2]), torch.ones(2, 3))
    assert g.buf[1][2].tolist() == [2.0, 2.0, 2.0] and g.buf[1][0].abs().sum() == 0
    h = torch.zeros(1, 3, requires_grad=True)
    g.inject(2, h, torch.tensor([2])).sum().backward()  # layer 2 never accumulated: identity
    assert h.grad.tolist() == [[1.0, 1.0, 1.0]]


def test_fresh_grads_errors():
    g = FreshGrads(num_nodes=4)
    with pytest.raises(ValueError, match="ids holds id 4"):
        g.add(0, torch.tensor([4]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="grad must have shape \\[1, dim\\]"):
        g.add(0, torch.tensor([0]), torch.zeros(2, 2))
    g.add(0, torch.tensor([0]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="layer 0 gradients have width 2, got 3"):
        g.add(0, torch.tensor([0]), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="h must have shape \\[2, dim\\]"):
        g.inject(0, torch.zeros(1, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="ids holds a negative id"):
        g.inject(0, torch.zeros(1, 2), torch.tensor([-1]))


def test_state_dict_round_trip_continues_identically():
    def run(h, epochs):
        g = torch.Generator().manual_seed(0)
        for e in epochs:
            ids = torch.randperm(20, generator=g)[:8]
            h.write(2, ids, torch.randn(8, 4, generator=g), epoch=e)
        return h

    a = run(History([2], num_nodes=20, dims=4, momentum=0.5), [1, 2])
    b = History([2], num_nodes=20, dims=4, momentum=0.5)
    b.load_state_dict(a.state_dict())
    for h in (a, b):
        h.write(2, torch.arange(5), torch.ones(5, 4), epoch=3)
    assert torch.equal(a.buf[2], b.buf[2]) and torch.equal(a.smooth[2], b.smooth[2])
    assert torch.equal(a.written[2], b.written[2]) and a._complete == b._complete
    with pytest.raises(ValueError, match=r"history buf holds layers \[2\], not \[3\]"):
        History([3], num_nodes=20, dims=4).load_state_dict(a.state_dict())


@pytest.mark.parametrize("momentum", [None, 0.3, 0.7])
def test_numba_passes_match_the_torch_path(monkeypatch, momentum):
    # The CPU trainers take one numba pass per write and per read; other devices and dtypes
    # take the indexed torch ops. Same rows, write epochs and statistics either way (the
    # smoothed rows up to rounding: torch's vectorised lerp may fuse its multiply-add).
    import gnnsys.pipeline_parallel.history as hist

    def run(fused: bool):
        if not fused:
            monkeypatch.setattr(hist, "_fused_write_applies", lambda *a: False)
            monkeypatch.setattr(hist, "_fused_read_applies", lambda *a: False)
        g = torch.Generator().manual_seed(0)
        h = History([0, 1], num_nodes=50, dims=[3, 5], momentum=momentum)
        reads = []
        for epoch in range(4):
            for layer, d in ((0, 3), (1, 5)):
                ids = torch.randperm(50, generator=g)[: 10 + 5 * epoch]
                h.write(layer, ids, torch.randn(ids.numel(), d, generator=g), epoch)
                fresh = torch.randint(0, 50, (7,), generator=g)
                stale = torch.randint(0, 50, (9,), generator=g)
                reads.append(h.read(layer, fresh, stale, epoch + 1, stale_edges=3))
        reads.append(h.read(0, torch.arange(4), torch.arange(0), 9))  # no stale rows
        assert 9 not in h.unwritten_reads  # counted per epoch only when stale rows were read
        monkeypatch.undo()
        return h, reads

    a, ra = run(True)
    b, rb = run(False)
    for layer in (0, 1):
        assert torch.equal(a.buf[layer], b.buf[layer])
        assert torch.equal(a.written[layer], b.written[layer])
        if momentum is not None:
            torch.testing.assert_close(a.smooth[layer], b.smooth[layer], rtol=1e-6, atol=1e-6)
    for x, y in zip(ra, rb):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)
    for name in ("stale_reads", "unwritten_reads", "max_stale_age", "max_fresh_age"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.unwritten_reads[1] > 0  # the first epoch reads rows never written


@pytest.mark.parametrize("momentum", [None, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])  # numba pass, torch path
def test_write_of_selected_rows_equals_writing_those_rows(dtype, momentum):
    g = torch.Generator().manual_seed(5)
    a = History([0], num_nodes=20, dims=3, momentum=momentum, dtype=dtype)
    b = History([0], num_nodes=20, dims=3, momentum=momentum, dtype=dtype)
    for epoch in range(3):
        values = torch.randn(8, 3, generator=g).to(dtype)
        rows = torch.tensor([1, 4, 5, 7])
        ids = torch.randperm(20, generator=g)[:4]
        a.write(0, ids, values, epoch, rows=rows)
        b.write(0, ids, values[rows], epoch)
        for name in ("buf", "smooth", "written"):
            for layer, t in getattr(a, name).items():
                assert torch.equal(t, getattr(b, name)[layer]), (name, epoch)


@pytest.mark.parametrize("momentum", [None, 0.4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])  # numba pass, torch path
def test_history_keeping_some_nodes_reads_what_a_full_one_reads(dtype, momentum):
    # Rows only for the kept nodes: the same reads, statistics and (for kept nodes) rows as a
    # history with a row per node, in a fraction of the memory.
    g = torch.Generator().manual_seed(7)
    keep = torch.tensor([1, 3, 4, 8, 9, 12, 17])
    part = History([0, 2], num_nodes=20, dims=3, momentum=momentum, dtype=dtype, keep=keep,
                   validate=False)  # fmt: skip
    full = History([0, 2], num_nodes=20, dims=3, momentum=momentum, dtype=dtype)
    assert part.num_rows == 7 and part.buf[0].shape == (7, 3) and full.num_rows == 20
    for epoch in range(4):
        for layer in (0, 2):
            ids = keep[torch.randperm(7, generator=g)[:5]]
            values = torch.randn(6, 3, generator=g).to(dtype)
            rows = torch.randperm(6, generator=g)[:5]
            part.write(layer, ids, values, epoch, rows=rows)
            full.write(layer, ids, values[rows], epoch)
            fresh, stale = keep[torch.randperm(7, generator=g)[:3]], keep[:2]
            a = part.read(layer, fresh, stale, epoch, stale_edges=2)
            b = full.read(layer, fresh, stale, epoch, stale_edges=2)
            assert torch.equal(a, b), (epoch, layer)
    for layer in (0, 2):
        want = full.buf[layer].clone()
        want[~part.keeps(torch.arange(20))] = 0
        assert torch.equal(part.full(layer), want)
    for name in ("stale_reads", "unwritten_reads", "max_stale_age", "max_fresh_age"):
        assert getattr(part, name) == getattr(full, name), name
    assert part.keeps(torch.tensor([3, 5])).tolist() == [True, False]
    with pytest.raises(ValueError, match="ids holds node 5, whose rows this history does not"):
        part.write(0, torch.tensor([3, 5]), torch.ones(2, 3, dtype=dtype), 9)
    with pytest.raises(ValueError, match="stale holds node 0, whose rows"):
        part.read(0, keep[:1], torch.tensor([0]), 9)
    # a state without copies shares the buffers (a checkpoint serialises it at once); the
    # default state copies them
    assert part.state_dict(copy=False)["buf"][0].data_ptr() == part.buf[0].data_ptr()
    assert part.state_dict()["buf"][0].data_ptr() != part.buf[0].data_ptr()
    # checkpoints: its own state, and a state with a row per node (saved before histories
    # kept some nodes only) restore the same rows
    for state in (part.state_dict(), full.state_dict()):
        again = History([0, 2], num_nodes=20, dims=3, momentum=momentum, dtype=dtype, keep=keep)
        again.load_state_dict(state)
        for layer in (0, 2):
            assert torch.equal(again.buf[layer], part.buf[layer])
    other = History([0, 2], num_nodes=20, dims=3, momentum=momentum, dtype=dtype, keep=keep[1:])
    with pytest.raises(ValueError, match="keeps the rows of other nodes"):
        other.load_state_dict(part.state_dict())
    mask = torch.zeros(20, dtype=torch.bool)
    mask[keep] = True
    assert torch.equal(History([0], num_nodes=20, dims=1, keep=mask).keep, keep)
    with pytest.raises(ValueError, match="a keep mask must have 20 entries"):
        History([0], num_nodes=20, dims=1, keep=mask[:5])


def test_write_of_selected_rows_errors():
    h = History([0], num_nodes=4, dims=2, validate=False)
    with pytest.raises(ValueError, match="rows holds id 3, out of range for 3 rows"):
        h.write(0, torch.tensor([0, 1]), torch.ones(3, 2), epoch=0, rows=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="rows has 1 positions for 2 ids"):
        h.write(0, torch.tensor([0, 1]), torch.ones(3, 2), epoch=0, rows=torch.tensor([2]))
    with pytest.raises(ValueError, match=r"values must have shape \[3, 2\]"):
        h.write(0, torch.tensor([0, 1]), torch.ones(3), epoch=0, rows=torch.tensor([0, 1]))
    assert h.written[0].tolist() == [-1, -1, -1, -1]  # nothing written


def test_fused_passes_apply_only_to_cpu_float_rows_and_int64_ids():
    import gnnsys.pipeline_parallel.history as hist

    f32, ids = torch.zeros(4, 2), torch.arange(2)
    assert hist._fused_write_applies(f32, ids, torch.zeros(2, 2))
    assert not hist._fused_write_applies(f32.bfloat16(), ids, torch.zeros(2, 2).bfloat16())
    assert not hist._fused_write_applies(f32, ids.int(), torch.zeros(2, 2))
    assert hist._fused_read_applies(f32, ids, ids)
    assert not hist._fused_read_applies(f32, ids, ids.int())
    h = History([0], num_nodes=4, dims=2, dtype=torch.bfloat16)  # the torch path
    h.write(0, ids, torch.ones(2, 2, dtype=torch.bfloat16), epoch=0)
    assert h.read(0, ids, ids[:0], epoch=0).tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_unvalidated_history_still_refuses_out_of_range_ids_before_the_numba_pass():
    # validate=False (the trainers) skips check_index on the torch path only: the numba passes
    # themselves check nothing, and a bad id must not write outside the buffers.
    h = History([0], num_nodes=4, dims=2, momentum=0.5, validate=False)
    with pytest.raises(ValueError, match="ids holds id 4, out of range for 4 nodes"):
        h.write(0, torch.tensor([1, 4]), torch.ones(2, 2), epoch=0)
    assert h.written[0].tolist() == [-1, -1, -1, -1]  # nothing written
    with pytest.raises(ValueError, match="stale holds a negative id: -1"):
        h.read(0, torch.tensor([0]), torch.tensor([-1]), epoch=1)


def test_kept_rows_of_an_ids_tensor_are_mapped_once_and_in_place_changes_are_seen(monkeypatch):
    # A chunk's node lists are the same tensors at every layer: mapped to buffer rows once.
    h = History([0, 1], num_nodes=10, dims=2, keep=torch.tensor([2, 5, 7]), validate=False)
    calls = []
    real = History._rows_of
    monkeypatch.setattr(History, "_rows_of", lambda self, n, i: calls.append(n) or real(self, n, i))
    ids, none = torch.tensor([7, 2]), torch.tensor([], dtype=torch.long)
    for layer in (0, 1):
        h.write(layer, ids, torch.tensor([[1.0, 1.0], [2.0, 2.0]]), epoch=0)
    assert calls == ["ids"]
    ids[0] = 5  # in place: seen (the tensor's version), mapped again
    h.write(0, ids, torch.tensor([[3.0, 3.0], [4.0, 4.0]]), epoch=1)
    assert calls == ["ids", "ids"]
    assert h.read(0, torch.tensor([5, 2]), none, epoch=1).tolist() == [[3.0, 3.0], [4.0, 4.0]]
    ids[1] = 3  # a node this history does not keep: refused, nothing cached for it
    with pytest.raises(ValueError, match="holds node 3, whose rows this history does not keep"):
        h.write(0, ids, torch.ones(2, 2), epoch=2)
    ids[1] = 11
    with pytest.raises(ValueError, match="ids holds id 11, out of range for 10 nodes"):
        h.write(0, ids, torch.ones(2, 2), epoch=2)


def test_row_positions_are_checked_once_per_tensor_and_bound_and_in_place_changes_are_seen(
    monkeypatch,
):
    # A chunk block's positions (write's rows, read's fresh_at / stale_at) are the same tensors
    # at every layer and epoch: checked once; a change in place or another bound checks again.
    import gnnsys.pipeline_parallel.history as hist

    h = History([0, 1], num_nodes=6, dims=2, validate=False)
    names = []
    real = hist.check_index
    monkeypatch.setattr(hist, "check_index", lambda n, *a, **k: names.append(n) or real(n, *a, **k))
    ids, rows = torch.tensor([4, 1]), torch.tensor([2, 0])
    values = torch.arange(6.0).reshape(3, 2)
    fresh_at, stale_at = torch.tensor([1, 2]), torch.tensor([0])
    for layer in (0, 1):
        h.write(layer, ids, values, epoch=0, rows=rows)
        out = h.read(layer, ids, torch.tensor([0]), epoch=0, fresh_at=fresh_at, stale_at=stale_at)
        assert out.tolist() == [[0.0, 0.0], [4.0, 5.0], [0.0, 1.0]]
    assert names.count("rows") == 1
    assert names.count("fresh_at") == names.count("stale_at") == 1
    h.write(0, ids, torch.zeros(5, 2), epoch=1, rows=rows)  # another bound: checked again
    assert names.count("rows") == 2
    rows[1] = 5  # in place: checked again, and refused for 3 rows
    with pytest.raises(ValueError, match="rows holds id 5, out of range for 3 rows"):
        h.write(0, ids, values, epoch=1, rows=rows)
    stale_at[0] = 3
    with pytest.raises(ValueError, match="stale_at holds id 3, out of range for 3 nodes"):
        h.read(0, ids, torch.tensor([0]), epoch=1, fresh_at=fresh_at, stale_at=stale_at)


@pytest.mark.parametrize("fused", [True, False])
def test_read_after_head_rows_equals_cat_and_after_rows_passes_their_gradient(monkeypatch, fused):
    import gnnsys.pipeline_parallel.history as hist

    if not fused:
        monkeypatch.setattr(hist, "_fused_read_applies", lambda *a: False)
    h = History([0], num_nodes=6, dims=2, momentum=0.5, validate=False)
    h.write(0, torch.tensor([1, 3, 4]), torch.tensor([[1.0, 2], [3, 4], [5, 6]]), epoch=0)
    fresh, stale = torch.tensor([4, 1]), torch.tensor([3])
    at = dict(fresh_at=torch.tensor([2, 0]), stale_at=torch.tensor([1]))
    head = torch.tensor([[7.0, 8], [9, 10]], requires_grad=True)
    want = torch.cat([head.detach(), h.read(0, fresh, stale, epoch=1, **at)])
    got = hist.after_rows(head, lambda hd: h.read(0, fresh, stale, epoch=1, head=hd, **at))
    assert torch.equal(got, want) and got.requires_grad
    (got * torch.arange(10.0).reshape(5, 2)).sum().backward()
    assert head.grad.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert h.stale_reads[1] == 0 and h.unwritten_reads[1] == 0  # statistics as a plain read
    empty = torch.empty(0, 2)
    assert torch.equal(h.read(0, fresh, stale, epoch=1, head=empty, **at), want[2:])
    with pytest.raises(ValueError, match=r"head must have shape \[h, 2\]"):
        h.read(0, fresh, stale, epoch=1, head=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="head must be torch.float32"):
        h.read(0, fresh, stale, epoch=1, head=torch.zeros(2, 2, dtype=torch.float64))

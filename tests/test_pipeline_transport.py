"""gnnsys.pipeline_parallel.transport: tags, byte counters and timeouts (2 gloo ranks on CPU)."""

import datetime
import os
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gnnsys.pipeline_parallel.transport import (
    BWD,
    FWD,
    HALO_SLOT,
    MAX_CHUNKS,
    Transport,
    make_tag,
)


def test_tags_unique_and_checked():
    tags = {
        make_tag(e, c, s, d)
        for e in range(16)
        for c in (0, 1, MAX_CHUNKS - 1)
        for s in (0, 1, HALO_SLOT, HALO_SLOT + 5)
        for d in (FWD, BWD)
    }
    assert len(tags) == 16 * 3 * 4 * 2
    assert max(tags) < 2**31
    with pytest.raises(ValueError, match="chunk must be in 0..1023"):
        make_tag(0, 1024, 0, FWD)
    with pytest.raises(ValueError, match="slot must be in 0..255"):
        make_tag(0, 0, 256, FWD)
    with pytest.raises(ValueError, match="direction must be FWD"):
        make_tag(0, 0, 0, 2)


def _worker(rank, rendezvous, out_dir):
    dist.init_process_group(
        "gloo",
        init_method=rendezvous,
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=30),
    )
    t = Transport(timeout=20.0)
    peer = 1 - rank
    res = {}
    t.epoch = 3
    if rank == 0:
        # Two messages sent in one order, received in the other: tags keep them apart.
        t.isend(torch.full((4, 2), 1.0), peer, make_tag(3, 0, 0, FWD), "activation")
        t.isend(torch.full((3,), 2.0), peer, make_tag(3, 1, 0, FWD), "activation")
        t.isend(torch.empty(0, 5), peer, make_tag(3, 2, 0, FWD), "activation")  # skipped
        t.flush()
    else:
        b = t.recv((3,), torch.float32, peer, make_tag(3, 1, 0, FWD), "activation")
        a = t.recv((4, 2), torch.float32, peer, make_tag(3, 0, 0, FWD), "activation")
        empty = t.recv((0, 5), torch.float32, peer, make_tag(3, 2, 0, FWD), "activation")
        res["recv"] = (a.sum().item(), b.sum().item(), tuple(empty.shape))
    got = t.exchange(
        {peer: torch.full((rank + 1, 3), float(rank))},
        {peer: (peer + 1, 3)},
        torch.float32,
        make_tag(3, 0, HALO_SLOT, FWD),
        "halo",
    )
    res["exchange"] = got[peer].tolist()
    # The batched form (batch_isend_irecv) that NCCL runs use, exercised here over gloo.
    batched = Transport(timeout=20.0, batched=True)
    batched.epoch = 3
    got = batched.exchange(
        {peer: torch.full((2, rank + 1), float(rank + 5))},
        {peer: (2, peer + 1)},
        torch.float32,
        make_tag(3, 1, HALO_SLOT, FWD),
        "halo",
    )
    res["batched"] = (got[peer].tolist(), dict(batched.sent))
    # Two-way point-to-point, batched: each rank isends to the other, then receives (the
    # pattern that deadlocks unbatched NCCL). The send is held back and posted with the recv.
    batched.isend(torch.full((3,), float(rank + 1)), peer, make_tag(3, 5, 0, FWD), "activation")
    held = len(batched._deferred)
    two_way = batched.recv((3,), torch.float32, peer, make_tag(3, 5, 0, FWD), "activation")
    left = len(batched._deferred)
    # Several held-back sends received in the other order, posted by flush.
    if rank == 0:
        batched.isend(torch.full((2,), 7.0), peer, make_tag(3, 6, 0, FWD), "activation")
        batched.isend(torch.full((1,), 8.0), peer, make_tag(3, 7, 0, FWD), "activation")
        batched.flush()
        late = None
    else:
        b = batched.recv((1,), torch.float32, peer, make_tag(3, 7, 0, FWD), "activation")
        a = batched.recv((2,), torch.float32, peer, make_tag(3, 6, 0, FWD), "activation")
        late = (a.tolist(), b.tolist())
    batched.flush()
    res["two_way"] = (two_way.tolist(), held, left, late, batched.sent[(3, "activation")])
    x = torch.tensor([float(rank + 1)], dtype=torch.float64)
    t.all_reduce(x, "metrics")
    res["all_reduce"] = x.item()
    res["sent"] = dict(t.sent)
    res["received"] = dict(t.received)
    t.barrier()
    if rank == 0:
        # Nobody sends this: the wait must fail after the short timeout, naming what it waited for.
        short = Transport(timeout=1.0)
        t0 = time.monotonic()
        try:
            short.recv((1,), torch.float32, peer, make_tag(4, 0, 0, FWD), "activation")
        except RuntimeError as e:
            res["timeout"] = (str(e), time.monotonic() - t0)
    else:
        time.sleep(3.0)  # stay alive past rank 0's timeout
    torch.save(res, os.path.join(out_dir, f"rank{rank}.pt"))


@pytest.mark.slow  # ~20 s on a busy 2-core box: CI runs it in the slow step
def test_counts_and_timeouts_two_ranks(tmp_path, rendezvous):
    mp.spawn(_worker, args=(rendezvous, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    assert r1["recv"] == (8.0, 6.0, (0, 5))
    assert r0["exchange"] == [[1.0, 1.0, 1.0]] * 2
    assert r1["exchange"] == [[0.0, 0.0, 0.0]]
    assert r0["batched"][0] == [[6.0, 6.0]] * 2 and r1["batched"][0] == [[5.0]] * 2
    assert r0["batched"][1] == {(3, "halo"): 2 * 1 * 4}
    assert r0["two_way"][:3] == ([2.0] * 3, 1, 0) and r1["two_way"][:3] == ([1.0] * 3, 1, 0)
    assert r1["two_way"][3] == ([7.0, 7.0], [8.0])
    assert r0["two_way"][4] == (3 + 2 + 1) * 4 and r1["two_way"][4] == 3 * 4
    assert r0["all_reduce"] == r1["all_reduce"] == 3.0
    # Bytes counted per (epoch, kind) on the sending side, equal to what the peer received.
    assert r0["sent"][(3, "activation")] == (8 + 3) * 4
    assert r1["received"][(3, "activation")] == (8 + 3) * 4
    assert r0["sent"][(3, "halo")] == 1 * 3 * 4 and r1["sent"][(3, "halo")] == 2 * 3 * 4
    assert r0["received"][(3, "halo")] == r1["sent"][(3, "halo")]
    assert r0["sent"][(3, "metrics")] == 8
    msg, waited = r0["timeout"]
    assert "rank 0: receive of activation from rank 1" in msg
    assert waited < 15.0


def test_requires_initialised_process_group():
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    with pytest.raises(RuntimeError, match="needs torch.distributed to be initialised"):
        Transport()

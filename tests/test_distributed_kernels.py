"""gnnsys.distributed._kernels: the wire format's kernels on small hand-made inputs (the
bitwise batches they give across ranks are tested in test_distributed_graph.py)."""

import numpy as np

from gnnsys.distributed import _kernels as dk


def test_wire_kernels():
    """The routing kernels: requests grouped by owner (stable), padded replies back in
    frontier order, a fetch split into own / cached / others' rows, COO from per-hop CSC."""
    node_part = np.array([1, 0, 1, 2, 0], np.int8)
    dst = np.array([2, 1, 0, 3, 4, 2])
    etype = np.array([0, 1, 0, 1, 0, 1])
    req = np.zeros((6, 2), np.int32)
    order, counts = dk.route_requests(dst, node_part, np.empty(0, np.int64), etype, 3, req)
    assert order.tolist() == [1, 4, 0, 2, 5, 3] and counts.tolist() == [2, 3, 1]
    assert req.tolist() == [[1, 1], [4, 0], [2, 0], [0, 0], [2, 1], [3, 1]]
    # the owners answer row by row: picks (source, edge id) = (10 * dst + j, 100 + j)
    off = np.zeros(7, np.int64)
    src, eid = [], []
    for i, (d, _) in enumerate(req.tolist()):
        k = d % 3  # 0..2 picks
        off[i + 1] = off[i] + k
        src += [10 * d + j for j in range(k)]
        eid += [100 + j for j in range(k)]
    reply = np.full((6, 1 + 2 * 2), -7, np.int32)
    dk.pad_reply(off, np.array(src, np.int64), np.array(eid, np.int64), reply)
    assert reply[3].tolist() == [0, 0, 0, 0, 0]  # destination 0: no picks, zeros after
    o2, s2, e2 = dk.unpad_regroup(order, reply)
    want = [[10 * d + j for j in range(d % 3)] for d in dst.tolist()]
    assert np.diff(o2).tolist() == [len(w) for w in want]
    assert s2.tolist() == sum(want, []) and e2.tolist() == [
        100 + j for w in want for j in range(len(w))
    ]
    # a fetch on rank 1 with node 3 (rank 2's) cached
    cache_of = np.array([-1, -1, -1, 0, -1], np.int32)
    own, hit, slot, away, away_ids, sent = dk.split_fetch(
        np.array([4, 0, 3, 2, 1, 0]), node_part, 1, 3, cache_of
    )
    assert own.tolist() == [1, 3, 5] and hit.tolist() == [2] and slot.tolist() == [0]
    assert away.tolist() == [0, 4] and away_ids.tolist() == [4, 1] and sent.tolist() == [2, 0, 0]
    # two segments: 2 columns (1 + 2 edges) from destination 5, 1 column (1 edge) from 0
    ei = dk.coo_edges([np.array([7, 8, 9]), np.array([6])], np.array([5, 0]),
                      np.array([0, 1, 3, 0, 1]), np.array([0, 3, 5]))  # fmt: skip
    assert ei.tolist() == [[7, 8, 9, 6], [5, 6, 6, 0]]


def test_local_rows_of_names_the_first_id_not_owned():
    local_of = np.array([-1, 0, 2, -1, 1], np.int32)
    rows, bad = dk.local_rows_of(local_of, np.array([4, 1, 2]))
    assert rows.tolist() == [1, 0, 2] and rows.dtype == np.int64 and bad == -1
    _, bad = dk.local_rows_of(local_of, np.array([1, 3, 0]))
    assert bad == 1


def test_move_rows_places_rows_with_and_without_a_gather():
    # out[dst_idx] = src[src_idx] (src_idx empty: src in order), both twins; more rows than the
    # prefetch distance, so the prefetching and the last rows' plain path both run.
    rng = np.random.default_rng(3)
    src = rng.integers(0, 1 << 40, (50, 7)).astype(np.uint64)
    for src_idx, rows in ((rng.integers(0, 50, 30), None), (np.empty(0, np.int64), 30)):
        dst_idx = rng.permutation(40)[:30]
        want = np.zeros((40, 7), np.uint64)
        want[dst_idx] = src[src_idx] if rows is None else src[:rows]
        for kernel in (dk.move_rows, dk.move_rows_serial):
            out = np.zeros((40, 7), np.uint64)
            kernel(src if rows is None else src[:rows], src_idx, dst_idx, out)
            assert np.array_equal(out, want)

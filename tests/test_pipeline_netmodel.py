"""gnnsys.pipeline_parallel.netmodel: the link model, its token bucket and the stamped messages."""

import pytest
import torch

from gnnsys.pipeline_parallel.netmodel import Link, NetModel, net_model, stamp, unstamp


def test_link_arithmetic():
    net = NetModel(gbps=10, latency_us=5)
    assert net.seconds_per_byte == pytest.approx(8e-10)
    assert net.transfer_seconds(1_250_000) == pytest.approx(1e-3 + 5e-6)
    # Ring all-reduce: 2 (G-1) steps of b/G bytes, each with the latency.
    assert net.allreduce_seconds(4000, 4) == pytest.approx(6 * (5e-6 + 1000 * 8e-10))
    assert net.allreduce_seconds(4000, 1) == 0.0


@pytest.mark.parametrize(
    "gbps, lat, match",
    [
        (0, 0, "gbps must be finite and > 0"),
        (-1, 0, "> 0"),
        (float("inf"), 0, "finite"),
        (1, -2, "latency_us must be finite and >= 0"),
        ("1", 0, "must be a number"),
        (True, 0, "must be a number"),
    ],
)
def test_bad_settings(gbps, lat, match):
    with pytest.raises((ValueError, TypeError), match=match):
        NetModel(gbps, lat)


def test_net_model_from_settings():
    assert net_model(None) is None and net_model(0) is None
    assert net_model(25, None) == NetModel(25.0, 0.0)
    with pytest.raises(ValueError, match="needs a modeled bandwidth"):
        net_model(None, 5.0)


def test_link_books_messages_back_to_back():
    # 1 Gb/s: 125,000 bytes occupy the link 1 ms; latency 2 ms. Three messages booked at
    # t = 10 s arrive at 10.003, 10.004 and 10.005; one booked after the link went idle leaves
    # at once.
    now = [10.0]
    link = Link(NetModel(1.0, 2000.0), clock=lambda: now[0])
    arrivals = [link.book(125_000) for _ in range(3)]
    assert arrivals == pytest.approx([10.003, 10.004, 10.005])
    now[0] = 11.0
    assert link.book(0) == pytest.approx(11.002)
    link.occupy(0.5)  # a collective held the link
    assert link.book(125_000) == pytest.approx(11.503)
    assert link.busy == pytest.approx(4e-3) and link.messages == 5


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.float64, torch.uint8])
def test_stamp_round_trip(dtype):
    t = torch.arange(12, dtype=dtype).reshape(3, 4)
    buf = stamp(t, 1234.5678)
    assert buf.dtype == torch.uint8 and buf.numel() == 8 + t.numel() * t.element_size()
    arrive, payload = unstamp(buf)
    assert arrive == 1234.5678
    assert torch.equal(payload.view(dtype).reshape(3, 4), t)

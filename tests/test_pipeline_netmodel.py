"""gnnsys.pipeline_parallel.netmodel: the link model and the courier that delays sends."""

import time

import pytest

from gnnsys.pipeline_parallel.netmodel import Courier, NetModel, net_model


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


def test_courier_posts_at_modeled_arrival_in_order():
    # 1 Gb/s: 125,000 bytes occupy the link 1 ms; latency 2 ms. Three messages booked at once
    # arrive at 3, 4 and 5 ms.
    posted = []
    courier = Courier(NetModel(1.0, 2000.0))
    t0 = time.perf_counter()
    arrivals = [
        courier.send(125_000, lambda i=i: posted.append((i, time.perf_counter())) or i)
        for i in range(3)
    ]
    assert courier.drain() == [0, 1, 2]
    courier.close()
    for i, (j, t) in enumerate(posted):
        assert j == i
        assert t >= arrivals[i] - 1e-4  # never early
        assert t - t0 < (3 + i) * 1e-3 + 0.1  # and not much late (a busy machine adds some)
    assert [round(a - t0, 3) for a in arrivals] == pytest.approx([0.003, 0.004, 0.005], abs=1e-3)
    assert courier.busy == pytest.approx(3e-3) and courier.messages == 3


def test_courier_reports_a_failed_post():
    courier = Courier(NetModel(100.0))

    def boom():
        raise RuntimeError("peer gone")

    courier.send(10, boom)
    with pytest.raises(RuntimeError, match="courier failed: peer gone"):
        courier.drain()
    courier.close()

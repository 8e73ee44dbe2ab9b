"""gnnsys.pipeline_parallel.timing: exclusive section timers and the epoch summary."""

import time

import pytest

from gnnsys.pipeline_parallel import timing
from gnnsys.pipeline_parallel.timing import StageTimer, profile_row, summarise, summarise_cpu


class _ManualClock:
    """Stands in for the ``time`` module inside timing.py: wall and CPU clocks that move only
    when a test says so, so exact sums can be asserted on any machine, however loaded (a
    real-clock version of these tests failed once in CI: 7 ms of descheduling between its
    outer ``perf_counter`` and the first section)."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 5.0

    def run(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu

    def perf_counter(self) -> float:
        return self.wall

    def thread_time(self) -> float:
        return self.cpu

    def process_time(self) -> float:
        return self.cpu


@pytest.fixture
def clock(monkeypatch):
    fake = _ManualClock()
    monkeypatch.setattr(timing, "time", fake)
    return fake


def test_sections_are_exclusive_and_add_up(clock):
    timer = StageTimer(enabled=True)
    clock.run(1.0, 1.0)  # before any section: charged to nothing
    with timer.section("compute"):
        clock.run(0.02, 0.02)
        with timer.section("wait:activation"):
            clock.run(0.2, 0.001)  # blocked: wall passes, hardly any CPU
        clock.run(0.005, 0.005)
        with timer.section("history"):
            clock.run(0.01, 0.01)
        with timer.section("compute"):  # re-entering a section counts again
            clock.run(0.03, 0.03)
    clock.run(3.0, 0.0)  # after: charged to nothing
    got = timer.take()
    assert set(got) == {"compute", "wait:activation", "history"}
    assert got["compute"]["wall"] == pytest.approx(0.055)  # nested 200 ms not charged to it
    assert got["compute"]["cpu"] == pytest.approx(0.055)
    assert got["compute"]["count"] == 2
    assert got["wait:activation"]["wall"] == pytest.approx(0.2)
    assert got["wait:activation"]["cpu"] == pytest.approx(0.001)
    assert got["history"]["wall"] == pytest.approx(0.01)
    # Together the sections claim exactly the 265 ms between the first entry and last exit.
    assert sum(v["wall"] for v in got.values()) == pytest.approx(0.265)
    assert timer.take() == {}  # take resets


def test_sections_on_the_real_clock_never_overlap():
    timer = StageTimer(enabled=True)
    t0 = time.perf_counter()
    with timer.section("compute"):
        time.sleep(0.02)
        with timer.section("wait:activation"):
            time.sleep(0.2)
    total = time.perf_counter() - t0
    got = timer.take()
    # Sleeps may overrun on a busy machine, never undershoot. Charging the nested wait to
    # compute too would make the sum exceed the elapsed time.
    assert got["compute"]["wall"] >= 0.02 and got["wait:activation"]["wall"] >= 0.2
    assert sum(v["wall"] for v in got.values()) <= total
    assert got["wait:activation"]["cpu"] < got["wait:activation"]["wall"] / 2  # sleep: no CPU


def test_step_busy_excludes_waits(clock):
    timer = StageTimer(enabled=True)
    with timer.step("F", 3):
        clock.run(0.02, 0.018)
        with timer.section("wait:activation"):
            clock.run(0.2, 0.002)
        with timer.section("post"):
            clock.run(0.01, 0.01)
    clock.run(1.0, 1.0)
    ((kind, pos, busy_wall, busy_cpu),) = timer.take_steps()
    assert (kind, pos) == ("F", 3)
    assert busy_wall == pytest.approx(0.03)  # compute and posting, not the 200 ms wait
    assert busy_cpu == pytest.approx(0.03)  # CPU while waiting is not subtracted
    assert timer.take_steps() == []


def test_disabled_timer_records_nothing():
    timer = StageTimer(enabled=False)
    with timer.section("compute"), timer.step("F", 0):
        pass
    assert timer.take() == {} and timer.take_steps() == []
    row = {"epoch": 1}
    profile_row(row, timer, 1.0)
    assert row == {"epoch": 1}


def test_summarise_and_profile_row():
    sections = {
        "compute": {"wall": 0.5, "cpu": 0.5, "count": 3},
        "wait:activation": {"wall": 0.2, "cpu": 0.0, "count": 2},
        "wait:gradient": {"wall": 0.1, "cpu": 0.0, "count": 2},
    }
    out = summarise(sections, 1.0)
    assert out["wait"] == 0.3 and abs(out["other"] - 0.2) < 1e-9 and out["compute"] == 0.5
    timer = StageTimer(enabled=True)
    with timer.step("B", 0):
        pass
    row = {}
    profile_row(row, timer, 0.01)
    assert set(row) == {"breakdown", "breakdown_cpu", "steps"}
    assert row["steps"][0][:2] == ("B", 0) and "process_cpu" in row["breakdown"]
    assert set(row["breakdown_cpu"]) == {"compute", "other_threads"}


def test_summarise_cpu_splits_own_thread_sections_from_other_threads():
    sections = {
        "compute": {"wall": 0.5, "cpu": 0.4, "count": 3},
        "wait:halo": {"wall": 0.3, "cpu": 0.01, "count": 2},
    }
    out = summarise_cpu(sections, 0.6)
    assert out == {"compute": 0.4, "wait:halo": 0.01, "other_threads": 0.19}
    # a process CPU clock below the thread's (different clock resolutions): never negative
    assert summarise_cpu(sections, 0.3)["other_threads"] == 0.0

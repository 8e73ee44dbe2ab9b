"""gnnsys.pipeline_parallel.timing: exclusive section timers and the epoch summary."""

import time

from gnnsys.pipeline_parallel.timing import StageTimer, profile_row, summarise, summarise_cpu


def test_sections_are_exclusive_and_add_up():
    timer = StageTimer(enabled=True)
    t0 = time.perf_counter()
    with timer.section("compute"):
        time.sleep(0.02)
        with timer.section("wait:activation"):
            time.sleep(0.2)
        with timer.section("history"):
            time.sleep(0.01)
    total = time.perf_counter() - t0
    got = timer.take()
    assert set(got) == {"compute", "wait:activation", "history"}
    # Sleeps may overrun on a busy machine, never undershoot; the nested 200 ms must not be
    # charged to compute (which would then exceed 210 ms).
    assert 0.02 <= got["compute"]["wall"] < 0.15
    assert 0.2 <= got["wait:activation"]["wall"]
    assert 0.01 <= got["history"]["wall"] < 0.15
    assert abs(sum(v["wall"] for v in got.values()) - total) < 0.003
    assert got["compute"]["count"] == 1
    assert got["wait:activation"]["cpu"] < 0.01  # sleeping costs no CPU
    assert timer.take() == {}  # take resets


def test_step_busy_excludes_waits():
    timer = StageTimer(enabled=True)
    with timer.step("F", 3):
        time.sleep(0.02)
        with timer.section("wait:activation"):
            time.sleep(0.2)
        with timer.section("post"):
            time.sleep(0.01)
    ((kind, pos, busy_wall, busy_cpu),) = timer.take_steps()
    assert (kind, pos) == ("F", 3)
    assert 0.03 <= busy_wall < 0.15  # compute and posting, not the 200 ms wait
    assert busy_cpu < 0.02
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

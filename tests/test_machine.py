"""gnnsys._machine: thread counts follow the CPUs this process may run on, not the host's."""

import os
import subprocess
import sys

import pytest

from gnnsys._machine import usable_cpus


def test_usable_cpus_is_the_affinity_set():
    assert usable_cpus() == len(os.sched_getaffinity(0)) >= 1


def test_without_an_affinity_call_the_cpu_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert usable_cpus() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert usable_cpus() == 6


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to restrict to 1")
def test_a_process_pinned_to_one_cpu_sizes_its_threads_by_it():
    # as under `taskset -c 0`, a Slurm job's cpuset or `docker --cpuset-cpus`
    one = min(os.sched_getaffinity(0))
    code = (
        "import os; from gnnsys._machine import usable_cpus; "
        "from gnnsys.cli import _numba_threads; print(usable_cpus(), _numba_threads(), "
        "os.cpu_count())"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, {one}),
    ).stdout.split()
    assert out[:2] == ["1", "1"]
    assert int(out[2]) >= 2  # the host's count, which thread counts no longer use

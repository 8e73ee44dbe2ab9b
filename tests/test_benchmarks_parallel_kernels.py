"""benchmarks/parallel_kernels.py: one workload's row in-process; bad arguments are refused."""

import sys
from pathlib import Path

import numba
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import parallel_kernels  # noqa: E402


@pytest.mark.parametrize("workload", parallel_kernels.WORKLOADS)
def test_a_row_times_the_parallel_kernel_and_digests_its_last_batch(monkeypatch, workload):
    from gnnsys.loaders import _kernels

    monkeypatch.setattr(_kernels, "PARALLEL_MIN_WORK", _kernels.PARALLEL_MIN_WORK)  # restored
    old = numba.get_num_threads()
    try:
        threads = min(2, numba.config.NUMBA_NUM_THREADS)
        a = parallel_kernels.run_one(workload, 2, 0.01, threads)
        b = parallel_kernels.run_one(workload, 2, 0.01, threads)
    finally:
        numba.set_num_threads(old)
    assert a["digest"] == b["digest"] and len(a["digest"]) == 16  # the same batches
    assert a["edges_per_batch"] > 0 and a["ms_per_batch"] > 0
    # compile_s sums the made variants' compile times: a second run of a workload adds none
    assert b["compile_s"] == a["compile_s"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workloads", "mag"], "unknown workload 'mag'"),
        (["--threads", "0"], "must be >= 1"),
        (["--scale", "0"], "--scale > 0"),
        (["--trees", "/nonexistent"], "has no gnnsys/ package"),
    ],
)
def test_bad_arguments_are_refused(capsys, argv, message):
    with pytest.raises(SystemExit):
        parallel_kernels.main(argv)
    assert message in capsys.readouterr().err

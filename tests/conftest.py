"""Test configuration: Triton runs interpreted on CPU, GPU-only tests skip without CUDA."""

import os
import sys

# pytest-xdist runs PYTEST_XDIST_WORKER_COUNT worker processes on this machine's cores. Each ran
# torch's OpenMP pool at one thread per core, its threads spinning at every barrier while the
# other workers held the cores: a model test took 218 s beside another worker against 39 s
# alone (42 s beside it at one torch thread, 49 s with sleeping waits). So each worker takes its
# share of the cores for torch, and OpenMP threads (torch's and numba's, here and in the
# processes tests start) sleep when they wait. The wait policy is read when torch loads OpenMP.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

if _WORKERS > 1:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _WORKERS))

# Triton decides between compiling and interpreting when a kernel is decorated, so this must be
# set before any gnnsys module that defines kernels is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _old_triton_interpreter() -> bool:
    # Triton 2.2 (beside torch 2.2, e.g. the DGL peer env) cannot interpret these kernels: it
    # fails inside its own semantic layer. With a GPU the kernels compile instead.
    try:
        import triton
    except ImportError:
        return True
    return int(triton.__version__.split(".")[0]) < 3


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    old = _old_triton_interpreter()
    skip_interp = pytest.mark.skip(reason="needs Triton >= 3 to interpret kernels on CPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
        elif old and "triton_interpreter" in item.keywords:
            item.add_marker(skip_interp)


@pytest.fixture
def budget_above_rss():
    """``budget_above_rss(extra)``: a ``memory_budget`` (bytes) of ``extra`` (``"1G"``...) above
    this process's RSS now. Budgets count the whole process, and a test worker's RSS depends on
    the tests it ran before (2.1 GB in one run, which failed a fixed "2G" budget)."""
    from gnnsys.datasets.outofcore import parse_bytes, rss_bytes

    return lambda extra: rss_bytes() + parse_bytes(extra)


@pytest.fixture
def rendezvous(tmp_path) -> str:
    """An ``init_method`` for ranks spawned by a test: a file under ``tmp_path``, so there is no
    TCP port to pick and then lose to another process before rank 0 binds it (EADDRINUSE
    under load)."""
    return f"file://{tmp_path}/rendezvous"


@pytest.fixture
def device() -> torch.device:
    """The device Triton kernels run on: CUDA when present, else CPU under TRITON_INTERPRET=1."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def across_threads(monkeypatch):
    """``across_threads(fn)``: ``fn()`` under the parallel kernels with 1 and 2 numba threads
    and under the serial twins, for determinism tests (the results must be identical)."""
    import numba

    from gnnsys.loaders import _kernels

    def run(fn):
        out = []
        for work, threads in ((0, 1), (0, 2), (1 << 62, 1)):
            monkeypatch.setattr(_kernels, "PARALLEL_MIN_WORK", work)
            old = numba.get_num_threads()
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            try:
                out.append(fn())
            finally:
                numba.set_num_threads(old)
        return out

    return run


@pytest.fixture
def uninterpreted():
    """``run(code, timeout, **env)``: ``code`` in a child interpreter started from the repo
    root without TRITON_INTERPRET (so Triton compiles instead of interpreting), ``env`` added
    to this process's environment; returns the CompletedProcess (text output)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(code: str, timeout: float, **env: str):
        child = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        child.update(env)
        return subprocess.run([sys.executable, "-c", code], env=child, cwd=root,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip

    return run


@pytest.fixture
def compiles_for_cuda(uninterpreted):
    """``check(code, timeout)``: ``code`` (which prints COMPILED after compiling kernels ahead
    of time for a CUDA target) must succeed in an uninterpreted child; skipped only when ptxas
    (the CUDA assembler) is missing, any other failure fails the test."""

    def check(code: str, timeout: float) -> None:
        res = uninterpreted(code, timeout, TRITON_DEFAULT_FP_FUSION="1")
        if "COMPILED" not in res.stdout:
            msg = res.stderr[-3000:]
            if "RuntimeError: Cannot find ptxas" in msg:  # Triton's own message for this
                pytest.skip("ptxas (the CUDA assembler) is not installed")
            raise AssertionError(msg)

    return check

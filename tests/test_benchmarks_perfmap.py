"""benchmarks/perfmap: a process with it on PYTHONPATH writes a perf map naming its numba
functions at exit."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_process_writes_its_numba_functions_perf_map(tmp_path):
    code = (
        "import os\n"
        "import numpy as np\n"
        "from numba import njit\n"
        "@njit\n"
        "def twice(x):\n"
        "    return 2 * x\n"
        "twice(np.ones(3))\n"
        "import gc; gc.freeze()  # as a rank does before it exits\n"
        "import sitecustomize\n"
        f"print(sitecustomize.write_map({str(tmp_path / 'map')!r}))\n"
    )
    path = os.pathsep.join([str(ROOT / "benchmarks" / "perfmap"), str(ROOT)])
    env = dict(os.environ, PYTHONPATH=path, GNNSYS_PERF_MAP_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    assert out.stdout.strip() == str(tmp_path / "map")
    assert list(tmp_path.glob("perf-*.map"))  # the exit hook's own map, in GNNSYS_PERF_MAP_DIR
    lines = (tmp_path / "map").read_text().splitlines()
    start, size, name = next(ln.split(" ", 2) for ln in lines if ln.endswith(".twice"))
    assert int(start, 16) > 0 and int(size, 16) > 0 and name == "__main__.twice"
    # numba's runtime helpers too (atomic reference counts), each a few instructions
    start, size, name = next(ln.split(" ", 2) for ln in lines if ln.endswith("NRT_decref"))
    assert name == "numba.nrt.NRT_decref" and 0 < int(size, 16) <= 0x10


def test_summarize_groups_perf_rows_by_kind_and_kernel():
    sys.path.insert(0, str(ROOT / "benchmarks" / "perfmap"))
    try:
        from summarize import summarize
    finally:
        sys.path.pop(0)
    text = [
        "# Overhead  Shared Object  Symbol",
        "     8.52%  [JIT] tid 1   [.] gnnsys.distributed._kernels.move_rows_serial",
        "     8.08%  [JIT] tid 2   [.] gnnsys.distributed._kernels.move_rows_serial",
        "     3.68%  [kernel.kallsyms]  [k] _copy_to_iter",
        "     2.29%  libpython3.11.so.1.0  [.] _PyEval_EvalFrameDefault",
        "     0.45%  [JIT] tid 1   [.] 0x00007f639978a069",
        "     0.50%  libc.so.6     [.] malloc",
    ]
    out = summarize(text)
    assert out["by_numba_function"] == {"gnnsys.distributed._kernels.move_rows_serial": 16.6}
    assert out["by_kind"] == {"numba": 16.6, "os_kernel": 3.68, "python": 2.29, "other": 0.5,
                              "jit_unnamed": 0.45}  # fmt: skip
    assert out["top"][0] == [8.52, "[JIT] tid 1", "gnnsys.distributed._kernels.move_rows_serial"]

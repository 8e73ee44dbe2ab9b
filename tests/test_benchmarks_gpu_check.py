"""The device run's scripts on the CPU: ``benchmarks/gpu_check.sh`` (syntax, its preflight, a
dry run) and the pieces of the GPU benchmarks that can run without a GPU (the gather
benchmark's method table and argument passing, under TRITON_INTERPRET=1 from conftest), so
that a broken script is caught here rather than in the few minutes a GPU is lent."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from gnnsys.unified_tensor import pinning, unified

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
triton = pytest.importorskip("triton")
if int(triton.__version__.split(".")[0]) < 3 and not torch.cuda.is_available():
    pytest.skip("the Triton 2.x interpreter cannot run these kernels", allow_module_level=True)

from gnnsys.unified_tensor import gather_triton as gt  # noqa: E402


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def gb(monkeypatch):
    """benchmarks/gather_bandwidth.py with its JSON lines collected in ``gb.lines``."""
    m = _load("gather_bandwidth")
    m.lines = []
    monkeypatch.setattr(m, "emit", lambda rec: m.lines.append(rec))
    return m


def _case(gb, layout="unaligned", dtype=torch.float32, rows=300, d=24, n=200):
    x = gb.make_table(rows, d, dtype, gb.LAYOUTS[layout])
    x.copy_(torch.randn(rows, d, generator=torch.Generator().manual_seed(0)).to(dtype))
    ids = torch.randint(0, rows, (n,), generator=torch.Generator().manual_seed(1))
    return x, ids


@pytest.mark.parametrize("layout", ["aligned", "unaligned"])
def test_make_table_layouts(gb, layout):
    x, _ = _case(gb, layout)
    assert x.data_ptr() % 128 == gb.LAYOUTS[layout] and x.is_contiguous()
    u = unified(x)
    assert u._host.data_ptr() == x.data_ptr()  # used in place: the layout measured is real


@pytest.mark.parametrize("layout", ["aligned", "unaligned"])
def test_gather_methods_run_and_return_the_rows(gb, layout):
    # The benchmark's own method table (Triton kernels interpreted on CPU tensors): every
    # method gathers x[ids], and run_methods records each one as correct.
    x, ids = _case(gb, layout)
    u = unified(x)
    methods = gb.gather_methods(u, ids, ids, gt=gt, dev=torch.device("cpu"), overlap_programs=2)
    assert set(methods) == {
        "triton_aligned",
        "triton_unaligned",
        "triton_aligned_with_sort",
        "triton_aligned_2_programs",
        "cpu_gather_pinned_plus_h2d",
    }
    for name, fn in methods.items():
        assert torch.equal(fn(), x[ids]), name
    res = gb.run_methods(methods, lambda fn: (fn(), 1e-3)[1], x[ids], {"case": 1}, h2d=1.0)
    assert set(res) == set(methods)
    recs = [r for r in gb.lines if r["method"] in methods]
    assert len(recs) == len(methods) and all(r["correct"] is True for r in recs)
    summary = [r for r in gb.lines if r["method"] == "summary"]
    assert len(summary) == 1 and summary[0]["aligned_vs_triton_unaligned"] == 1.0


def test_bf16_storage_methods_widen(gb):
    x, ids = _case(gb, "unaligned", dtype=torch.bfloat16)
    u = gb.UnifiedTensor(x, out_dtype=torch.float32)  # as _bench_cuda_case builds it
    want = x.float()[ids]
    for name, fn in gb.gather_methods(u, ids, ids, gt=gt, dev=torch.device("cpu")).items():
        got = fn()
        assert got.dtype == torch.float32 and torch.equal(got, want), name


def test_zero_copy_source_passes_n_src(gb, monkeypatch):
    # A registered table is read through a HostPointer, which has no shape: the benchmark
    # must pass n_src (it did not, and every Triton method raised AttributeError). The real
    # gather() runs; only the kernel launch is recorded.
    x, ids = _case(gb)
    u = unified(x)
    ptr = x.data_ptr()
    u._reg = pinning.Registration(ptr, x.nbytes, [(ptr, x.nbytes)], device_ptr=ptr + (1 << 40))
    launches = []

    class _Launcher:
        def __getitem__(self, grid):
            return lambda *a, **k: launches.append((grid, a, k))

    monkeypatch.setattr(gt, "_gather_kernel", _Launcher())
    monkeypatch.setattr(gt, "_check_device", lambda ids: None)
    try:
        src, src_ptr, n_src = gb.triton_source(u, gt, torch.device("cuda", 0))
        assert isinstance(src, gt.HostPointer) and src_ptr == ptr + (1 << 40) and n_src == 300
        methods = gb.gather_methods(u, ids, ids, gt=gt, dev=torch.device("cpu"))
        for name in ("triton_aligned", "triton_unaligned", "triton_aligned_with_sort"):
            methods[name]()
    finally:
        u._reg = None
    assert len(launches) == 3
    for _, args, _ in launches:
        assert type(args[0]).__name__ == "HostPointer" and args[7] == 300  # n_src
    assert [k["ALIGNED"] for _, _, k in launches] == [True, False, True]


def test_a_failing_method_is_an_error_line_and_the_rest_run(gb):
    want = torch.arange(6.0).view(3, 2)

    def boom():
        raise RuntimeError("no such kernel")

    methods = {"first": lambda: want.clone(), "broken": boom, "wrong": lambda: want + 1}
    res = gb.run_methods(methods, lambda fn: (fn(), 0.5)[1], want, {"case": 2}, h2d=2.0)
    assert set(res) == {"first", "wrong"}
    by = {r["method"]: r for r in gb.lines}
    assert "no such kernel" in by["broken"]["error"]
    assert by["first"]["correct"] is True and by["wrong"]["correct"] is False
    assert by["first"]["vs_h2d"] == round(want.nbytes / 0.5 / 1e9 / 2.0, 3)


def test_cpu_benchmark_runs_end_to_end(tmp_path):
    import subprocess

    out = tmp_path / "gb.jsonl"
    argv = [sys.executable, str(BENCH / "gather_bandwidth.py"), "--device", "cpu",
            "--row-bytes", "128", "--table-gb", "0.001", "--batch-mb", "0.05",
            "--repeats", "1", "--out", str(out)]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    checks = [r for r in lines if r.get("method") == "check"]
    assert [r["correct"] for r in checks] == [True, True] and not any("error" in r for r in lines)
    half = {"gnnsys_float16_storage", "torch_float16_index_select_float",
            "gnnsys_bfloat16_storage", "torch_bfloat16_index_select_float"}  # fmt: skip
    assert half <= {r.get("method") for r in lines}  # (their rows are in the checks above)


# ---------------------------------------------------------------------------- gpu_check.sh

SCRIPT = BENCH / "gpu_check.sh"


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _env(tmp_path, **extra):
    import os

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(OUT=str(tmp_path / "out"), PYTHON=sys.executable, **extra)
    return env


def test_gpu_check_is_valid_bash():
    import subprocess

    res = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_gpu_check_dry_run(tmp_path):
    """No GPU needed: the preflight runs (GPU checks reported as skipped without CUDA), the plan
    fits the budget, and every benchmark it runs imports and takes --device."""
    import subprocess

    pack = tmp_path / "pack.tgz"
    res = subprocess.run(["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True,
                         cwd=ROOT, env=_env(tmp_path, GPU_CHECK_PACK=str(pack)),
                         timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    import tarfile

    with tarfile.open(pack) as tar:  # everything in OUT, packed on exit
        names = set(tar.getnames())
    assert {"out/gpu_check.jsonl", "out/preflight.jsonl"} <= names
    recs = _records(tmp_path / "out" / "gpu_check.jsonl")
    plan = recs[0]
    assert plan["step"] == "plan" and plan["ok"] is True
    assert plan["planned"] == plan["preflight"] + plan["tests"] + plan["benchmarks"]
    assert plan["planned"] < plan["budget"] <= 480 and max(plan["test_lanes"]) <= plan["tests"]
    by = {r["step"]: r for r in recs}
    assert by["preflight"]["status"] == "ok"
    helps = {k for k, r in by.items() if k.startswith("help_") and r["status"] == "ok"}
    assert helps == {f"help_{b}" for b in
                     ("gather_bandwidth", "unified_epoch", "sparse_ops", "bessel_speed", "conv_im2win",
                      "gpu_sampling", "gnnpipe_compute")}  # fmt: skip
    pre = {r["check"]: r for r in _records(tmp_path / "out" / "preflight.jsonl")}
    assert pre["done"]["ok"] is True and "torch" in pre["versions"]
    if not torch.cuda.is_available():
        assert pre["cuda"]["available"] is False and "no CUDA device" in pre["gpu"]["skipped"]


def test_gpu_check_flow_keeps_results_and_stops_on_term(tmp_path):
    """The whole flow on the CPU (--cpu, test groups and benchmarks replaced by small ones): a
    group's junit summary, a group cut by its timeout (counted from its live log), a benchmark's
    JSON lines, then a TERM while the next benchmark runs: the script records it, stops that
    benchmark and exits, and every earlier result is still there."""
    import os
    import signal
    import subprocess
    import time

    marker = "10000000007"  # in the command line of the benchmark that is interrupted
    env = _env(
        tmp_path,
        GPU_CHECK_BUDGET="400",
        GPU_CHECK_TESTS="tiny|90|tests/test_unified_tensor.py -k aligned_empty_behaves;"
        "cut|5|tests/test_ops_sparse.py -k 60000",
        GPU_CHECK_BENCH="gather_bandwidth|90|benchmarks/gather_bandwidth.py --device cpu "
        "--row-bytes 128 --table-gb 0.001 --batch-mb 0.05 --repeats 1;"
        f"sleeper|120|-m timeit -n {marker} pass",
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(["bash", str(SCRIPT), "--cpu"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    summary = out / "gpu_check.jsonl"
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        if summary.exists() and '"step": "gather_bandwidth"' in summary.read_text():
            break
        time.sleep(0.5)
    time.sleep(2)  # the sleeper is running
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout[-2000:] + stderr[-2000:]
    by = {r["step"]: r for r in _records(summary)}
    assert by["plan"]["ok"] is True and by["preflight"]["status"] == "ok"
    tiny = by["pytest_tiny"]
    assert tiny["status"] == "ok" and tiny["tests"] == 10 and tiny["failures"] == 0
    assert (out / "junit_tiny.xml").exists()
    cut = by["pytest_cut"]
    assert cut["status"] == "timeout" and "counted from the log" in cut["note"]
    assert by["gather_bandwidth"]["status"] == "ok"
    lines = _records(out / "gather_bandwidth.jsonl")
    assert [r["correct"] for r in lines if r.get("method") == "check"] == [True, True]
    assert by["gpu_check"]["status"] == "interrupted" and "sleeper" not in by
    time.sleep(1)
    left = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    left.append(pid)
        except OSError:
            continue
    assert not left, f"the interrupted benchmark is still running: {left}"


# ---------------------------------------------------------------------------- --device flags


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_sparse_ops_runs_on_cpu_and_says_when_cuda_is_missing(capsys):
    m = _load("sparse_ops")
    argv = ["--nodes", "300", "--edges", "3000", "--feats", "4", "--repeat", "1", "--warmup", "0",
            "--reduce", "sum,max", "--device", "cpu"]  # fmt: skip
    assert m.main(argv) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert all(r["device"] == "cpu" for r in rows) and not any("error" in r for r in rows)
    timed = {(r["impl"], r["reduce"], r["phase"]) for r in rows if "seconds" in r and "reduce" in r}
    for impl in ("gnnsys", "torch.sparse.mm", "scatter_reduce"):
        for r in ("sum", "max"):
            assert {(impl, r, "forward"), (impl, r, "forward_backward")} <= timed
    assert rows[0]["max_in_degree"] > 0
    if not torch.cuda.is_available():
        assert m.main(argv[:-1] + ["cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().out


def test_bessel_speed_runs_on_cpu_and_says_when_cuda_is_missing(capsys):
    m = _load("bessel_speed")
    argv = ["--n", "2000", "--repeat", "1", "--sub", "2", "--dist", "small", "--device", "cpu"]
    assert m.main(argv) == 0
    rows = _json_lines(capsys.readouterr().out)
    timed = [r["impl"] for r in rows if "seconds" in r]  # log_iv and log_kv
    assert timed.count("scipy") == 2 and timed.count("gnnsys") == 4  # all threads, and one
    summary = [r for r in rows if r.get("summary")]
    assert len(summary) == 1 and summary[0]["max_err_eps"] is not None
    assert "gnnsys_triton_seconds" not in summary[0]
    if not torch.cuda.is_available():
        assert m.main(argv[:-1] + ["cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().out

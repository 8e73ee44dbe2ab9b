"""benchmarks/gather_ab.py: one row per case with a timing per tree and round (each tree's
kernel checked against numpy first); bad arguments are refused."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gather_ab  # noqa: E402

ROOT = str(Path(__file__).resolve().parents[1])


def _cache_state():
    cache = Path(ROOT) / "gnnsys" / "unified_tensor" / "__pycache__"
    return (
        {p.name: p.stat().st_mtime_ns for p in cache.glob("gather_cpu*")} if cache.is_dir() else {}
    )


def test_one_row_per_case_with_every_tree_timed(capsys):
    before = _cache_state()
    argv = ["--trees", f"{ROOT},{ROOT}", "--cases", "mini-mag,float16", "--rounds", "2",
            "--reps", "1", "--scale", "0.001"]  # fmt: skip
    assert gather_ab.main(argv) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rows[0]["trees"] == [ROOT, ROOT]
    assert [r["case"] for r in rows[1:]] == ["mini-mag", "float16"]
    for r in rows[1:]:
        assert len(r["ms_per_gather"]) == 2 and all(len(m) == 2 for m in r["ms_per_gather"])
        assert len(r["ratio_to_first"]) == 1 and r["batch_rows"] >= 1
    # the copies' numba caches stay out of the tree (entries written there under another
    # module name would break the tree's normal imports)
    assert _cache_state() == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--trees", "/nonexistent"], "not found"),
        (["--trees", ROOT, "--cases", "huge"], "--cases must name"),
        (["--trees", ROOT, "--rounds", "0"], "must be >= 1"),
        (["--trees", ROOT, "--scale", "2"], "must lie in (0, 1]"),
    ],
)
def test_bad_arguments_are_refused(capsys, argv, message):
    with pytest.raises(SystemExit):
        gather_ab.main(argv)
    assert message in capsys.readouterr().err

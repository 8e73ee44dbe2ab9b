"""benchmarks/gather_order.py: one row per coverage, both orders timed (and checked to give
the same rows inside); bad arguments are refused."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gather_order  # noqa: E402


def test_one_row_per_coverage(capsys):
    argv = ["--rows", "500", "--row-bytes", "64", "--coverage", "0.1,1", "--reps", "1",
            "--flush-mb", "1"]  # fmt: skip
    assert gather_order.main(argv) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["coverage"], r["batch_rows"]) for r in rows] == [(0.1, 50), (1.0, 500)]
    assert all(r["batch_order_ms_median"] > 0 and r["row_order_ms_median"] > 0 for r in rows)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--row-bytes", "100"], "multiple of 8"),
        (["--coverage", "0"], "must lie in (0, 1]"),
        (["--coverage", "half"], "must be fractions"),
        (["--reps", "0"], "must be >= 1"),
    ],
)
def test_bad_arguments_are_refused(capsys, argv, message):
    with pytest.raises(SystemExit):
        gather_order.main(argv)
    assert message in capsys.readouterr().err

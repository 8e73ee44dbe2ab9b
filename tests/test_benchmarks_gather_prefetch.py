"""benchmarks/gather_prefetch.py: one row per (table, width) with a ratio per distance; bad
arguments are refused."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gather_prefetch  # noqa: E402


def test_rows_per_table_and_width(capsys):
    argv = ["--tables-mb", "1", "--rows-b", "64,128", "--ahead", "0,2", "--rounds", "1",
            "--reps", "1", "--gather-kb", "16"]  # fmt: skip
    assert gather_prefetch.main(argv) == 0
    head, *rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert head["gather_kb"] == 16
    assert [(r["table_mb"], r["row_bytes"]) for r in rows] == [(1, 64), (1, 128)]
    assert [r["rows_gathered"] for r in rows] == [256, 128]
    assert all(r["no_prefetch_ms"] > 0 and r["ahead_2"] > 0 for r in rows)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rows-b", "100"], "multiples of 8"),
        (["--ahead", "2,4"], "must include 0"),
        (["--tables-mb", "0"], "--tables-mb must be >= 1"),
        (["--rounds", "0"], "must be >= 1"),
    ],
)
def test_bad_arguments_are_refused(capsys, argv, message):
    with pytest.raises(SystemExit):
        gather_prefetch.main(argv)
    assert message in capsys.readouterr().err

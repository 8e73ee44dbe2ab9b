"""benchmarks/half_widen.py: one JSON line, the float16 output exact; bad arguments refused."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import half_widen  # noqa: E402


def test_times_both_formats_and_checks_float16(capsys):
    assert half_widen.main(["--rows", "500", "--dim", "24", "--ids", "300", "--reps", "2",
                            "--tag", "t"]) == 0  # fmt: skip
    row = json.loads(capsys.readouterr().out)
    assert row["kernel"] == "arithmetic" and row["float16_exact"] is True and row["tag"] == "t"
    assert row["float16_ms"] > 0 and row["bfloat16_ms"] > 0


@pytest.mark.parametrize("flag", ["--rows", "--dim", "--ids", "--reps"])
def test_refuses_non_positive_sizes(flag, capsys):
    with pytest.raises(SystemExit):
        half_widen.main([flag, "0"])
    assert f"{flag} must be >= 1" in capsys.readouterr().err

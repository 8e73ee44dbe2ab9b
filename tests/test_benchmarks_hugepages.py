"""benchmarks/hugepages.py: the gather A/B prints its rows (tiny tables, no loader runs)."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import hugepages  # noqa: E402


def test_gather_rows_name_both_layouts(capsys):
    assert hugepages.main(["--sizes", "5000x16:800", "--rounds", "2", "--loader-rounds", "0"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["command"].startswith("python benchmarks/hugepages.py")
    (g,) = [r for r in rows if r.get("measure") == "gather"]
    assert g["rows"] == 5000 and g["ids"] == 800 and g["4k_ms_median"] > 0
    assert g["huge_ms_median"] > 0 and len(g["4k_ms_range"]) == 2

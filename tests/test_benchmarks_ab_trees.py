"""benchmarks/ab_trees.py: trees resolve and must hold gnnsys/; workloads must be known."""

import argparse
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from ab_trees import trees_and_workloads  # noqa: E402


def test_trees_resolve_and_workloads_split():
    p = argparse.ArgumentParser()
    trees, work = trees_and_workloads(p, f"{ROOT},,{ROOT / 'tests' / '..'}", "a,,b", ("a", "b"))
    assert trees == [str(ROOT), str(ROOT)] and work == ["a", "b"]


@pytest.mark.parametrize(
    "trees, workloads, message",
    [
        ("/nonexistent", "a", "--trees: /nonexistent has no gnnsys/ package"),
        (".", "c", "unknown workload 'c'; choose from a, b"),
    ],
)
def test_bad_trees_and_workloads_end_the_run(capsys, trees, workloads, message):
    with pytest.raises(SystemExit):
        trees_and_workloads(argparse.ArgumentParser(), trees, workloads, ("a", "b"))
    assert message in capsys.readouterr().err

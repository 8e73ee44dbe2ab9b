"""benchmarks/cgroup_loader_ab.sh: valid bash that refuses wrong arguments before touching
any cgroup (running it needs root and a v1 memory cgroup, so CI only checks this much)."""

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cgroup_loader_ab.sh"


def test_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_wrong_arguments_print_the_usage(tmp_path):
    out = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out.jsonl")],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2
    assert "usage:" in out.stderr
    assert not (tmp_path / "out.jsonl").exists()

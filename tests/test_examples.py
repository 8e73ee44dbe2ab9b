"""The example scripts run as a user would run them (their `main()` with a command line), on
the tiny graph: the PyG two-line change (with and without `--unified`), the DGL swap and the
vMF fit. The temporal example has its own module (test_examples_temporal.py)."""

import importlib.util
import math
import re
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(name, argv, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
    module.main()
    return capsys.readouterr().out


@pytest.mark.parametrize("extra", [[], ["--unified"]])
def test_pyg_two_line_change_learns(monkeypatch, capsys, extra):
    out = _run("pyg_two_line_change", ["--epochs", "2", *extra], monkeypatch, capsys)
    last = [line for line in out.splitlines() if line.startswith("epoch 2:")]
    assert last, out
    loss, test = re.search(r"loss ([\d.]+).*test ([\d.]+)", last[0]).groups()
    assert math.isfinite(float(loss)) and float(test) > 0.2  # 8 classes: chance is 0.125


def test_dgl_swap_learns(monkeypatch, capsys):
    out = _run("dgl_swap", ["--epochs", "2"], monkeypatch, capsys)
    last = [line for line in out.splitlines() if line.startswith("epoch 1:")]
    assert last, out
    loss, acc = re.search(r"loss ([\d.]+)\s+val acc ([\d.]+)", last[0]).groups()
    assert math.isfinite(float(loss)) and float(acc) > 0.2


def test_vmf_fit_recovers_the_mean_direction(monkeypatch, capsys):
    out = _run("vmf_fit", [], monkeypatch, capsys)
    fits = [float(v) for v in re.findall(r"mu\.mu_hat=([\d.]+)", out)]
    assert fits and min(fits) > 0.99, out
    assert "log C_p(kappa) at kappa = p" in out

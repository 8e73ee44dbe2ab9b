"""Shared pieces of the OGB benchmark scripts: dataset choice, OGB's Evaluator, reporting."""

from __future__ import annotations

import json
import statistics
import sys
from typing import Dict, List, Optional

import numpy as np
import torch


def load(name: str, root: Optional[str], standin: str):
    """The OGB dataset under ``root``, or the synthetic stand-in (said plainly) without one."""
    from gnnsys import datasets

    if root:
        return datasets.ogb(name, root), False
    standin_note(name, f"synthetic:{standin}")
    return datasets.synthetic(standin, seed=0), True


def standin_note(name: str, dataset: str) -> None:
    """Say plainly that a run is on a synthetic stand-in, not on the OGB dataset."""
    print(
        f"NOTE: no --root given, so this runs on the synthetic stand-in '{dataset}', "
        f"not on {name}; its accuracy is NOT comparable with the published {name} numbers.",
        file=sys.stderr,
        flush=True,
    )


def accuracy(name: str, y: torch.Tensor, pred: torch.Tensor, idx: torch.Tensor) -> float:
    """Accuracy through ``ogb.nodeproppred.Evaluator`` when ogb is installed."""
    y_true = y[idx].view(-1, 1).numpy()
    y_pred = pred[idx].view(-1, 1).numpy()
    try:
        from ogb.nodeproppred import Evaluator
    except ImportError:
        return float(np.mean(y_true == y_pred))
    return float(Evaluator(name).eval({"y_true": y_true, "y_pred": y_pred})["acc"])


def report(name: str, model: str, published: str, tests: List[float], standin: bool, **extra):
    """Print one JSON line: published vs ours (mean ± std over runs)."""
    mean = statistics.mean(tests)
    std = statistics.stdev(tests) if len(tests) > 1 else 0.0
    row: Dict = {
        "benchmark": name,
        "model": model,
        "dataset": f"synthetic stand-in for {name}" if standin else name,
        "published_test_acc": published,
        "ours_test_acc": f"{100 * mean:.2f} ± {100 * std:.2f}",
        "runs": len(tests),
        "comparable": not standin,
        **extra,
    }
    print(json.dumps(row), flush=True)
    return row

"""Shared pieces of the OGB benchmark scripts: dataset choice, size check, OGB's Evaluator,
reporting.

A run is reported ``"comparable": true`` with the published numbers only when it ran on a
dataset under ``--root`` that has the real dataset's known sizes (nodes, feature width,
classes): a folder holding another graph under an OGB name is reported as not comparable.
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

# The real datasets' sizes: (nodes, feature width, classes), from OGB's dataset pages.
KNOWN_SIZES = {
    "ogbn-arxiv": (169_343, 128, 40),
    "ogbn-products": (2_449_029, 100, 47),
    "ogbn-papers100M": (111_059_956, 128, 172),
}


def size_mismatches(name: str, ds: Any) -> List[str]:
    """How ``ds`` differs from ``name``'s known sizes (empty when it matches).

    Classes are counted from the labels (largest label + 1 over the labelled nodes): the OGB
    loader sets ``num_classes`` from the name, so it cannot tell another graph apart.

    Example:
        >>> size_mismatches("ogbn-arxiv", cora_under_the_arxiv_name)
        ['nodes 2,708 (ogbn-arxiv has 169,343)', ...]
    """
    nodes, width, classes = KNOWN_SIZES[name]
    labelled = ds.y[ds.y >= 0]
    got = (
        ("nodes", int(ds.num_nodes), nodes),
        ("feature width", int(ds.x.shape[1]), width),
        ("classes in the labels", int(labelled.max()) + 1 if labelled.numel() else 0, classes),
    )
    return [f"{what} {have:,} ({name} has {want:,})" for what, have, want in got if have != want]


def load(name: str, root: Optional[str], standin: str) -> Tuple[Any, bool, List[str]]:
    """(dataset, standin, size mismatches): the OGB dataset under ``root`` checked against its
    known sizes, or the synthetic stand-in (said plainly) without one."""
    from gnnsys import datasets

    if root:
        ds = datasets.ogb(name, root)
        return ds, False, check_sizes(name, ds)
    standin_note(name, f"synthetic:{standin}")
    return datasets.synthetic(standin, seed=0), True, []


def check_sizes(name: str, ds: Any) -> List[str]:
    """``size_mismatches``, said plainly on stderr when there are any."""
    bad = size_mismatches(name, ds)
    if bad:
        print(
            f"NOTE: the dataset under --root does not have {name}'s sizes ({'; '.join(bad)}); "
            f"it is not {name}, and its accuracy is NOT comparable with the published {name} "
            "numbers.",
            file=sys.stderr,
            flush=True,
        )
    return bad


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


def report(
    name: str,
    model: str,
    published: str,
    tests: List[float],
    standin: bool,
    mismatches: Optional[List[str]] = None,
    **extra,
):
    """Print one JSON line: published vs ours (mean ± std over runs). ``comparable`` only for
    a run on a dataset with the real one's sizes (``mismatches`` empty)."""
    mean = statistics.mean(tests)
    std = statistics.stdev(tests) if len(tests) > 1 else 0.0
    if standin:
        dataset = f"synthetic stand-in for {name}"
    elif mismatches:
        dataset = f"a dataset under the name {name} without its sizes"
    else:
        dataset = name
    row: Dict = {
        "benchmark": name,
        "model": model,
        "dataset": dataset,
        "published_test_acc": published,
        "ours_test_acc": f"{100 * mean:.2f} ± {100 * std:.2f}",
        "runs": len(tests),
        "comparable": not standin and not mismatches,
        **extra,
    }
    if mismatches:
        row["size_mismatch"] = list(mismatches)
    print(json.dumps(row), flush=True)
    return row

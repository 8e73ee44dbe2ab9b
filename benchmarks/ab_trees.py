"""Argument checks shared by the A/B benchmarks that time several source trees side by side
(``sampler_serial.py``, ``parallel_kernels.py``): each ``--trees`` entry is a checkout or a
``git archive`` of another commit, imported in its own subprocess."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Sequence, Tuple


def trees_and_workloads(
    p: argparse.ArgumentParser, trees: str, workloads: str, known: Sequence[str]
) -> Tuple[List[str], List[str]]:
    """The comma-separated ``trees`` (resolved; each must hold a ``gnnsys/`` package) and
    ``workloads`` (each one of ``known``); anything else ends the run through ``p.error``.

    Example:
        >>> trees_and_workloads(parser, "/tmp/base,.", "homo", ("homo", "typed"))
        (['/tmp/base', '/work/main'], ['homo'])
    """
    tree_list = [str(Path(t).resolve()) for t in trees.split(",") if t]
    workload_list = [w for w in workloads.split(",") if w]
    for w in workload_list:
        if w not in known:
            p.error(f"unknown workload {w!r}; choose from {', '.join(known)}")
    for t in tree_list:
        if not (Path(t) / "gnnsys" / "__init__.py").is_file():
            p.error(f"--trees: {t} has no gnnsys/ package")
    return tree_list, workload_list

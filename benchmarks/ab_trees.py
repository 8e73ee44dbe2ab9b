"""Helpers shared by the A/B benchmarks that time several source trees side by side
(``sampler_serial.py``, ``parallel_kernels.py``, ``gather_ab.py``): each ``--trees`` entry is a
checkout or a ``git archive`` of another commit, imported in its own subprocess, or (one
kernel module of each tree) loaded into one process by ``load_tree_module``."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
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


def load_tree_module(tree: str, relpath: str, prefix: str) -> ModuleType:
    """``tree``'s module file ``relpath`` (e.g. ``gnnsys/loaders/_kernels.py``) as a module of
    its own, with its own numba dispatchers; its imports of other ``gnnsys`` modules resolve to
    the running package.

    The file is copied first, under a name from ``prefix`` and its content's hash, into a
    folder of the temporary directory, and registered in ``sys.modules``: numba caches compiled
    code beside the source file and records the module's name in it, so a copy loaded from the
    tree's own path would overwrite the package's cache entries with ones naming a module that
    a later process cannot import. The same source twice (an A/A run) is the same module."""
    text = (Path(tree) / relpath).read_bytes()
    name = prefix + hashlib.sha256(text).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    folder = Path(tempfile.gettempdir()) / "gnnsys-tree-ab"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.py"
    if not path.exists():
        tmp = folder / f"{name}.{os.getpid()}.tmp"
        tmp.write_bytes(text)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module

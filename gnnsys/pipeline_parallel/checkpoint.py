"""Checkpoints of a full-graph run (pipe, hybrid, graph): one file per rank, one manifest.

Every rank holds a different piece of the run (its stage's parameters, optimizer moments and
histories), so each writes its own ``epoch-EEEEEE.rank-RRRR.pt`` (atomic: temp file, fsync,
rename). Only when every rank has written epoch E (a barrier) does rank 0 replace the manifest
``checkpoint.json`` (atomic too) with ``{"epoch": E, "world": W}``, and only then remove the
files of earlier epochs. A kill at any moment therefore leaves a manifest naming an epoch whose
W files are all complete; files of a later, uncommitted epoch are ignored (and removed by the
next commit).

Example (inside a rank; the trainers do this when ``TrainConfig.checkpoint_dir`` is set):
    >>> save_rank_state(folder, epoch=3, rank=1, state=trainer.checkpoint_state())
    >>> commit(folder, epoch=3, world=4)        # rank 0, after a barrier
    >>> latest_epoch(folder)                    # 3
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch

from gnnsys.checkpoint import (
    atomic_write_bytes,
    atomic_write_with,
    json_finite,
    load_checkpoint,
)

MANIFEST = "checkpoint.json"
FORMAT = "gnnsys-pipeline-checkpoint"
VERSION = 1
PathLike = Union[str, Path]


RANK_FILES = "epoch-*.rank-*.pt"  # every rank file of a checkpoint folder (``rank_file``'s names)


def rank_file(folder: PathLike, epoch: int, rank: int) -> Path:
    """The state file of ``rank`` at the end of ``epoch``."""
    return Path(folder) / f"epoch-{int(epoch):06d}.rank-{int(rank):04d}.pt"


def save_rank_state(folder: PathLike, epoch: int, rank: int, state: Dict[str, Any]) -> None:
    """Write one rank's state for ``epoch`` atomically (not yet the run's checkpoint: see
    ``commit``)."""
    blob = {"epoch": int(epoch), "rank": int(rank), "state": state}
    atomic_write_with(rank_file(folder, epoch, rank), lambda f: torch.save(blob, f))


def commit(
    folder: PathLike, epoch: int, world: int, rows: Optional[List[Dict[str, Any]]] = None
) -> None:
    """Make ``epoch`` the run's checkpoint (every rank's file of it must be written), then
    remove the rank files of every other epoch.

    ``rows``: rank 0's metrics rows of the epochs this run has trained so far (``committed_rows``
    gives them back): a run killed after the commit but before its launcher wrote the epoch's
    row to ``metrics.jsonl`` resumes with the row from here instead of refusing to resume.
    """
    folder = Path(folder)
    manifest = {"format": FORMAT, "version": VERSION, "epoch": int(epoch), "world": int(world)}
    body = _manifest_text(manifest, rows)
    atomic_write_bytes(folder / MANIFEST, body.encode())
    keep = {rank_file(folder, epoch, r).name for r in range(world)}
    for path in folder.glob(RANK_FILES):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def latest_epoch(folder: PathLike, world: Optional[int] = None) -> Optional[int]:
    """The committed epoch of ``folder`` (None when it has no manifest yet); a manifest of
    another format, or of another number of ranks than ``world``, is a ValueError."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); delete the folder to start again"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a gnnsys full-graph checkpoint manifest")
    if manifest.get("version") != VERSION:
        raise ValueError(f"{path} has version {manifest.get('version')!r}, this gnnsys reads 1")
    epoch, wrote = manifest.get("epoch"), manifest.get("world")
    if not isinstance(epoch, int) or epoch < 1 or not isinstance(wrote, int) or wrote < 1:
        raise ValueError(f"{path}: epoch and world must be ints >= 1, got {epoch!r}, {wrote!r}")
    if world is not None and wrote != world:
        raise ValueError(
            f"{path} was written by {wrote} ranks; this run has {world}: resume with the same "
            "--nproc (and --pipe-stages)"
        )
    return epoch


def _manifest_text(manifest: Dict[str, Any], rows: Optional[List[Dict[str, Any]]]) -> str:
    # Strict JSON, as metrics.jsonl: a non-finite float (an accuracy over an empty split) is
    # null. Rows that do not serialise (never from the trainers) are left out, not fatal: the
    # resume then needs metrics.jsonl to hold them, as it always did.
    if rows:
        try:
            return json.dumps({**manifest, "rows": [json_finite(r) for r in rows]}, allow_nan=False)
        except (TypeError, ValueError):
            pass
    return json.dumps(manifest)


def committed_rows(folder: PathLike) -> List[Dict[str, Any]]:
    """The metrics rows the committed manifest of ``folder`` carries (``commit(rows=)``):
    rank 0's rows of the epochs its run trained, up to the committed one ([] when none, or for
    a manifest written before rows were kept). Call after ``latest_epoch`` accepted it."""
    try:
        rows = json.loads((Path(folder) / MANIFEST).read_text()).get("rows") or []
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(rows, list):
        return []
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("epoch"), int)]


def load_rank_state(folder: PathLike, epoch: int, rank: int) -> Dict[str, Any]:
    """One rank's state of committed ``epoch`` (``CorruptCheckpointError`` naming a damaged
    file, ``FileNotFoundError`` a missing one)."""
    path = rank_file(folder, epoch, rank)
    blob = load_checkpoint(path)
    if blob.get("epoch") != epoch or blob.get("rank") != rank or "state" not in blob:
        raise ValueError(f"{path} does not hold rank {rank}'s state of epoch {epoch}")
    return blob["state"]


class Checkpointing:
    """What the full-graph trainers share to checkpoint and resume: ``resume()`` before the
    first epoch, ``checkpoint(epoch)`` after each. A trainer provides ``tcfg`` (its
    ``TrainConfig``: ``checkpoint_dir``, ``checkpoint_every``, ``resume``, ``epochs``),
    ``transport`` (rank, world_size, barrier) and ``checkpoint_state()`` /
    ``load_checkpoint_state(state)``."""

    tcfg: Any
    transport: Any

    def checkpoint_state(self) -> Dict[str, Any]:  # pragma: no cover - each trainer's own
        raise NotImplementedError

    def load_checkpoint_state(self, state: Dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def resume(self) -> int:
        """The committed epoch this rank continued from (its state restored), or 0."""
        folder = self.tcfg.checkpoint_dir
        if not (folder and self.tcfg.resume):
            return 0
        epoch = latest_epoch(folder, self.transport.world_size)
        if epoch is None:
            return 0
        self.load_checkpoint_state(load_rank_state(folder, epoch, self.transport.rank))
        return epoch

    def checkpoint(
        self, epoch: int, loss: float, rows: Optional[List[Dict[str, Any]]] = None
    ) -> None:
        """At the end of ``epoch``: every ``checkpoint_every`` epochs and at the last one, each
        rank writes its state and, once all have (a barrier), rank 0 commits the epoch (with
        ``rows``, its metrics rows of this run so far). Not after an epoch whose (all-reduced,
        so every rank skips alike) loss is NaN or inf: a resume must not continue from
        diverged parameters."""
        folder, every = self.tcfg.checkpoint_dir, self.tcfg.checkpoint_every
        if not folder or not every or (epoch % every and epoch != self.tcfg.epochs):
            return
        if not math.isfinite(loss):
            return
        save_rank_state(folder, epoch, self.transport.rank, self.checkpoint_state())
        self.transport.barrier()
        if self.transport.rank == 0:
            commit(folder, epoch, self.transport.world_size, rows)

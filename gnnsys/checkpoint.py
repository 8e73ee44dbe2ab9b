"""Atomic checkpoints: a crash (even SIGKILL) mid-write never leaves a torn or missing file.

The state goes to a temporary file in the same folder, is flushed and fsync'ed, then renamed
over the old checkpoint (``os.replace`` is atomic on POSIX), and the folder is fsync'ed so the
rename itself survives a power cut.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Union

import numpy as np
import torch

PathLike = Union[str, "os.PathLike[str]"]

# What ``torch.load`` raises on a damaged or foreign file (beside OSError): callers turn these
# into one clear error naming the file, or fall back to another source.
TORCH_LOAD_ERRORS = (
    EOFError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    RuntimeError,  # torch's zip reader: "failed finding central directory", ...
    ValueError,
    TypeError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    UnicodeDecodeError,
)


class CorruptCheckpointError(ValueError):
    """A checkpoint file exists but cannot be read (empty, truncated or not a checkpoint).

    Writes are atomic, so this means the file was damaged or replaced after it was written;
    the message names the file and what to do.
    """


def json_finite(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth of dicts, lists, tuples) as None:
    what strict JSON (``allow_nan=False``) can hold, as metrics.jsonl and manifests write it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_finite(v) for v in value]
    return value


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename + fsync of the folder)."""
    atomic_write_with(path, lambda f: f.write(data))


def atomic_write_with(path: PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """``write(f)`` into a temp file beside ``path``, then fsync and rename it into place (and
    fsync the folder): ``atomic_write_bytes`` for writers that stream, such as ``torch.save``,
    so that a big state is not held in memory a second (and third) time as bytes first.

    Example:
        >>> atomic_write_with("run/state.pt", lambda f: torch.save(state, f))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode())  # mkstemp's 0600 would make the run's files private
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 less the process's umask."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (``/proc/self/status``,
    Linux 4.7+): setting and restoring it, the only portable way, would give a file another
    thread creates in between the wrong mode."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: PathLike, state: Dict[str, Any]) -> None:
    """Save ``state`` (plus the RNG states of python, numpy and torch) atomically with torch.save.

    Example:
        >>> save_checkpoint("run/checkpoint.pt", {"model": model.state_dict(), "epoch": 3})
    """
    state = dict(state)
    state["rng"] = rng_state()
    atomic_write_with(path, lambda f: torch.save(state, f))


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` onto the CPU (RNG states not restored).

    Raises ``FileNotFoundError`` when there is no file and ``CorruptCheckpointError`` (naming
    the file) when it is empty, truncated or not a checkpoint, instead of torch's raw
    ``EOFError`` / ``UnpicklingError``.

    Example:
        >>> state = load_checkpoint("run/checkpoint.pt"); restore_rng(state["rng"])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise CorruptCheckpointError(_corrupt(path, "is empty"))
    try:
        # weights_only=False: our own file, holding optimizer state and numpy RNG tuples.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except PermissionError:
        raise
    # OSError: torch's reader on some damaged files ("[Errno 22] Invalid argument")
    except (OSError, *TORCH_LOAD_ERRORS) as err:
        raise CorruptCheckpointError(
            _corrupt(path, f"cannot be read ({load_error_text(err)})")
        ) from None
    if not isinstance(state, dict):
        what = f"holds a {type(state).__name__}, not a checkpoint dict"
        raise CorruptCheckpointError(_corrupt(path, what))
    return state


def load_error_text(err: BaseException, first_sentence: bool = True) -> str:
    """``Type: first sentence`` (or first line) of what ``torch.load`` raised (torch's messages
    are paragraphs), for errors that name the file themselves."""
    detail = (str(err).splitlines() or [""])[0]
    if first_sentence:
        detail = detail.split(". ")[0]
    return f"{type(err).__name__}: {detail}"


def _corrupt(path: Path, what: str) -> str:
    return (
        f"checkpoint {path} is corrupt: it {what}; delete it (or move it away) and start "
        "again without --resume"
    )


def rng_state() -> Dict[str, Any]:
    """The RNG states of python's random, numpy's global generator and torch (CPU and CUDA)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

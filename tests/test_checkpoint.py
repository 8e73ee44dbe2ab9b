"""Atomic checkpoint writes and RNG state round trips."""

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from gnnsys.checkpoint import (
    CorruptCheckpointError,
    atomic_write_bytes,
    atomic_write_with,
    load_checkpoint,
    restore_rng,
    rng_state,
    save_checkpoint,
)


def test_save_load_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "sub" / "checkpoint.pt"
    save_checkpoint(path, {"model": model.state_dict(), "epoch": 7})
    state = load_checkpoint(path)
    assert state["epoch"] == 7
    for k, v in model.state_dict().items():
        assert torch.equal(state["model"][k], v)
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


def test_rng_restore_reproduces_draws():
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng(state)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def boom(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_streaming_writer_that_fails_midway_keeps_the_old_file(tmp_path):
    # torch.save streams into the temp file (no bytes copy of the state in memory); a writer
    # that fails after writing part of it leaves the old file and no temp file behind
    path = tmp_path / "state.pt"
    atomic_write_with(path, lambda f: torch.save({"x": torch.arange(3)}, f))
    assert torch.equal(torch.load(path)["x"], torch.arange(3))

    def half_then_fail(f):
        f.write(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write_with(path, half_then_fail)
    assert torch.equal(torch.load(path)["x"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize(
    "damage, detail",
    [
        (lambda b: b"", "it is empty"),
        (lambda b: b[: len(b) // 2], "it cannot be read ("),  # the error varies with the cut
        (lambda b: b"\x80\x02garbage" * 20, "it cannot be read (UnpicklingError"),
        (lambda b: b[:10], "it cannot be read (RuntimeError"),
    ],
    ids=["empty", "truncated", "garbage", "ten-bytes"],
)
def test_corrupt_checkpoint_names_the_file_and_what_to_do(tmp_path, damage, detail):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "model": torch.nn.Linear(3, 2).state_dict()})
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CorruptCheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert msg.startswith(f"checkpoint {path} is corrupt: {detail}"), msg
    assert msg.endswith("delete it (or move it away) and start again without --resume")
    assert "\n" not in msg


def test_checkpoint_that_is_not_a_dict(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CorruptCheckpointError, match="holds a list, not a checkpoint dict"):
        load_checkpoint(path)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_open_would_give(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "f", b"x")
        save_checkpoint(tmp_path / "c.pt", {"epoch": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == mode
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == mode


def test_umask_is_read_without_setting_it(monkeypatch):
    from gnnsys import checkpoint

    old = os.umask(0o027)
    try:
        calls = []
        real = os.umask
        monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or real(m))
        if Path("/proc/self/status").exists():
            assert checkpoint._umask() == 0o027
            assert calls == []  # read from /proc: no window with another umask
        # where /proc cannot say, the set-and-restore fallback gives the same answer
        monkeypatch.setattr(checkpoint, "open", lambda *a, **k: (_ for _ in ()).throw(OSError()),
                            raising=False)  # fmt: skip
        assert checkpoint._umask() == 0o027
        assert real(0o027) == 0o027  # restored
    finally:
        os.umask(old)

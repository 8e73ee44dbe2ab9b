"""Processes that end with the process that started them.

``gnnsys train`` starts its ranks as child processes (``spawn`` for the full-graph modes,
``torch.distributed.run`` for ddp and dist). When the launching process is killed outright
(SIGKILL, the OOM killer: no cleanup code runs), the children used to go on training as
orphans: a machine's cores still busy and a run folder still being written by a job its user
believes dead. Linux can deliver a signal to a process when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); the children ask for SIGKILL. Elsewhere this is a no-op.

The request follows the thread that started the child: children must be started from a
thread that lives as long as the run (the launchers use the calling thread).

A rank that has reported also ends quickly: ``skip_exit_collection`` keeps the interpreter's
exit from walking every object torch created looking for cycles.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
from typing import List, Optional

_PR_SET_PDEATHSIG = 1
# Set by run_module_bound_to for the module it runs (torchrun) and so for that module's
# children (the ranks): the pid of that process.
LAUNCHER_PID_ENV = "GNNSYS_LAUNCHER_PID"


def die_with_parent(parent_pid: Optional[int] = None) -> bool:
    """Have this process SIGKILLed when its parent dies; returns whether that was armed.

    ``parent_pid``, when given, is the parent this process was started by: if it is already
    gone (it died before the request, so it will never signal), the process exits now.

    Example:
        >>> die_with_parent(os.getppid())
        True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
    return True


def skip_exit_collection() -> bool:
    """Leave what is alive now out of the cyclic collections the interpreter runs at exit.

    A rank that imported torch tracks ~256k objects, and finalisation runs full collections
    over all of them: ~0.4-0.5 s of CPU per rank, measured (perf) after the last epoch of a
    pipeline run, which the launcher waits for when it joins its ranks. ``gc.freeze`` moves
    them to the permanent generation, which those collections skip; reference counting still
    frees what module teardown releases, and the OS takes back the rest. Call it only when the
    process's work is done and reported (its results sent, its files closed): an object in a
    cycle then never runs its finaliser. Not done once Triton is imported (GPU ranks): its
    nanobind extension reports the instances left alive at exit ("nanobind: leaked 4
    instances!") on stderr, noise that would alarm a user; returns whether it froze.

    Example:
        >>> results.put(outcome); skip_exit_collection()  # doctest: +SKIP
    """
    if "triton" in sys.modules:
        return False
    gc.freeze()
    return True


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def launcher_gone() -> bool:
    """Whether the launcher that started this rank (``run_module_bound_to``'s process, named in
    ``LAUNCHER_PID_ENV``) has already died: then it will never signal, whatever this process
    arms. Without the variable: whether this process was reparented to init (a subreaper, as in
    some containers, would not be caught that way)."""
    pid = os.environ.get(LAUNCHER_PID_ENV, "")
    if pid.isdigit():
        return not process_alive(int(pid))
    return os.getppid() == 1


def run_module_bound_to(parent_pid: int, module: str, argv: List[str]) -> None:
    """Run ``python -m module *argv`` in this process, SIGKILLed when ``parent_pid`` dies:
    ``python -m gnnsys._lifetime PID MODULE ARGS...`` (what a launcher starts instead of
    ``python -m MODULE ARGS...``; no ``preexec_fn``, which is unsafe in a threaded parent).

    Example:
        >>> subprocess.call([sys.executable, "-m", "gnnsys._lifetime", str(os.getpid()),
        ...                  "torch.distributed.run", "--nproc-per-node=2", ...])
    """
    import runpy

    die_with_parent(parent_pid)
    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())  # the module's children: see launcher_gone
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    run_module_bound_to(int(sys.argv[1]), sys.argv[2], sys.argv[3:])

"""Worker threads a Loader keeps from one epoch to the next.

Starting a loader's threads anew at every ``iter()`` cost more than the threads themselves: a
new thread runs Python (its start, ``numba.set_num_threads``, the first batch's prelude) while
the consumer waits for the GIL to return from ``iter()``: 1.4 ms at best and up to 10 ms (the
interpreter's 5 ms switch interval, twice) on a 2-core box. That dominates short epochs: a
2-batch epoch of ``synthetic("tiny")`` took 0.92-1.27 ms with new threads and 0.80-0.89 ms
with kept ones (``benchmarks/epoch_overhead.py``); at mini-mag's 31 batches an epoch the
difference is within the noise. A ``WorkerPool`` keeps the threads and hands each new run's
jobs to them, as ``persistent_workers=True`` does for torch's DataLoader processes.

A pool serves one run at a time: a second iterator over the same loader while the first is
still running (``zip(loader, loader)``, nested loops) gets its own threads, as before. The
threads hold the pool, not the loader, and drop each finished job, so a loader nobody
references is freed and its finaliser closes the pool; ``close_all`` at exit stops every pool.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Callable, List, Optional, Sequence

_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()
# Seconds a ``start`` waits for jobs that ``finishing`` said are returning (a finished epoch's,
# past their last batch) before it gives up and the caller starts threads of its own.
FINISHING_WAIT = 0.5


class WorkerPool:
    """Threads that run batches of jobs, one job a thread, one batch of jobs at a time.

    Example:
        >>> pool = WorkerPool("gnnsys-loader")
        >>> pool.start([lambda: print("a"), lambda: print("b")])   # True: two threads run them
        >>> pool.close()                                           # the threads exit
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._threads: List[threading.Thread] = []
        self._jobs: List[Optional[Callable[[], None]]] = []
        self._busy = 0
        self._returning = False  # the running jobs are past their work (``finishing``)
        self._closed = False
        self._pid = os.getpid()  # threads do not survive a fork: a child's pool refuses work
        _POOLS.add(self)

    def finishing(self) -> None:
        """Say that the running jobs have done their work and are returning (the consumer has
        every batch): the next ``start`` waits for them instead of refusing."""
        with self._cond:
            self._returning = True

    def start(self, jobs: Sequence[Callable[[], None]]) -> bool:
        """Run ``jobs[i]`` on thread i (started if the pool has fewer); False, starting nothing,
        while earlier jobs still run (unless ``finishing`` said they are returning: then it
        waits up to ``FINISHING_WAIT`` seconds for them), after ``close`` or in a child
        process forked from this one."""
        if self.forked():  # (before the lock, which a fork may have copied while held)
            return False
        with self._cond:
            if self._busy and self._returning:
                self._cond.wait_for(lambda: not self._busy, timeout=FINISHING_WAIT)
            self._returning = False
            if self._closed or self._busy:
                return False
            while len(self._threads) < len(jobs):
                i = len(self._threads)
                self._jobs.append(None)
                t = threading.Thread(target=self._loop, args=(i,), name=f"{self.name}-{i}",
                                     daemon=True)  # fmt: skip
                t.start()
                self._threads.append(t)
            for i, job in enumerate(jobs):
                self._jobs[i] = job
            self._busy = len(jobs)
            self._cond.notify_all()
        return True

    def forked(self) -> bool:
        """Whether this is a child process's copy of the pool (its threads stayed behind)."""
        return self._pid != os.getpid()

    def threads(self, count: Optional[int] = None) -> List[threading.Thread]:
        """The first ``count`` threads (those a ``start`` of ``count`` jobs runs on), or all."""
        with self._cond:
            return self._threads[:count]

    def close(self) -> None:
        """Let the threads exit once their current jobs return (not waiting for them)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _loop(self, i: int) -> None:
        while True:
            with self._cond:
                while self._jobs[i] is None and not self._closed:
                    self._cond.wait()
                job = self._jobs[i]
                if job is None:  # closed, nothing left to run
                    return
            try:
                job()
            except BaseException as err:  # reported as an uncaught one; the thread serves on
                args = (type(err), err, err.__traceback__, threading.current_thread())
                threading.excepthook(threading.ExceptHookArgs(args))
            finally:
                # Drop the job (its run, the loader) before waiting for the next one: a loader
                # nobody else holds is freed here, and its finaliser closes this pool.
                job = None
                with self._cond:
                    self._jobs[i] = None
                    self._busy -= 1
                    self._cond.notify_all()


def kept_for(owner: Any, pool: Optional[WorkerPool]) -> WorkerPool:
    """``pool`` while it is this process's, else a new pool closed when ``owner`` is freed: the
    threads an owner (a Loader, the DGL front) keeps across its epochs, made on first use."""
    if pool is None or pool.forked():  # (a forked child's copy: threads of its own)
        pool = WorkerPool("gnnsys-loader")
        weakref.finalize(owner, pool.close)
    return pool


def close_all() -> List[threading.Thread]:
    """Close every pool of this process; returns their threads (for the caller to join)."""
    threads: List[threading.Thread] = []
    for pool in list(_POOLS):
        pool.close()
        threads += pool.threads()
    return threads

"""The CPUs this process may run on: what thread counts are sized by.

``os.cpu_count()`` is the host's count; a Slurm job, a ``taskset`` or a container started with
``--cpuset-cpus`` may run on fewer, and threads sized by the host's count then oversubscribe
the CPUs the job has (a 4-CPU job on a 128-core host would start 128 sampling threads). The
allowed set (``os.sched_getaffinity``) is what numba's own default uses too. (Memory figures
capped by a memory cgroup: ``gnnsys._mapped.machine_memory``.)
"""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity set; ``os.cpu_count()`` where the platform
    has no affinity call), at least 1.

    Example:
        >>> usable_cpus() >= 1
        True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)

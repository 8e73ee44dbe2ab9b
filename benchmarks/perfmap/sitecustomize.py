"""Name numba's compiled functions for ``perf``: at exit, write ``/tmp/perf-<pid>.map``.

``perf report`` shows JIT code as bare addresses ("[JIT] tid N"); a perf map file gives
each compiled numba function (every overload of every dispatcher the process loaded or
compiled) its address range and name. Put this folder first on PYTHONPATH of the processes
to profile (spawned workers inherit it) and run perf over them:

    PYTHONPATH=benchmarks/perfmap:. python benchmarks/distributed.py --no-peer ... &
    perf record -a -F 499 -o perf.data -- sleep 10
    perf report -i perf.data --sort sym --stdio      # after the processes have exited

numba's runtime helpers are named too (``numba.nrt.NRT_incref`` / ``NRT_decref``: the
atomic reference counts around array values, which a refactor can put into a hot loop).
A function's size is taken as the gap to the next one (numba does not report sizes), so the
samples of inlined callees count toward the function they were inlined into.
"""

import atexit
import gc
import os

_BIG = 0x100000  # the most a numba function is taken to span


def _entries():
    try:
        from numba.core.registry import CPUDispatcher
    except Exception:  # numba not imported, or not importable: nothing to name
        return []
    out = set()
    # gc.get_objects() skips the permanent generation: a rank that froze its objects before
    # exit (gnnsys._lifetime.skip_exit_collection) would name nothing. Profiling only.
    gc.unfreeze()
    for obj in gc.get_objects():
        if not isinstance(obj, CPUDispatcher):
            continue
        for cres in list(obj.overloads.values()):
            lib = cres.library
            names = [cres.fndesc.llvm_func_name]
            try:
                names += [f.name for f in lib.get_defined_functions()]
            except Exception:  # (a library loaded from the cache may not list them)
                pass
            for name in names:
                try:
                    addr = lib.get_pointer_to_function(name)
                except Exception:
                    continue
                if addr:
                    out.add((addr, f"{obj.py_func.__module__}.{obj.py_func.__qualname__}", _BIG))
    if out:
        out |= _runtime_entries()
    return sorted(out)


def _runtime_entries():
    # numba's runtime helpers, JIT-compiled on their own: NRT_incref / NRT_decref are the
    # atomic reference counts numba wraps around array values (session 37 found 31% of a kernel
    # there, shown as bare addresses). Each is a few instructions: sized at most 16 bytes.
    try:
        from numba.core.runtime import nrt

        lib = nrt.rtsys.library
        out = set()
        for f in lib.get_defined_functions():
            addr = lib.get_pointer_to_function(f.name)
            if addr:
                out.add((addr, f"numba.nrt.{f.name}", 0x10))
        return out
    except Exception:  # (another numba version's runtime layout: leave them unnamed)
        return set()


def write_map(path=None):
    """Write the perf map of this process's numba functions (default: perf-<pid>.map in
    ``GNNSYS_PERF_MAP_DIR``, else /tmp, where perf looks for it)."""
    entries = _entries()
    if not entries:
        return None
    folder = os.environ.get("GNNSYS_PERF_MAP_DIR", "/tmp")
    path = path or os.path.join(folder, f"perf-{os.getpid()}.map")
    with open(path, "w") as f:
        for i, (addr, name, cap) in enumerate(entries):
            nxt = entries[i + 1][0] if i + 1 < len(entries) else addr + 0x10000
            f.write(f"{addr:x} {min(nxt - addr, cap):x} {name}\n")
    return path


atexit.register(write_map)

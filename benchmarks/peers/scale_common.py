"""What benchmarks/peers/scale_{dgl,pyg}.py share: arguments, the seeds, the mmap advice gnnsys
applies, timing, the JSON line. Runs in the peer envs (no gnnsys import)."""

import argparse
import ctypes
import json
import mmap
import time
import warnings

import numpy as np
import torch


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--folder", required=True)
    p.add_argument("--fanout", default="15,10,5")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=30)
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    return p.parse_args()


def features(folder):
    """The float16 feature table, memory-mapped read-only and advised as gnnsys's load_folder
    advises it: read ahead whole when it fits in half the free memory, MADV_RANDOM beyond."""
    x = torch.from_numpy(np.load(f"{folder}/x.npy", mmap_mode="r"))
    ptr, n = x.data_ptr(), x.numel() * x.element_size()
    start = ptr - ptr % mmap.PAGESIZE
    with open("/proc/meminfo") as f:
        avail = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("MemAvailable:"))
    advice = mmap.MADV_WILLNEED if n <= avail // 2 else mmap.MADV_RANDOM
    ctypes.CDLL(None).madvise(ctypes.c_void_p(start), ctypes.c_size_t(n + ptr - start), advice)
    return x


def seeds(folder, a):
    """The seeds benchmarks/scale.py draws: training nodes in a seed-0 random order, cycled."""
    train = torch.from_numpy(np.load(f"{folder}/train_idx.npy"))
    need = (a.batches + 3) * a.batch_size
    order = train[torch.randperm(train.numel(), generator=torch.Generator().manual_seed(0))]
    return order.repeat(-(-need // order.numel()))[:need]


def vm(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def time_batches(loader, a, count_nodes):
    """(seconds, nodes) of ``a.batches`` batches after 3 warm-up batches."""
    it = iter(loader)
    for _ in range(3):
        next(it)
    t = time.perf_counter()
    nodes = 0
    for _ in range(a.batches):
        nodes += count_nodes(next(it))
    return time.perf_counter() - t, nodes


def report(version, a, build_s, sec, nodes):
    print(json.dumps({"version": version, "build_seconds": round(build_s, 2),
                      "batches": a.batches, "batches_per_s": round(a.batches / sec, 3),
                      "sampled_nodes_per_batch": nodes // a.batches,
                      "vmhwm_bytes": vm("VmHWM"), "vmrss_bytes": vm("VmRSS")}))  # fmt: skip

"""DistDGL (dgl.distributed, DGL 2.1) peer for the distributed-sampling benchmark, on one box.

Runs P DistDGL "machines" over localhost: per part one DistGraphServer process (num_servers=1)
and one trainer process (DGL_NUM_SAMPLER=0 by default: sampling happens in the trainer;
``--num-samplers k`` gives each trainer k sampler processes, as launch.py's --num_samplers),
launched with the environment variables DGL's tools/launch.py sets. Each trainer iterates a
DistNodeDataLoader (NeighborSampler) over its node_split of the training nodes and fetches
features and labels of every batch, as a training loop would. Prints ONE JSON line on stdout; everything else goes to
stderr or to log files under WORKDIR/run/.

Run it with the DGL environment (it must not import gnnsys):

    /tmp/gnnsys-peers/dgl/bin/python benchmarks/peers/dist_dgl.py GRAPH_DIR --parts 2 \
        [--method metis|random] [--batches 50] [--batch-size 1024] [--fanout 15,10,5] \
        [--workdir DIR] [--warmup 3] [--timeout 900]

Two things DGL 2.1 gets wrong when several machines share one host, and what this script does:

* Shared-memory names collide. A DistGraphServer publishes its partition (graph structure,
  partition book, and *always* the feature tensors, e.g. ``node~_N~feat-kvdata-``) in POSIX
  shared memory under fixed names; DGL's shm_open uses O_CREAT without O_EXCL, so server 1 silently
  opens and overwrites server 0's feature table (and the trainers map whichever server wrote last).
  Every machine therefore runs in its own mount namespace (``unshare --mount``) with a private tmpfs
  on /dev/shm, as separate hosts would have. Needs root or unprivileged user namespaces
  (``unshare -Urm``); the script checks and refuses P > 1 without isolation.
* The trainer finds its machine id by matching the ip_config addresses against the host's
  interface addresses (rpc_client.get_local_machine_id); with every server on 127.0.0.1 every
  trainer becomes machine 0. The trainer process patches that one function to return its own
  machine index, so trainer i talks to server i through shared memory (local part) and to the
  others over TCP, as on a cluster. Each trainer checks get_partition_book().partid == i and
  verifies the first batch's features and labels against x.npy / y.npy.

Bytes: loopback carries everything, so /sys/class/net/lo tx/rx are read around the timed window
(all loopback traffic of the box: other engineers' jobs would count too). Per-socket TCP counters
(``ss -tinp``: bytes_sent of the sockets our processes own, payload only) split our own traffic
into cross-machine bytes (what a real network would carry) and same-machine bytes.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)
GRAPH_NAME = "g"

if __name__ == "__mp_main__" and "DISTDGL_MACHINE_ID" in os.environ:
    # A DistDGL sampler process (--num-samplers; DGL spawns it from the trainer, which
    # re-imports this file as __mp_main__): the same machine-id fix as the trainer's (client()).
    import dgl.distributed.rpc_client as _rpc_client

    _MID = int(os.environ["DISTDGL_MACHINE_ID"])
    _rpc_client.get_local_machine_id = lambda server_namebook: _MID


def log(*a):
    print("[dist_dgl]", *a, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("graph", help="folder with src.npy, dst.npy, x.npy, y.npy [, train_idx.npy]")
    p.add_argument("--parts", type=int, required=True, help="machines = partitions")
    p.add_argument("--method", default="metis", choices=["metis", "random"])
    p.add_argument("--batches", type=int, default=50, help="timed batches per trainer")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", default="15,10,5", help="PyG order: first hop first")
    p.add_argument(
        "--workdir", default=None, help="partitions + run files (default /tmp/distdgl-<graph>)"
    )
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument(
        "--num-samplers",
        type=int,
        default=0,
        help="sampler processes per trainer (launch.py's --num_samplers; 0: the trainer samples)",
    )
    p.add_argument(
        "--timeout", type=float, default=900, help="seconds for the whole distributed run"
    )
    p.add_argument(
        "--omp-threads",
        type=int,
        default=None,
        help="OMP threads per trainer (default max(1, cores // parts // 2), as launch.py "
        "gives cores // 2 per machine); servers get 1 as launch.py's default",
    )
    p.add_argument(
        "--no-isolation",
        action="store_true",
        help="do not give each machine its own /dev/shm (only valid with --parts 1)",
    )
    # internal roles
    p.add_argument("--_machine", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--_role", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_rundir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_hostns", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _pdeathsig():
    """preexec_fn: the child gets SIGKILL when its parent dies (no orphans if we are killed)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _killpg(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------------------------
# traffic counters
# --------------------------------------------------------------------------------------------
def lo_bytes():
    d = "/sys/class/net/lo/statistics/"
    with open(d + "tx_bytes") as f:
        tx = int(f.read())
    with open(d + "rx_bytes") as f:
        rx = int(f.read())
    return tx, rx


def ss_snapshot():
    """{(local, peer): (pid or None, bytes_sent)} for all established TCP sockets."""
    try:
        out = subprocess.run(
            ["ss", "-tinpHO", "state", "established"], capture_output=True, text=True, timeout=20
        ).stdout
    except Exception as e:  # ss missing: no per-socket numbers
        log("ss failed:", e)
        return None
    socks = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        # with a state filter the state column is dropped: Recv-Q Send-Q Local Peer ...
        local, peer = f[2], f[3]
        pid = None
        i = line.find("pid=")
        if i >= 0:
            pid = int(line[i + 4 :].split(",")[0])
        sent = 0
        i = line.find("bytes_sent:")
        if i >= 0:
            sent = int(line[i + 11 :].split()[0])
        socks[(local, peer)] = (pid, sent)
    return socks


def ss_split(before, after, pid2machine):
    """Bytes our processes sent during the window: cross-machine, same-machine."""
    if before is None or after is None:
        return None
    owner = {local: pid for (local, _), (pid, _) in after.items()}
    cross = same = 0
    for key, (pid, sent) in after.items():
        if pid not in pid2machine:
            continue
        delta = sent - before.get(key, (pid, 0))[1]
        peer_pid = owner.get(key[1])
        if peer_pid in pid2machine and pid2machine[peer_pid] == pid2machine[pid]:
            same += delta
        else:
            cross += delta
    return cross, same


# --------------------------------------------------------------------------------------------
# launcher
# --------------------------------------------------------------------------------------------
def partition(args, part_dir):
    import dgl
    import numpy as np
    import torch

    cfg = os.path.join(part_dir, GRAPH_NAME + ".json")
    if os.path.exists(cfg) and os.path.exists(os.path.join(part_dir, "orig_nid.npy")):
        log(f"reusing partition {cfg}")
        return cfg, None

    def load(k):
        return np.load(os.path.join(args.graph, k + ".npy"))

    x, y, src, dst = load("x"), load("y"), load("src"), load("dst")
    n = x.shape[0]
    tpath = os.path.join(args.graph, "train_idx.npy")
    train_idx = (
        np.load(tpath)
        if os.path.exists(tpath)
        else np.random.default_rng(0).permutation(n)[: min(200_000, n)]
    )
    g = dgl.graph((torch.from_numpy(src), torch.from_numpy(dst)), num_nodes=n)
    del src, dst
    g.ndata["feat"] = torch.from_numpy(x)
    g.ndata["label"] = torch.from_numpy(y)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.from_numpy(train_idx)] = True
    g.ndata["train_mask"] = mask
    log(f"graph: {n} nodes, {g.num_edges()} edges, {x.shape[1]} features, {len(train_idx)} train")
    t0 = time.perf_counter()
    orig_nid, _ = dgl.distributed.partition_graph(
        g,
        GRAPH_NAME,
        args.parts,
        part_dir,
        part_method=args.method,
        balance_ntypes=mask,
        balance_edges=True,
        return_mapping=True,
    )
    secs = time.perf_counter() - t0
    np.save(os.path.join(part_dir, "orig_nid.npy"), orig_nid.numpy())
    with open(os.path.join(part_dir, "partition_seconds.txt"), "w") as f:
        f.write(f"{secs}\n")
    log(f"partition ({args.method}, {args.parts} parts): {secs:.2f} s")
    return cfg, secs


def check_isolation(args):
    if args.no_isolation:
        if args.parts > 1:
            sys.exit(
                "--no-isolation with --parts > 1 would let the servers overwrite each other's "
                "shared memory (same names); refusing"
            )
        return []
    base = (
        ["unshare", "--mount", "--propagation", "private"]
        if os.geteuid() == 0
        else ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
    )
    r = subprocess.run(
        base + ["sh", "-c", "mount -t tmpfs tmpfs /dev/shm"], capture_output=True, text=True
    )
    if r.returncode != 0:
        msg = f"cannot give each machine a private /dev/shm ({' '.join(base)}): {r.stderr.strip()}"
        if args.parts > 1:
            sys.exit(msg)
        log(msg, "- running the single machine without isolation")
        return []
    return base


def launcher(args):
    # Keep stdout for the single JSON line; everything (DGL, METIS) else goes to stderr.
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    args.graph = os.path.abspath(args.graph)
    workdir = args.workdir or f"/tmp/distdgl-{os.path.basename(args.graph.rstrip('/'))}"
    part_dir = os.path.join(os.path.abspath(workdir), f"{args.method}-p{args.parts}")
    os.makedirs(part_dir, exist_ok=True)
    import dgl

    version = dgl.__version__
    cfg, psecs = partition(args, part_dir)
    if psecs is None:
        try:
            psecs = float(open(os.path.join(part_dir, "partition_seconds.txt")).read())
        except OSError:
            psecs = None
        partition_reused = True
    else:
        partition_reused = False

    isolation = check_isolation(args)
    rundir = os.path.join(part_dir, f"run-{os.getpid()}")
    os.makedirs(rundir, exist_ok=True)
    P = args.parts
    ports = _free_ports(P + 1)
    ip_config = os.path.join(rundir, "ip_config.txt")
    with open(ip_config, "w") as f:
        for i in range(P):
            f.write(f"127.0.0.1 {ports[i]}\n")
    with open(os.path.join(rundir, "env.json"), "w") as f:
        json.dump(
            {
                "part_config": cfg,
                "ip_config": ip_config,
                "master_port": ports[P],
                "server_ports": ports[:P],
            },
            f,
        )

    passthrough = [
        args.graph,
        "--parts",
        str(P),
        "--method",
        args.method,
        "--batches",
        str(args.batches),
        "--batch-size",
        str(args.batch_size),
        "--fanout",
        args.fanout,
        "--warmup",
        str(args.warmup),
        "--_rundir",
        rundir,
    ]
    if args.omp_threads:
        passthrough += ["--omp-threads", str(args.omp_threads)]
    passthrough += ["--num-samplers", str(args.num_samplers)]
    machines = []

    def kill_all(*_):
        for m in machines:
            _killpg(m, signal.SIGTERM)
        time.sleep(1)
        for m in machines:
            _killpg(m)

    signal.signal(signal.SIGTERM, lambda *a: (kill_all(), sys.exit(143)))
    ok = False
    try:
        for i in range(P):
            cmd = isolation + [sys.executable, HERE] + passthrough + ["--_machine", str(i)]
            if isolation:
                cmd += ["--_hostns", os.readlink("/proc/self/ns/mnt")]
            machines.append(
                subprocess.Popen(
                    cmd,
                    start_new_session=True,
                    preexec_fn=_pdeathsig,
                    stdout=sys.stderr,
                    stderr=sys.stderr,
                )
            )
        deadline = time.time() + args.timeout
        while time.time() < deadline:
            codes = [m.poll() for m in machines]
            if any(c not in (None, 0) for c in codes):
                log(f"machine exit codes {codes}: stopping the others")
                break
            if all(c == 0 for c in codes):
                ok = True
                break
            time.sleep(0.2)
        else:
            log(f"timeout after {args.timeout} s")
    finally:
        kill_all()
    if not ok:
        for name in sorted(os.listdir(rundir)):
            if name.endswith(".log"):
                tail = open(os.path.join(rundir, name), errors="replace").read()[-3000:]
                log(f"---- {name} (tail) ----\n{tail}")
        sys.exit(1)

    res = [json.load(open(os.path.join(rundir, f"client{i}.json"))) for i in range(P)]
    r0 = res[0]
    total = P * args.batches
    out = {
        "system": "distdgl",
        "version": version,
        "parts": P,
        "method": args.method,
        "graph": args.graph,
        "fanout": [int(f) for f in args.fanout.split(",")],
        "batch_size": args.batch_size,
        "batches_per_client": args.batches,
        "batches_per_s_per_machine": [round(r["batches_per_s"], 3) for r in res],
        "batches_per_s_total": round(total / r0["window_s"], 3),
        "input_nodes_per_batch": round(sum(r["input_nodes_per_batch"] for r in res) / P, 1),
        "remote_input_node_fraction": [round(r["remote_input_fraction"], 4) for r in res],
        "remote_feature_bytes_per_batch": round(sum(r["remote_feat_bytes"] for r in res) / total),
        "loopback_bytes_per_batch": round(r0["lo_tx"] / total),
        "loopback_rx_bytes_per_batch": round(r0["lo_rx"] / total),
        "loopback_note": "all loopback traffic of the box during the timed window (barriers and "
        "any other job on the box included), divided by all trainers' batches",
        "tcp_cross_machine_bytes_per_batch": None
        if r0.get("ss_cross") is None
        else round(r0["ss_cross"] / total),
        "tcp_same_machine_bytes_per_batch": None
        if r0.get("ss_same") is None
        else round(r0["ss_same"] / total),
        "partid_per_client": [r["partid"] for r in res],
        "local_seed_fraction": [round(r["local_seed_fraction"], 4) for r in res],
        "seeds_per_client": [r["num_seeds"] for r in res],
        "features_verified": all(r["verified"] for r in res),
        "shm_isolation": bool(isolation),
        "omp_threads_per_trainer": r0["omp_threads"],
        "sampler_processes_per_trainer": args.num_samplers,
        "partition_s": None if psecs is None else round(psecs, 3),
        "partition_reused": partition_reused,
        "seconds": round(r0["window_s"], 4),
    }
    json_out.write(json.dumps(out) + "\n")
    json_out.flush()


# --------------------------------------------------------------------------------------------
# one "machine": private /dev/shm, one server, one trainer
# --------------------------------------------------------------------------------------------
def machine(args):
    i, P, rundir = args._machine, args.parts, args._rundir
    env_info = json.load(open(os.path.join(rundir, "env.json")))
    if args._hostns:
        # only ever mount inside our own mount namespace (unshare), never over the host's /dev/shm
        if os.readlink("/proc/self/ns/mnt") == args._hostns:
            sys.exit(f"machine {i}: not in a private mount namespace; refusing to mount /dev/shm")
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm"],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0 and P > 1:
            sys.exit(f"machine {i}: mount tmpfs on /dev/shm failed: {r.stderr.strip()}")
    ncpu = os.cpu_count() or 1
    omp = args.omp_threads or max(1, ncpu // P // 2)
    common = {
        "DGL_DIST_MODE": "distributed",
        "DGL_NUM_SAMPLER": str(args.num_samplers),
        "DGL_NUM_CLIENT": str(P * (1 + args.num_samplers)),  # trainers and their samplers
        "DGL_CONF_PATH": env_info["part_config"],
        "DGL_IP_CONFIG": env_info["ip_config"],
        "DGL_NUM_SERVER": "1",
        "DGL_GRAPH_FORMAT": "csc",
        "DGL_GROUP_ID": "0",
    }
    senv = dict(os.environ, **common, DGL_ROLE="server", DGL_SERVER_ID=str(i), OMP_NUM_THREADS="1")
    cenv = dict(
        os.environ,
        **common,
        DGL_ROLE="client",
        OMP_NUM_THREADS=str(omp),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(env_info["master_port"]),
        RANK=str(i),
        WORLD_SIZE=str(P),
        LOCAL_RANK="0",
        DISTDGL_MACHINE_ID=str(i),
    )
    base = [
        sys.executable,
        HERE,
        args.graph,
        "--parts",
        str(P),
        "--method",
        args.method,
        "--batches",
        str(args.batches),
        "--batch-size",
        str(args.batch_size),
        "--fanout",
        args.fanout,
        "--warmup",
        str(args.warmup),
        "--num-samplers",
        str(args.num_samplers),
        "--_rundir",
        rundir,
        "--_machine",
        str(i),
    ]
    slog = open(os.path.join(rundir, f"server{i}.log"), "w")
    clog = open(os.path.join(rundir, f"client{i}.log"), "w")
    server = subprocess.Popen(
        base + ["--_role", "server"],
        env=senv,
        stdout=slog,
        stderr=subprocess.STDOUT,
        preexec_fn=_pdeathsig,
    )
    client = subprocess.Popen(
        base + ["--_role", "client"],
        env=cenv,
        stdout=clog,
        stderr=subprocess.STDOUT,
        preexec_fn=_pdeathsig,
    )
    with open(os.path.join(rundir, f"pids{i}.json"), "w") as f:
        json.dump({"server": server.pid, "client": client.pid, "machine": i}, f)
    rc = client.wait()
    if rc != 0:
        server.kill()
        server.wait()
        sys.exit(f"machine {i}: trainer exited with {rc} (see {clog.name})")
    try:  # the servers exit once trainer 0 has sent the shut-down request
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        log(f"machine {i}: server did not exit after the trainers were done; killed")
    sys.exit(0)


# --------------------------------------------------------------------------------------------
# DistDGL processes
# --------------------------------------------------------------------------------------------
def server(args):
    import dgl

    dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])  # runs the server; never returns


def client(args):
    import dgl
    import dgl.distributed.rpc_client as rpc_client
    import numpy as np
    import torch

    mid, P = int(os.environ["DISTDGL_MACHINE_ID"]), args.parts
    # All machines share 127.0.0.1, so DGL's own lookup would make every trainer machine 0.
    rpc_client.get_local_machine_id = lambda server_namebook: mid
    dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])
    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()
    g = dgl.distributed.DistGraph(GRAPH_NAME)
    pb = g.get_partition_book()
    partid = int(pb.partid)
    print(
        f"trainer rank {rank} machine {mid} partid {partid} dgl rank "
        f"{dgl.distributed.rpc.get_rank()} local nodes {g.local_partition.num_nodes()}",
        file=sys.stderr,
        flush=True,
    )
    if partid != mid:
        raise SystemExit(f"trainer {mid} is not co-located with its partition (partid {partid})")
    seeds = dgl.distributed.node_split(g.ndata["train_mask"], pb, force_even=True)
    local_seed_fraction = (
        float((pb.nid2partid(seeds) == partid).float().mean()) if len(seeds) else 0.0
    )
    fanout = [int(f) for f in args.fanout.split(",")][::-1]  # DGL: input layer first
    torch.manual_seed(rank)
    loader = dgl.dataloading.DistNodeDataLoader(
        g,
        seeds,
        dgl.dataloading.NeighborSampler(fanout),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=False,
    )

    def batches():
        while True:
            yield from loader

    it = batches()
    # verify (outside timing) that the features served are the right rows of x.npy
    part_dir = os.path.dirname(os.environ["DGL_CONF_PATH"])
    orig = np.load(os.path.join(part_dir, "orig_nid.npy"), mmap_mode="r")
    x = np.load(os.path.join(args.graph, "x.npy"), mmap_mode="r")
    y = np.load(os.path.join(args.graph, "y.npy"), mmap_mode="r")
    verified = True
    for w in range(max(args.warmup, 1)):
        inp, out, blocks = next(it)
        feat = g.ndata["feat"][inp]
        lab = g.ndata["label"][out]
        if w == 0:
            o = orig[inp.numpy()]
            idx = np.argsort(o)
            verified = bool(np.array_equal(feat.numpy()[idx], x[o[idx]])) and bool(
                np.array_equal(lab.numpy(), y[orig[out.numpy()]])
            )
            if not verified:
                raise SystemExit(f"trainer {mid}: fetched features/labels do not match x.npy/y.npy")
    pids = {}
    if rank == 0:
        for j in range(P):
            pj = json.load(open(os.path.join(args._rundir, f"pids{j}.json")))
            pids[pj["server"]] = j
            pids[pj["client"]] = j
    torch.distributed.barrier()
    if rank == 0:
        ss0, lo0 = ss_snapshot(), lo_bytes()
    torch.distributed.barrier()
    t0 = time.perf_counter()
    inputs = []
    for _ in range(args.batches):
        inp, out, blocks = next(it)
        feat = g.ndata["feat"][inp]
        lab = g.ndata["label"][out]
        inputs.append(inp)
    t1 = time.perf_counter()
    torch.distributed.barrier()
    t2 = time.perf_counter()
    res = {
        "rank": rank,
        "machine": mid,
        "partid": partid,
        "batches_per_s": args.batches / (t1 - t0),
        "seconds": t1 - t0,
        "num_seeds": int(len(seeds)),
        "local_seed_fraction": local_seed_fraction,
        "verified": verified,
        "omp_threads": torch.get_num_threads(),
    }
    if rank == 0:
        lo1, ss1 = lo_bytes(), ss_snapshot()
        res["window_s"] = t2 - t0
        res["lo_tx"], res["lo_rx"] = lo1[0] - lo0[0], lo1[1] - lo0[1]
        split = ss_split(ss0, ss1, pids)
        res["ss_cross"], res["ss_same"] = (None, None) if split is None else split
    cat = torch.cat(inputs)
    remote = int((pb.nid2partid(cat) != partid).sum())
    res["input_nodes_per_batch"] = cat.numel() / args.batches
    res["remote_input_fraction"] = remote / max(cat.numel(), 1)
    res["remote_feat_bytes"] = remote * feat.shape[1] * feat.element_size()
    with open(os.path.join(args._rundir, f"client{mid}.json"), "w") as f:
        json.dump(res, f)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    dgl.distributed.exit_client()  # trainer 0 tells the servers to shut down


def main():
    args = parse_args()
    if args._role == "server":
        server(args)
    elif args._role == "client":
        try:
            client(args)
        except BaseException as e:  # noqa: BLE001
            # DGL's atexit exit_client() would wait forever in a barrier for the other trainers:
            # report and leave at once; the launcher then stops the other machines.
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            os._exit(e.code if isinstance(e, SystemExit) and isinstance(e.code, int) else 1)
    elif args._machine is not None:
        machine(args)
    else:
        launcher(args)


if __name__ == "__main__":
    main()

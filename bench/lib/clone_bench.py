"""Clone benchmark (bench/clone): N copy-on-write clones of one golden image, hcnode beside its
peers in the same run, one table.

RBD (clone v2 of golden@golden, features layering,exclusive-lock,object-map,fast-diff,deep-flatten):
  hcnode ImageService  hcnode-clone-bench: ImageService::clone N times in one connected process
  librbd in-process    python3-rbd RBD.clone N times in one connected process (librbd's floor)
  hcctl image clone    one hcctl process per clone (connect, clone, exit)
  rbd clone            one `rbd clone` process per clone (Ceph's CLI)
Gluster (qcow2 v3 overlay whose backing file is the golden raw image on the volume):
  hcnode ImageService  as above (gfapi)
  hcctl image clone    one process per clone
  qemu-img create      `qemu-img create -f qcow2 -F raw -b gluster://H/V/images/G.raw
                       gluster://H/V/images/cN.qcow2`, one process per clone. Each run opens
                       gfapi connections and pays glfs_fini (~10 s each, machine-notes.md), so it
                       runs --slow-count clones per round and its total is extrapolated (~).

Per-clone times are pooled over rounds (median, p90); "total" is the median over rounds of the
wall time for all N clones (process peers: the sum of their process wall times). Peers rotate
order from round to round. Every clone is removed after its peer's turn (hcnode's remove, not
timed except for hcnode ImageService, whose removal time is reported below the table).

Part 2, qcow2 overhead (local dir pool "file" and Gluster): the probe guest's mode=io in
hcnode-vmm on an `hcctl image clone` (qcow2 overlay of a golden raw image) vs a raw image of the
same pool, queues=1, 4k QD16: randwrite on fresh images (unallocated clusters), randwrite and
randread after a full write pass (allocated). Goal: allocated qcow2 >= 0.9 of raw. Its rows are
appended to the same table (see the comment above qcow2_overhead's helpers).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
import time

RBD_FEATURES = 1 | 4 | 8 | 16 | 32  # layering, exclusive-lock, object-map, fast-diff, deep-flatten

PY_LIBRBD = r"""
import json, sys, time, rados, rbd
conf, cid, keyring, pool, golden, prefix, count = sys.argv[1:8]
t0 = time.monotonic()
cluster = rados.Rados(conffile=conf, rados_id=cid, conf={"keyring": keyring})
cluster.connect()
io = cluster.open_ioctx(pool)
connect_ms = (time.monotonic() - t0) * 1e3
r = rbd.RBD()
ms, errors = [], []
t_all = time.monotonic()
for i in range(int(count)):
    t = time.monotonic()
    try:
        r.clone(io, golden, "golden", io, f"{prefix}-{i}", features=int(sys.argv[8]))
        ms.append((time.monotonic() - t) * 1e3)
    except Exception as e:
        errors.append(str(e))
total = (time.monotonic() - t_all) * 1e3
print(json.dumps({"connect_ms": connect_ms, "clone_ms": ms, "total_ms": total, "errors": errors}))
io.close()
cluster.shutdown()
"""


def log(msg):
    print(f"bench/clone: {msg}", file=sys.stderr, flush=True)


def run(cmd, env, timeout=300, check=True, stdin=None):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, stdin=stdin)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-600:]}")
    return p


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


class Bench:
    def __init__(self, a, env):
        self.a, self.env = a, env
        self.tag = f"clonebench-{os.getpid()}"
        self.rbd_pool = env.get("HCNODE_RBD_POOL", "rbd")
        self.ghost = env.get("HCNODE_GLUSTER_HOST", "127.0.0.2")
        self.gvol = env.get("HCNODE_GLUSTER_VOLUME", "vmstore")

    # --- helpers -----------------------------------------------------------------------------
    def hcctl(self, *args, check=True):
        return run([self.a.hcctl, "--no-progress", *args], self.env, check=check)

    def remove_clones(self, pool, prefix, count):
        """hcnode's in-process removal of PREFIX-0..count-1 (missing ones are fine)."""
        p = run([self.a.clone_bench, "--remove", f"{pool}/{prefix}", "--count", str(count)], self.env,
                timeout=1800, check=False)
        if p.returncode != 0:
            log(f"clean-up of {pool}/{prefix}-* reported errors: {p.stdout.strip()[-400:]} {p.stderr.strip()[-400:]}")

    def golden(self, pool):
        return f"{pool}/{self.tag}-golden"

    def setup(self, pool):
        g = self.golden(pool)
        log(f"{pool}: golden image {g} ({self.a.size}, sparse) marked golden")
        self.hcctl("image", "create", g, "--size", self.a.size)
        self.hcctl("image", "golden", "mark", g)

    def teardown(self, pool):
        p = self.hcctl("image", "rm", self.golden(pool), check=False)
        if p.returncode != 0:
            log(f"clean-up of {self.golden(pool)} failed: {p.stderr.strip()}")

    # --- peers: each returns {"ms": [per-clone ms], "total": ms, "extrapolated": bool} ------
    def in_process_hcnode(self, pool, prefix, n):
        p = run([self.a.clone_bench, "--source", self.golden(pool), "--prefix", prefix, "--count", str(n)],
                self.env, timeout=1800, check=False)
        line = next((l for l in p.stdout.splitlines() if l.startswith("{")), None)
        if line is None:
            raise RuntimeError(f"hcnode-clone-bench failed ({p.returncode}): {p.stderr.strip()[-600:]}")
        j = json.loads(line)
        if j["errors"]:
            log(f"hcnode-clone-bench errors: {j['errors'][:3]}")
        return {"ms": j["clone_ms"], "total": j["total_ms"], "remove_ms": j["remove_ms"],
                "info_ms": j.get("info_ms", []), "connect_ms": j["connect_ms"], "ok": len(j["clone_ms"])}

    def in_process_librbd(self, pool, prefix, n):
        rp = self.rbd_pool
        p = run(["/usr/bin/python3", "-c", PY_LIBRBD, self.env["HCNODE_CEPH_CONF"], self.env.get("HCNODE_CEPH_ID", "hcnode"),
                 self.env["HCNODE_CEPH_KEYRING"], rp, f"{self.tag}-golden", prefix, str(n), str(RBD_FEATURES)],
                self.env, timeout=1800, check=False)
        line = next((l for l in p.stdout.splitlines() if l.startswith("{")), None)
        if line is None:
            raise RuntimeError(f"python3-rbd clone failed ({p.returncode}): {p.stderr.strip()[-600:]}")
        j = json.loads(line)
        if j["errors"]:
            log(f"python3-rbd errors: {j['errors'][:3]}")
        return {"ms": j["clone_ms"], "total": j["total_ms"], "connect_ms": j["connect_ms"], "ok": len(j["clone_ms"])}

    def per_process(self, make_cmd, n, extrapolate_to=None):
        ms, failures = [], 0
        for i in range(n):
            cmd = make_cmd(i)
            t = time.monotonic()
            p = run(cmd, self.env, timeout=600, check=False, stdin=subprocess.DEVNULL)
            dt = (time.monotonic() - t) * 1e3
            if p.returncode == 0:
                ms.append(dt)
            else:
                failures += 1
                if failures <= 3:
                    log(f"{cmd[0]} failed ({p.returncode}): {p.stderr.strip()[-300:]}")
        total = sum(ms)
        extrapolated = extrapolate_to is not None and extrapolate_to != n
        if extrapolated and ms:
            total = statistics.median(ms) * extrapolate_to
        return {"ms": ms, "total": total, "extrapolated": extrapolated, "ok": len(ms)}

    def hcctl_clone(self, pool, prefix, n):
        g = self.golden(pool)
        return self.per_process(lambda i: [self.a.hcctl, "image", "clone", g, f"{pool}/{prefix}-{i}"], n)

    def rbd_cli(self, pool, prefix, n):
        rp = self.rbd_pool
        base = ["rbd", "--conf", self.env["HCNODE_CEPH_CONF"], "--id", self.env.get("HCNODE_CEPH_ID", "hcnode"),
                "--keyring", self.env["HCNODE_CEPH_KEYRING"]]
        return self.per_process(
            lambda i: base + ["clone", "--rbd-default-clone-format", "2", f"{rp}/{self.tag}-golden@golden",
                              f"{rp}/{prefix}-{i}"], n)

    def qemu_img(self, pool, prefix, n):
        back = f"gluster://{self.ghost}/{self.gvol}/images/{self.tag}-golden.raw"
        m = min(n, self.a.slow_count)
        return self.per_process(
            lambda i: ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", back,
                       f"gluster://{self.ghost}/{self.gvol}/images/{prefix}-{i}.qcow2"], m, extrapolate_to=n)


# name, backend pool, method, hcnode row?, compared with (peer name)
PEERS = {
    "rbd": [
        ("hcnode ImageService (1 process)", "in_process_hcnode", "librbd python3-rbd (1 process)"),
        ("librbd python3-rbd (1 process)", "in_process_librbd", None),
        ("hcctl image clone (process/clone)", "hcctl_clone", "rbd clone CLI (process/clone)"),
        ("rbd clone CLI (process/clone)", "rbd_cli", None),
    ],
    "gluster": [
        ("hcnode ImageService (1 process)", "in_process_hcnode", "qemu-img create -b gluster:// (process/clone)"),
        ("hcctl image clone (process/clone)", "hcctl_clone", "qemu-img create -b gluster:// (process/clone)"),
        ("qemu-img create -b gluster:// (process/clone)", "qemu_img", None),
    ],
}


def bench_pool(b, pool):
    peers = PEERS[pool]
    res = {name: [] for name, _, _ in peers}
    b.setup(pool)
    try:
        for r in range(b.a.rounds):
            k = r % len(peers)
            for idx, (name, method, _) in enumerate(peers[k:] + peers[:k]):
                prefix = f"{b.tag}-r{r}p{idx}"
                t0 = time.monotonic()
                try:
                    v = getattr(b, method)(pool, prefix, b.a.count)
                except Exception as e:  # noqa: BLE001 - one failing peer must not hide the table
                    log(f"{pool} {name}: {e}")
                    v = None
                finally:
                    if method != "in_process_hcnode":
                        b.remove_clones(pool, prefix, b.a.count)
                res[name].append(v)
                if v:
                    log(f"{pool} round {r + 1}/{b.a.rounds} {name:<46} {v['ok']} clones, median "
                        f"{fmt(pct(v['ms'], 0.5))} ms, total {v['total'] / 1e3:.2f} s "
                        f"(turn with clean-up {time.monotonic() - t0:.1f} s)")
    finally:
        b.teardown(pool)
    return res


def row_stats(runs):
    runs = [x for x in runs if x]
    if not runs:
        return None
    ms = [m for x in runs for m in x["ms"]]
    return {
        "clones": sum(x["ok"] for x in runs),
        "total": statistics.median(x["total"] for x in runs) / 1e3,
        "p50": pct(ms, 0.5), "p90": pct(ms, 0.9),
        "extrapolated": any(x.get("extrapolated") for x in runs),
        "remove": pct([m for x in runs for m in x.get("remove_ms", [])], 0.5),
        "info": pct([m for x in runs for m in x.get("info_ms", [])], 0.5),
        "connect": pct([x["connect_ms"] for x in runs if "connect_ms" in x], 0.5),
    }


W_NAME = 46


def row(backend, name, c1, c2, c3, c4, ratio, vs):
    return (f"{backend:<8} | {name:<{W_NAME}} | {c1:>6} | {c2:>8} | {c3:>9} | {c4:>8} | {ratio:>11} | {vs}").rstrip()


def q2_goal(q2):
    """Allocated qcow2 >= 0.9 of raw, per backend and workload."""
    parts, ok_all = [], True
    for kind, r in q2.items():
        if not r:
            parts.append(f"{kind}: FAILED")
            ok_all = False
            continue
        got = []
        for w in ("alloc-w", "alloc-r"):
            q, raw = q2_med(r["res"][(w, "qcow2")], "iops"), q2_med(r["res"][(w, "raw")], "iops")
            if q and raw:
                got.append(f"{'randwrite' if w == 'alloc-w' else 'randread'} {q / raw:.2f}")
                ok_all &= q / raw >= 0.9
            else:
                got.append(f"{w} -")
                ok_all = False
        parts.append(f"{kind}: " + ", ".join(got))
    return "; ".join(parts) + (": MEETS the goal" if ok_all else ": MISSES the goal")


def print_table(a, results, q2):
    print()
    if results:
        print(f"part 1: {a.count} clones of one golden image ({a.size}), {a.rounds} round(s), peers alternating; "
              f"per-clone times pooled over rounds, total = median over rounds")
    if q2:
        print(f"part 2: qcow2 overhead: probe guest mode=io in hcnode-vmm, 4 KiB, QD{a.q2_depth}, queues=1, "
              f"cache=none, region {a.q2_region >> 20} MiB, on a qcow2 clone vs a raw image of the same pool; "
              f"{a.q2_rounds} round(s) x {a.q2_seconds} s, raw/qcow2 alternating, medians over rounds")
    if results:
        goal = results.get("rbd", {}).get(PEERS["rbd"][0][0])
        verdict = ""
        if goal:
            s = row_stats(goal)
            if s and s["p50"] is not None:
                ok = s["p50"] <= 50 and s["total"] <= 5
                verdict = (f" -> hcnode ImageService: {s['p50']:.1f} ms, {s['total']:.2f} s: "
                           f"{'MEETS' if ok else 'MISSES'} the goal")
        print(f"goal: <= 50 ms per clone on RBD (<= 5 s for 100){verdict}")
    if q2:
        print(f"goal: allocated qcow2 >= 0.9 of raw (IOPS) -> {q2_goal(q2)}")
    width = len(row("backend", "peer", "clones", "total s", "median ms", "p90 ms", "hcnode/peer", "vs" + " " * 40))
    if results:
        print(row("backend", "peer", "clones", "total s", "median ms", "p90 ms", "hcnode/peer", "vs"))
        print("-" * width)
    notes = []
    for pool, res in results.items():
        stats = {name: row_stats(runs) for name, runs in res.items()}
        for name, _, peer in PEERS[pool]:
            s = stats.get(name)
            if s is None:
                print(row(pool, name, "-", "-", "-", "-", "", "FAILED"))
                continue
            ratio, vs = "", ""
            if peer and stats.get(peer) and stats[peer]["p50"]:
                ratio = f"{s['p50'] / stats[peer]['p50']:.3g}"
                vs = peer.split(" (")[0]
            total = ("~" if s["extrapolated"] else "") + f"{s['total']:.2f}"
            print(row(pool, name, s["clones"], total, fmt(s["p50"]), fmt(s["p90"]), ratio, vs))
            if s["remove"] is not None:
                notes.append(f"{pool}: hcnode ImageService: connect before the first clone {fmt(s['connect'], '.0f')} ms "
                             f"(not in the total); info() of a fresh clone {fmt(s['info'])} ms (clone() returns one, "
                             f"so it is inside each clone's time); remove {s['remove']:.1f} ms per clone (median)")
            elif s["connect"] is not None:
                notes.append(f"{pool}: {name}: connect {fmt(s['connect'], '.0f')} ms (not in the total)")
    if q2:
        if results:
            print("-" * width)
        print(row("backend", f"qcow2 overhead: probe io 4k QD{a.q2_depth}, 1 queue", "runs", "IOPS", "p50 us",
                  "p99 us", "qcow2/raw", "vs"))
        print("-" * width)
    q2_notes = []
    for kind, r in (q2 or {}).items():
        if not r:
            print(row(kind, "qcow2 overhead", "-", "-", "-", "-", "", "FAILED"))
            continue
        res = r["res"]
        for w, rw, wname in QCOW2_WORKLOADS:
            for peer, pname in QCOW2_PEERS:
                runs = [x for x in res[(w, peer)] if x]
                iops = q2_med(runs, "iops")
                ratio, vs = "", ""
                raw_iops = q2_med(res[(w, "raw")], "iops")
                if peer == "qcow2" and iops and raw_iops:
                    ratio, vs = f"{iops / raw_iops:.2f}", "raw"
                print(row(kind, f"{pname}: 4k {wname}", len(runs), fmt(iops, ".0f"), fmt(q2_med(runs, "p50"), ".0f"),
                          fmt(q2_med(runs, "p99"), ".0f"), ratio, vs if runs else "FAILED"))
        alloc = r["extra"]["alloc"]
        if alloc:
            n_alloc, n_ops = sum(x for x, _ in alloc), sum(y for _, y in alloc)
            q2_notes.append(f"{kind}: unallocated pass: {n_alloc} of {n_ops} qcow2 writes ({100 * n_alloc / max(1, n_ops):.0f} %) "
                            f"went to a 64 KiB cluster not written before (allocation + copy of the rest of the cluster "
                            f"from the backing image); the others hit clusters the same pass had allocated")
        pf = r["extra"]["prefill"]
        cpu = "; ".join(
            f"{wname} {fmt(q2_med(res[(w, 'raw')], 'cpu'), '.1f')}/{fmt(q2_med(res[(w, 'qcow2')], 'cpu'), '.1f')}"
            for w, _, wname in QCOW2_WORKLOADS)
        q2_notes.append(f"{kind}: VMM CPU us/IO (threads other than the vCPU) raw/qcow2: {cpu}; prefill (write-verify "
                        f"1 MiB x {a.q2_region >> 20} MiB, QD4) raw {fmt(pf.get('raw'))} s, qcow2 {fmt(pf.get('qcow2'))} s")
    if results:
        print("hcnode/peer = ratio of per-clone medians (below 1: hcnode faster). Process peers include process "
              "start, cluster connect and exit.")
    if q2:
        print("qcow2/raw = ratio of IOPS medians (above 0.9 once allocated: the goal). Latency is the probe's (TSC, "
              "submit -> used ring; buckets up to 6% high). 'unallocated' runs on a fresh clone and a fresh sparse raw "
              "image each round; 'allocated' on the last pair after it was fully written.")
    if any(r.get("extrapolated") for res in results.values() for runs in res.values() for r in runs if r):
        print(f"~ = extrapolated: qemu-img ran {a.slow_count} clone(s) per round (each process waits out "
              f"glfs_fini, ~10 s per gfapi connection), total = median x {a.count}.")
    for n in notes + q2_notes:
        print(n)
    errs = sum(x.get("errors", 0) for r in (q2 or {}).values() if r for runs in r["res"].values() for x in runs if x)
    if errs:
        print(f"WARNING: {errs} qcow2-overhead requests completed with an error status")
    sys.stdout.flush()


# --- Part 2: qcow2 overhead ---------------------------------------------------------------------
# The probe guest's mode=io (tests/guest/blk_modes.cpp) in hcnode-vmm, on a clone of a golden raw
# image (`hcctl image clone`: a qcow2 v3 overlay) and on a plain raw image (`hcctl image create`)
# of the same pool, one queue each (a qcow2 disk has one), cache=none, same depth. Backends: a
# local directory pool (file) and the Gluster pool; RBD does not host qcow2.
#   unallocated  4k randwrite on a FRESH clone / FRESH sparse raw image (made per round): a write
#                to a cluster not written before allocates it (and copies the rest of the cluster
#                from the backing image); the share of writes that did is in the notes
#   allocated    the last round's pair after a 1 MiB sequential write-verify pass over the whole
#                region, then 4k randwrite and randread over the same region
# raw and qcow2 alternate (order rotated per round and workload); medians over rounds.
QCOW2_CLUSTER = 64 << 10  # hcnode's qcow2 clusters (kDefaultClusterBits, blockdev/qcow2/qcow2_format.hpp)
QCOW2_BACKENDS = [("file", "local"), ("gluster", "gluster")]  # (backend shown, pool)
QCOW2_WORKLOADS = [  # key, rw, name
    ("unalloc", "randwrite", "randwrite, unallocated"),
    ("alloc-w", "randwrite", "randwrite, allocated"),
    ("alloc-r", "randread", "randread, allocated"),
]
QCOW2_PEERS = [("qcow2", "qcow2 clone"), ("raw", "raw")]
M64 = (1 << 64) - 1


def parse_size(text):
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1] if t and t[-1] in units else ""
    return int(t[: len(t) - len(unit)]) * units[unit]


def probe_mix(z):
    """tests/guest/pattern.hpp mix (splitmix64's finalizer)."""
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def allocating_writes(ops, nblocks, bs, seed=1):
    """Distinct qcow2 clusters among the first `ops` requests of the probe's random sequence
    (mode=io: block = mix(seed ^ n * golden) % nblocks): the writes that allocated a cluster."""
    per = QCOW2_CLUSTER // bs if bs < QCOW2_CLUSTER else 1
    return len({probe_mix(seed ^ ((n * 0x9E3779B97F4A7C15) & M64)) % nblocks // per for n in range(ops)})


def probe_vm(a, env, uri, fmt_, cmdline, timeout):
    cmd = [a.vmm, "--kernel", a.probe, "--memory", "128M", "--vcpus", "1", "--serial", "stdout",
           "--cmdline", cmdline, "--log-level", "warn", "--debug-exit",
           "--disk", f"uri={uri},format={fmt_},queues=1,cache=none"]
    return cmd, timeout


def io_run(a, env, uri, fmt_, rw):
    """One VM, one mode=io pass. VMM CPU is sampled (/proc/PID/task/*/schedstat) when the probe
    starts its block setup and when it prints its io line, as bench/blk does."""
    from blk_bench import cpu_window, task_cpu  # bench/lib
    cmdline = f"mode=io rw={rw} bs=4096 depth={a.q2_depth} seconds={a.q2_seconds} size={a.q2_region}"
    cmd, timeout = probe_vm(a, env, uri, fmt_, cmdline, a.q2_seconds * 10 + 120)
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    err = []
    threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True).start()
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    start = end = line_io = None
    try:
        for raw in p.stdout:
            line = raw.decode(errors="replace")
            if start is None and "probe: blk_setup" in line:
                start = task_cpu(p.pid)
            elif line.startswith("probe: io "):
                end, line_io = task_cpu(p.pid), line
    finally:
        killer.cancel()
        rc = p.wait()
    if line_io is None or start is None:
        log(f"VM run failed (rc {rc}) on {uri}: {(err[0] if err else b'')[-400:]!r}")
        return None
    kv = dict(re.findall(r"(\w+)=(\S+)", line_io))
    ops = int(kv["ops"])
    _, other = cpu_window(start, end, lambda c: c.startswith("vcpu"))
    return {"iops": float(kv["iops"]), "p50": float(kv["lat_p50_us"]), "p99": float(kv["lat_p99_us"]),
            "ops": ops, "cpu": other * 1e6 / max(1, ops), "errors": int(kv["errors"])}


def prefill(a, env, uri, fmt_):
    """1 MiB sequential writes over the whole region, then read back and checked (write-verify)."""
    cmdline = f"mode=write-verify offset=0 bytes={a.q2_region} bs=1048576 depth=4 seed=7"
    cmd, timeout = probe_vm(a, env, uri, fmt_, cmdline, 1800)
    t = time.monotonic()
    p = run(cmd, env, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    line = next((l for l in p.stdout.splitlines() if l.startswith("probe: write_verify ")), None)
    if line is None:
        raise RuntimeError(f"prefill of {uri} failed ({p.returncode}): {(p.stdout + p.stderr).strip()[-600:]}")
    kv = dict(kw.split("=", 1) for kw in line.split()[2:] if "=" in kw)
    bad = int(kv["mismatches"]) + int(kv["write_errors"]) + int(kv["read_errors"])
    if bad:
        raise RuntimeError(f"prefill of {uri}: {line}")
    return time.monotonic() - t


class Qcow2Overhead:
    def __init__(self, a, b):
        self.a, self.b = a, b
        self.images = []  # created, removed in reverse order (clones before their golden image)

    def info_uri(self, image):
        p = self.b.hcctl("-o", "json", "image", "info", image)
        return json.loads(p.stdout)["uri"]

    def make(self, *args):
        self.b.hcctl("image", *args)
        image = args[-1] if args[0] == "clone" else args[1]
        self.images.append(image)
        return image

    def remove(self, image):
        p = self.b.hcctl("image", "rm", image, check=False)
        if p.returncode != 0:
            log(f"clean-up of {image} failed: {p.stderr.strip()}")
        if image in self.images:
            self.images.remove(image)

    def backend(self, kind, pool):
        a, b = self.a, self.b
        tag = f"{b.tag}-q2"
        res = {(w, peer): [] for w, _, _ in QCOW2_WORKLOADS for peer, _ in QCOW2_PEERS}
        extra = {"alloc": [], "prefill": {}}
        nblocks = a.q2_region // 4096
        golden = self.make("create", f"{pool}/{tag}-golden", "--size", str(a.q2_size))
        b.hcctl("image", "golden", "mark", golden)
        log(f"{kind}: qcow2 overhead on pool {pool}: golden {golden} ({a.q2_size} B, sparse), "
            f"{a.q2_rounds} round(s) x {a.q2_seconds} s, QD{a.q2_depth}, region {a.q2_region} B")
        try:
            pair = {}
            for r in range(a.q2_rounds):
                for image in pair.values():
                    self.remove(image)
                pair = {"raw": self.make("create", f"{pool}/{tag}-raw{r}", "--size", str(a.q2_size)),
                        "qcow2": self.make("clone", golden, f"{pool}/{tag}-clone{r}")}
                uris = {k: self.info_uri(v) for k, v in pair.items()}
                order = QCOW2_PEERS[r % 2:] + QCOW2_PEERS[:r % 2]
                for peer, _ in order:
                    v = io_run(a, b.env, uris[peer], peer, "randwrite")
                    res[("unalloc", peer)].append(v)
                    if v and peer == "qcow2":
                        extra["alloc"].append((allocating_writes(v["ops"], nblocks, 4096), v["ops"]))
                    self.log_run(kind, r, "unalloc", peer, v)
            for peer in ("raw", "qcow2"):
                extra["prefill"][peer] = prefill(a, b.env, uris[peer], peer)
                log(f"{kind}: prefilled {pair[peer]} in {extra['prefill'][peer]:.1f} s (write-verify, 1 MiB)")
            for r in range(a.q2_rounds):
                for wi, w in enumerate(("alloc-w", "alloc-r")):
                    k = (r + wi) % 2
                    for peer, _ in QCOW2_PEERS[k:] + QCOW2_PEERS[:k]:
                        rw = "randwrite" if w == "alloc-w" else "randread"
                        v = io_run(a, b.env, uris[peer], peer, rw)
                        res[(w, peer)].append(v)
                        self.log_run(kind, r, w, peer, v)
        finally:
            for image in reversed(list(self.images)):
                self.remove(image)
        return {"res": res, "extra": extra}

    def log_run(self, kind, r, w, peer, v):
        log(f"{kind} round {r + 1}/{self.a.q2_rounds} {w:<8} {peer:<5} "
            + ("FAILED" if v is None else " ".join(f"{k}={x:.1f}" for k, x in v.items())))


def qcow2_overhead(a, b, kinds):
    """Part 2: {backend: {"res": {(workload, peer): [run or None]}, "extra": {...}}}."""
    q = Qcow2Overhead(a, b)
    out = {}
    for kind, pool in QCOW2_BACKENDS:
        if kind not in kinds:
            continue
        try:
            out[kind] = q.backend(kind, pool)
        except Exception as e:  # noqa: BLE001 - one failing backend must not hide the table
            log(f"{kind}: qcow2 overhead failed: {e}")
            out[kind] = None
    return out


def q2_med(runs, key):
    v = [x[key] for x in runs if x and x.get(key) is not None]
    return statistics.median(v) if v else None

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hcctl", required=True)
    ap.add_argument("--clone-bench", required=True)
    ap.add_argument("--vmm")
    ap.add_argument("--probe")
    ap.add_argument("--backend", default="all", choices=["rbd", "gluster", "file", "all"])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--slow-count", type=int, default=3)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-qcow2", action="store_true", help="skip part 2")
    ap.add_argument("--qcow2-rounds", type=int, default=None, dest="q2_rounds")
    ap.add_argument("--qcow2-seconds", type=int, default=3, dest="q2_seconds")
    ap.add_argument("--qcow2-depth", type=int, default=16, dest="q2_depth")
    ap.add_argument("--smoke", action="store_true",
                    help="every peer and row once: 3 clones, 1 slow clone, 1 s runs on a 64 MiB golden "
                         "image; proves the benchmark runs (deploy/test.sh), measures nothing")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.count, a.slow_count = 1, 20, 2
        a.q2_seconds = 2
    if a.smoke:
        a.rounds, a.count, a.slow_count, a.size = 1, 3, 1, "64M"
        a.q2_seconds = 1
    if a.q2_rounds is None:
        a.q2_rounds = a.rounds
    a.q2_size = parse_size(a.size)
    a.q2_region = min(a.q2_size, 1 << 30) // (1 << 20) * (1 << 20)
    env = dict(os.environ)
    env.pop("HCNODE_STORAGE_CONFIG", None)
    b = Bench(a, env)
    local_dir = None
    kinds = [] if a.no_qcow2 else [k for k, _ in QCOW2_BACKENDS if a.backend in ("all", k)]
    if "file" in kinds:
        # The "local" dir pool of part 2 (storage/pool_config.hpp: HCNODE_LOCAL_POOL_DIR).
        local_dir = tempfile.mkdtemp(prefix=f"{b.tag}-", dir="/var/tmp")
        env["HCNODE_LOCAL_POOL_DIR"] = local_dir
    if kinds and not (a.vmm and a.probe):
        ap.error("--vmm and --probe are needed for part 2 (or --no-qcow2)")
    try:
        results = {}
        pools = [p for p in ("rbd", "gluster") if a.backend in ("all", p)]
        if a.smoke and kinds:
            # Smoke runs measure nothing: part 2 runs beside part 1, whose Gluster qemu-img peer
            # spends ~30 s in glfs_fini alone.
            with ThreadPoolExecutor(1) as pool:
                part2 = pool.submit(qcow2_overhead, a, b, kinds)
                for p in pools:
                    results[p] = bench_pool(b, p)
                q2 = part2.result()
        else:
            for p in pools:
                results[p] = bench_pool(b, p)
            q2 = qcow2_overhead(a, b, kinds) if kinds else None
        print_table(a, results, q2)
        failed = sum(1 for res in results.values() for runs in res.values() for v in runs if v is None)
        failed += sum(1 for r in (q2 or {}).values() if not r)
        failed += sum(1 for r in (q2 or {}).values() if r for runs in r["res"].values() for v in runs if v is None)
        if failed:
            # A measurement that failed is a broken benchmark, not a slow one: say so in the status.
            log(f"{failed} measurement(s) FAILED (see above); the table shows them as '-' / FAILED")
            sys.exit(1)
    finally:
        if local_dir:
            left = os.listdir(local_dir) if os.path.isdir(local_dir) else []
            if left:
                log(f"clean-up: {local_dir} still held {left}; removing it")
            shutil.rmtree(local_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

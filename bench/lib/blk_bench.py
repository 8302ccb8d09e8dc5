"""Block I/O benchmark (bench/blk): hcnode's virtio-blk data path against fio and QEMU, same run.

Per backend (rbd, gluster, file), on a fresh 1 GiB image filled with data first:
  1. device level, no guest: hcnode-blk-device-bench (VirtioBlk + backend, driver in-process)
     vs fio with the backend's native engine (rbd / gfapi_async / io_uring direct = "the limit")
     vs `qemu-img bench` (QEMU's block layer);
  2. end to end: the probe guest's mode=io in hcnode-vmm vs the same probe guest in QEMU
     (virtio-blk-pci + iothread, QEMU's own rbd:/gluster:// drivers, or aio=native on files).
Every peer runs in every round, order rotated per round; the table shows medians over rounds.
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
import time
from concurrent.futures import ThreadPoolExecutor

QEMU_CPU = "host,-arch-capabilities,kvm-pv-ipi=off,kvm-pv-unhalt=off,kvm-pv-sched-yield=off,+invtsc"
SIZE = 1 << 30

# name, rw, bs, qd, end-to-end?
WORKLOADS = [
    ("4k randread QD1", "randread", 4096, 1, True),
    ("4k randread QD32", "randread", 4096, 32, True),
    ("4k randwrite QD1", "randwrite", 4096, 1, True),
    ("4k randwrite QD32", "randwrite", 4096, 32, True),
    ("1M seqwrite QD4", "write", 1 << 20, 4, False),
]
# First-round guesses for qemu-img bench's request count (IOPS), later rounds use measurements.
GUESS = {"rbd": 2000, "gluster": 2000, "file": 20000}


def log(msg):
    print(f"bench/blk: {msg}", file=sys.stderr, flush=True)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec=".0f"):
    return "-" if v is None else format(v, spec)


def run(cmd, env=None, timeout=600, check=True):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-800:]}")
    return p


def child_cpu():
    r = os.times()
    return r.children_user + r.children_system


# ------------------------------------------------------------------------------------------
# Backends: image set-up, the URIs each tool wants, fio engine options, clean-up.
# ------------------------------------------------------------------------------------------
class Backend:
    def __init__(self, kind, tag, env, tmp):
        self.kind, self.env, self.tmp = kind, env, tmp
        self.name = f"blkbench-{tag}"
        if kind == "rbd":
            self.pool = env.get("HCNODE_RBD_POOL", "rbd")
            # Same librbd settings for every peer: cache off (QEMU's cache=none does the same).
            self.conf = os.path.join(tmp, "ceph.conf")
            with open(env["HCNODE_CEPH_CONF"]) as f:
                text = f.read()
            with open(self.conf, "w") as f:
                f.write(text + f"\n[client]\nrbd_cache = false\nkeyring = {env['HCNODE_CEPH_KEYRING']}\n")
            self.fio_env = dict(env, CEPH_CONF=self.conf)
            self.uri = f"rbd:{self.pool}/{self.name}"
            self.qemu_file = f"rbd:{self.pool}/{self.name}:id={env.get('HCNODE_CEPH_ID', 'hcnode')}:conf={self.conf}"
            self.fio_args = ["--ioengine=rbd", f"--clientname={env.get('HCNODE_CEPH_ID', 'hcnode')}",
                             f"--pool={self.pool}", f"--rbdname={self.name}"]
            self.qemu_aio = "threads"
        elif kind == "gluster":
            host, vol = env.get("HCNODE_GLUSTER_HOST", "127.0.0.2"), env.get("HCNODE_GLUSTER_VOLUME", "vmstore")
            self.fio_env = env
            self.uri = f"gluster://{host}/{vol}/{self.name}.img"
            self.qemu_file = self.uri
            self.fio_args = ["--ioengine=gfapi_async", f"--volume={vol}", f"--brick={host}",
                             f"--filename={self.name}.img", "--direct=1"]
            self.qemu_aio = "threads"
        else:
            self.path = f"/var/tmp/{self.name}.img"
            self.fio_env = env
            self.uri = f"file:{self.path}"
            self.qemu_file = self.path
            self.fio_args = ["--ioengine=io_uring", "--direct=1", f"--filename={self.path}"]
            self.qemu_aio = "native"

    def create(self, fill=True):
        if self.kind == "rbd":
            run(["rbd", "create", "--size", f"{SIZE >> 20}M", f"{self.pool}/{self.name}"], env=self.env)
        elif self.kind == "gluster":
            run(["qemu-img", "create", "-q", "-f", "raw", self.uri, f"{SIZE >> 20}M"], env=self.env)
        else:
            with open(self.path, "wb") as f:
                f.truncate(SIZE)
        if not fill:
            return
        # Fill with data so that reads hit allocated extents/objects.
        run(["fio", "--name=fill", "--rw=write", "--bs=1M", "--iodepth=8", f"--size={SIZE}",
             "--output-format=json", *self.fio_args], env=self.fio_env, timeout=900)

    def remove(self):
        try:
            if self.kind == "rbd":
                run(["rbd", "rm", "--no-progress", f"{self.pool}/{self.name}"], env=self.env, check=False)
            elif self.kind == "gluster":
                # fio's gfapi engine unlinks its file with unlink=1 (glfs_unlink: shards too).
                run(["fio", "--name=rm", "--rw=read", "--bs=4k", "--size=4k", "--unlink=1",
                     "--output-format=json", *self.fio_args], env=self.fio_env, check=False)
            else:
                os.remove(self.path)
        except Exception as e:  # noqa: BLE001 - clean-up must not hide the table
            log(f"clean-up of {self.name} failed: {e}")


# ------------------------------------------------------------------------------------------
# Peers
# ------------------------------------------------------------------------------------------
def hcnode_device(a, be, rw, bs, qd):
    cmd = [a.device_bench, "--uri", be.uri, "--cache", "none", "--rw", rw, "--bs", str(bs),
           "--qd", str(qd), "--seconds", str(a.seconds)]
    p = run(cmd, env=be.env, check=False, timeout=a.seconds * 10 + 120)
    line = next((l for l in p.stdout.splitlines() if l.startswith("{")), None)
    if p.returncode != 0 or line is None:
        log(f"hcnode device bench failed ({p.returncode}): {p.stderr.strip()[-500:]}")
        return None
    j = json.loads(line)
    return {"iops": j["iops"], "p50": j["lat_p50_us"], "p99": j["lat_p99_us"], "cpu": j["cpu_us_per_io"],
            "errors": j["errors"]}


def fio_base_cpu(a, be):
    """CPU seconds of a whole fio run that does one request (start-up, connect, open, close)."""
    c0 = child_cpu()
    run(["fio", "--name=base", "--rw=randread", "--bs=4096", "--iodepth=1", f"--size={SIZE}",
         "--number_ios=1", "--output-format=json", *be.fio_args], env=be.fio_env, check=False,
        timeout=a.seconds * 10 + 120)
    return child_cpu() - c0


def fio_peer(a, be, rw, bs, qd, base_cpu):
    cmd = ["fio", "--name=bench", f"--rw={rw}", f"--bs={bs}", f"--iodepth={qd}", f"--size={SIZE}",
           f"--runtime={a.seconds}", "--time_based", "--lat_percentiles=1", "--randrepeat=0",
           "--output-format=json", *be.fio_args]
    c0 = child_cpu()
    p = run(cmd, env=be.fio_env, check=False, timeout=a.seconds * 10 + 120)
    whole = child_cpu() - c0
    try:
        j = json.loads(p.stdout[p.stdout.index("{"):])
    except ValueError:
        log(f"fio failed ({p.returncode}): {p.stderr.strip()[-500:]}")
        return None
    job = j["jobs"][0]
    d = job["write" if "write" in rw else "read"]
    ios = d["total_ios"]
    runtime_s = job["job_runtime"] / 1000.0
    pct = d["lat_ns"].get("percentile", {})
    # fio's usr_cpu/sys_cpu come from getrusage(RUSAGE_THREAD) of the job thread: they miss
    # librbd's and gfapi's own threads. So: whole fio process tree minus a 1-request run.
    job_thread = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * runtime_s * 1e6 / ios if ios else None
    cpu = max(0.0, whole - (base_cpu or 0.0)) * 1e6 / ios if ios else None
    return {"iops": d["iops"], "p50": pct.get("50.000000", 0) / 1000.0, "p99": pct.get("99.000000", 0) / 1000.0,
            "cpu": cpu, "cpu_job_thread": job_thread}


def qemu_img_cmd(be, count, qd, bs, write):
    aio = "io_uring" if be.kind == "file" else "threads"
    cmd = ["qemu-img", "bench", "-f", "raw", "-t", "none", "-i", aio, "-c", str(count), "-d", str(qd),
           "-s", str(bs)]
    if write:
        cmd.append("-w")
    return cmd + [be.qemu_file]


def qemu_img_once(a, be, count, qd, bs, write):
    c0 = child_cpu()
    p = run(qemu_img_cmd(be, count, qd, bs, write), env=be.env, check=False, timeout=a.seconds * 20 + 120)
    cpu = child_cpu() - c0
    m = re.search(r"Run completed in ([0-9.]+) seconds", p.stdout)
    if p.returncode != 0 or not m:
        log(f"qemu-img bench failed ({p.returncode}): {p.stderr.strip()[-500:]}")
        return None, cpu
    return float(m.group(1)), cpu


def qemu_img(a, be, rw, bs, qd, iops_hint, base_cpu):
    """qemu-img bench is sequential (offset += bs, wrapping at the image end): no random mode."""
    count = max(200, int(iops_hint * a.seconds))
    secs, cpu = qemu_img_once(a, be, count, qd, bs, "write" in rw)
    if secs is None:
        return None
    # Whole-process CPU minus a 1-request run's CPU (start-up, rados/gfapi connect, open, close).
    net = max(0.0, cpu - (base_cpu or 0.0))
    return {"iops": count / secs, "cpu": net * 1e6 / max(1, count - 1)}


# --- end to end ----------------------------------------------------------------------------
def task_cpu(pid):
    """{tid: (comm, on-CPU ns)} from /proc/PID/task/*/schedstat (ns resolution)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
            out[tid] = (comm, ns)
        except (OSError, ValueError, IndexError):
            pass
    return out


def cpu_window(before, after, is_vcpu):
    """CPU (s) of the whole process and of its non-vCPU threads between two samples."""
    whole = other = 0
    for tid, (comm, ns) in after.items():
        d = ns - before.get(tid, (comm, 0))[1]
        whole += d
        if not is_vcpu(comm):
            other += d
    return whole / 1e9, other / 1e9


def vm_run(cmd, env, is_vcpu, timeout):
    """Runs a VM with the probe's mode=io; CPU is sampled when the probe starts its io mode and
    again when it prints its result line, so boot and exit are not counted."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    errbuf = []
    threading.Thread(target=lambda: errbuf.append(p.stderr.read()), daemon=True).start()
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    start = res = None
    line_io = None
    try:
        for raw in p.stdout:
            line = raw.decode(errors="replace")
            if start is None and "probe: blk_setup" in line:
                start = task_cpu(p.pid)
            elif line.startswith("probe: io "):
                res = task_cpu(p.pid)
                line_io = line
    finally:
        killer.cancel()
        rc = p.wait()
    if line_io is None or start is None:
        log(f"VM run failed (rc {rc}): {' '.join(cmd[:3])} ... {(errbuf[0] if errbuf else b'')[-400:]!r}")
        return None
    kv = dict(re.findall(r"(\w+)=(\S+)", line_io))
    ops = int(kv["ops"])
    whole, other = cpu_window(start, res, is_vcpu)
    return {"iops": float(kv["iops"]), "p50": float(kv["lat_p50_us"]), "p99": float(kv["lat_p99_us"]),
            "cpu": other * 1e6 / max(1, ops), "cpu_whole": whole * 1e6 / max(1, ops),
            "errors": int(kv["errors"])}


def probe_cmdline(rw, bs, qd, seconds):
    return f"mode=io rw={rw} bs={bs} depth={qd} seconds={seconds} size={SIZE}"


def hcnode_vm(a, be, rw, bs, qd):
    cmd = [a.vmm, "--kernel", a.probe, "--memory", "128M", "--vcpus", "1", "--serial", "stdout",
           "--cmdline", probe_cmdline(rw, bs, qd, a.seconds), "--log-level", "warn", "--debug-exit",
           "--disk", f"uri={be.uri},queues=1,cache=none"]
    return vm_run(cmd, be.env, lambda c: c.startswith("vcpu"), a.seconds * 10 + 120)


def qemu_vm(a, be, rw, bs, qd):
    # debug-threads=on names QEMU's threads ("CPU 0/KVM", "IO io0", "worker"), so the vCPU
    # can be told apart.
    cmd = ["qemu-system-x86_64", "-name", "blkbench,debug-threads=on", "-M", "pc", "-bios", "/usr/share/qemu/qboot.rom", "-enable-kvm",
           "-cpu", QEMU_CPU, "-m", "128M", "-smp", "1", "-nographic", "-nodefaults", "-no-reboot",
           "-serial", "stdio", "-display", "none", "-kernel", a.probe,
           "-append", probe_cmdline(rw, bs, qd, a.seconds),
           "-object", "iothread,id=io0",
           "-drive", f"file={be.qemu_file},if=none,id=d0,format=raw,cache=none,aio={be.qemu_aio}",
           "-device", "virtio-blk-pci,drive=d0,iothread=io0,disable-legacy=on"]
    return vm_run(cmd, be.env, lambda c: c.startswith("CPU ") and c.endswith("/KVM"), a.seconds * 10 + 120)


# ------------------------------------------------------------------------------------------
def bench_backend(a, kind, env):
    tmp = tempfile.mkdtemp(prefix="hcnode-blkbench-")
    be = Backend(kind, f"{os.getpid()}", env, tmp)
    log(f"{kind}: creating and filling {be.uri} ({SIZE >> 20} MiB)")
    t0 = time.monotonic()
    be.create(fill=not a.smoke)  # smoke runs write only: no need to fill
    log(f"{kind}: image ready in {time.monotonic() - t0:.1f} s")
    peers = ["hcnode", "fio", "qemu-img", "hcnode-vm", "qemu-vm"]
    res = {(w[0], p): [] for w in WORKLOADS for p in peers}
    try:
        for r in range(a.rounds):
            if a.smoke:
                # Smoke runs measure nothing: the two baselines run side by side (each gfapi
                # process spends ~10 s in glfs_fini, the wait that dominates a Gluster run).
                with ThreadPoolExecutor(2) as pool:
                    fb = pool.submit(fio_base_cpu, a, be)
                    base = qemu_img_once(a, be, 1, 1, 4096, False)[1]
                    fbase = fb.result()
            else:
                base = qemu_img_once(a, be, 1, 1, 4096, False)[1]
                fbase = fio_base_cpu(a, be)
            for wi, (wname, rw, bs, qd, e2e) in enumerate(WORKLOADS):
                order = [p for p in peers if e2e or not p.endswith("-vm")]
                k = (r + wi) % len(order)
                order = order[k:] + order[:k]

                def measure(p):
                    if p == "hcnode":
                        return hcnode_device(a, be, rw, bs, qd)
                    if p == "fio":
                        return fio_peer(a, be, rw, bs, qd, fbase)
                    if p == "qemu-img":
                        known = [x["iops"] for pp in ("hcnode", "fio", "qemu-img") for x in res[(wname, pp)] if x]
                        hint = statistics.median(known) if known else GUESS[kind] * (1 if bs == 4096 else 0.05)
                        return qemu_img(a, be, rw, bs, qd, hint, base)
                    if p == "hcnode-vm":
                        return hcnode_vm(a, be, rw, bs, qd)
                    return qemu_vm(a, be, rw, bs, qd)

                if a.smoke:
                    # Peers side by side (smoke numbers mean nothing; see --smoke), except that
                    # QEMU's two peers take the image's file lock, so they run one after the other.
                    qemu = [p for p in order if p.startswith("qemu")]
                    rest = [p for p in order if p not in qemu]
                    with ThreadPoolExecutor(len(rest) + 1) as pool:
                        serial = pool.submit(lambda: [measure(p) for p in qemu])
                        done = list(zip(rest, pool.map(measure, rest))) + list(zip(qemu, serial.result()))
                else:
                    done = ((p, measure(p)) for p in order)
                for p, v in done:
                    res[(wname, p)].append(v)
                    log(f"{kind} round {r + 1}/{a.rounds} {wname:<18} {p:<9} "
                        + ("FAILED" if v is None else " ".join(f"{k2}={v2:.1f}" for k2, v2 in v.items())))
    finally:
        be.remove()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def m(res, w, p, key):
    return med([x[key] for x in res[(w, p)] if x and x.get(key) is not None])


def print_tables(a, kind, res):
    hdr = (f"{'workload':<18} | {'hcnode IOPS':>11} | {'fio limit':>9} | {'ratio':>5} | {'qemu-img':>8} | "
           f"{'hcnode p50/p99 us':>17} | {'fio p50/p99 us':>15} | {'CPU us/IO hcnode/fio/qemu-img':>29}")
    print(f"\n[{kind}] device level (no guest): hcnode-blk-device-bench vs fio --ioengine="
          f"{ {'rbd': 'rbd', 'gluster': 'gfapi_async', 'file': 'io_uring --direct=1'}[kind] } vs qemu-img bench; "
          f"medians of {a.rounds} round(s) x {a.seconds} s")
    print("goal: hcnode >= 0.95x fio limit IOPS, and less CPU per I/O than qemu-img")
    print(hdr)
    print("-" * len(hdr))
    for wname, *_ in WORKLOADS:
        h, f, q = m(res, wname, "hcnode", "iops"), m(res, wname, "fio", "iops"), m(res, wname, "qemu-img", "iops")
        ratio = f"{h / f:5.2f}" if h and f else "    -"
        lat_h = f"{fmt(m(res, wname, 'hcnode', 'p50'))}/{fmt(m(res, wname, 'hcnode', 'p99'))}"
        lat_f = f"{fmt(m(res, wname, 'fio', 'p50'))}/{fmt(m(res, wname, 'fio', 'p99'))}"
        cpu = (f"{fmt(m(res, wname, 'hcnode', 'cpu'), '.1f')} / {fmt(m(res, wname, 'fio', 'cpu'), '.1f')} / "
               f"{fmt(m(res, wname, 'qemu-img', 'cpu'), '.1f')}")
        print(f"{wname:<18} | {fmt(h):>11} | {fmt(f):>9} | {ratio:>5} | {fmt(q):>8} | {lat_h:>17} | "
              f"{lat_f:>15} | {cpu:>29}")
    print("hcnode CPU = whole process minus the driver thread; fio and qemu-img CPU = whole process minus a "
          "1-request run of the same tool (start-up, connect, close).\nqemu-img bench has no random mode: its 4k rows are "
          "SEQUENTIAL 4k at the same QD (offset += 4096).")

    hdr = (f"{'workload':<18} | {'hcnode IOPS':>11} | {'QEMU IOPS':>9} | {'ratio':>5} | {'fio limit':>9} | "
           f"{'hc/limit':>8} | {'hcnode p50/p99':>14} | {'QEMU p50/p99':>13} | {'VMM CPU us/IO hcnode/QEMU':>25} | "
           f"{'incl. vCPU':>15}")
    print(f"\n[{kind}] end to end: probe guest mode=io, hcnode-vmm vs QEMU 7.2 (pc+qboot, virtio-blk-pci, "
          f"iothread, cache=none{', aio=native' if kind == 'file' else ', QEMU ' + kind + ' driver'}); "
          f"medians of {a.rounds} round(s) x {a.seconds} s")
    print("goals: hcnode >= 0.90x fio limit at QD32, more IOPS than QEMU at QD32, lower p99 than QEMU at QD1, "
          "less VMM CPU per I/O")
    print(hdr)
    print("-" * len(hdr))
    for wname, _, _, _, e2e in WORKLOADS:
        if not e2e:
            continue
        h, q, f = m(res, wname, "hcnode-vm", "iops"), m(res, wname, "qemu-vm", "iops"), m(res, wname, "fio", "iops")
        lat_h = f"{fmt(m(res, wname, 'hcnode-vm', 'p50'))}/{fmt(m(res, wname, 'hcnode-vm', 'p99'))}"
        lat_q = f"{fmt(m(res, wname, 'qemu-vm', 'p50'))}/{fmt(m(res, wname, 'qemu-vm', 'p99'))}"
        cpu = f"{fmt(m(res, wname, 'hcnode-vm', 'cpu'), '.1f')} / {fmt(m(res, wname, 'qemu-vm', 'cpu'), '.1f')}"
        whole = (f"{fmt(m(res, wname, 'hcnode-vm', 'cpu_whole'), '.0f')} / "
                 f"{fmt(m(res, wname, 'qemu-vm', 'cpu_whole'), '.0f')}")
        print(f"{wname:<18} | {fmt(h):>11} | {fmt(q):>9} | {(f'{h / q:5.2f}' if h and q else '    -'):>5} | "
              f"{fmt(f):>9} | {(f'{h / f:8.2f}' if h and f else '       -'):>8} | {lat_h:>14} | {lat_q:>13} | "
              f"{cpu:>25} | {whole:>15}")
    print("VMM CPU = on-CPU time of every VMM thread except the vCPU (the probe polls, so its vCPU is always busy)"
          " from the probe's start of I/O to its result line, per I/O;\n'incl. vCPU' adds the vCPU thread. "
          "Latency is the probe's (TSC, submit -> used ring; buckets up to 6% high).")
    errs = sum(x.get("errors", 0) for v in res.values() for x in v if x)
    if errs:
        print(f"WARNING: {errs} requests completed with an error status")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--device-bench", required=True)
    ap.add_argument("--backend", default="all", choices=["rbd", "gluster", "file", "all"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true",
                    help="every backend and peer once on one workload, 1 s, 64 MiB images, the "
                         "peers side by side: proves the benchmark runs (deploy/test.sh), measures nothing")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.seconds = 1, 2
    if a.smoke:
        global SIZE, WORKLOADS
        a.rounds, a.seconds = 1, 1
        SIZE = 64 << 20
        WORKLOADS = [w for w in WORKLOADS if w[0] == "4k randwrite QD32"]
    env = dict(os.environ)
    kinds = ["rbd", "gluster", "file"] if a.backend == "all" else [a.backend]
    failed = 0
    for kind in kinds:
        res = bench_backend(a, kind, env)
        print_tables(a, kind, res)
        failed += sum(1 for v in res.values() for x in v if x is None)
    if failed:
        # A measurement that failed is a broken benchmark, not a slow one: say so in the status.
        log(f"{failed} measurement(s) FAILED (see the lines above); the table shows them as '-'")
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Boot-time and memory-overhead benchmark: hcnode-vmm beside QEMU in one run (bench/boot)."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

QEMU_CPU = "host,-arch-capabilities,kvm-pv-ipi=off,kvm-pv-unhalt=off,kvm-pv-sched-yield=off,+invtsc"
BANNER = b"hcnode-probe: banner"


def qemu_cmd(machine, probe, cmdline, mem="128M", kernel=None, initrd=None, drive=None):
    if machine == "microvm":
        m = ["-M", "microvm,x-option-roms=off,isa-serial=on,rtc=off",
             "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    else:
        m = ["-M", "pc", "-bios", "/usr/share/qemu/qboot.rom"]
    cmd = ["qemu-system-x86_64", *m, "-enable-kvm", "-cpu", QEMU_CPU, "-m", mem, "-smp", "1",
           "-nographic", "-nodefaults", "-no-reboot", "-serial", "stdio", "-display", "none",
           "-kernel", kernel or probe, "-append", cmdline]
    if initrd:
        cmd += ["-initrd", initrd]
    if drive:
        # QEMU's own block driver (rbd: -> librbd); microvm has virtio-mmio, pc virtio-pci.
        dev = "virtio-blk-device" if machine == "microvm" else "virtio-blk-pci"
        cmd += ["-drive", f"file={drive},format=raw,if=none,id=disk0", "-device", f"{dev},drive=disk0"]
    return cmd


def hcnode_cmd(vmm, probe, cmdline, mem="128M", kernel=None, initrd=None, vcpus=1, disk=None):
    # --debug-exit: the probe ends the VM through port 0xf4, as on QEMU microvm's isa-debug-exit.
    cmd = [vmm, "--kernel", kernel or probe, "--memory", mem, "--vcpus", str(vcpus),
           "--serial", "stdout", "--cmdline", cmdline, "--log-level", "warn", "--debug-exit"]
    if initrd:
        cmd += ["--initrd", initrd]
    if disk:
        cmd += ["--disk", disk]
    return cmd


class RbdDisk:
    """A fresh 64 MiB RBD image in the dev cluster's pool, as hcnode and QEMU name it."""

    def __init__(self):
        env = os.environ
        if not env.get("HCNODE_CEPH_CONF"):
            raise RuntimeError("no dev cluster environment (bench/boot loads it)")
        self.spec = f"{env.get('HCNODE_RBD_POOL', 'rbd')}/bootbench-{os.getpid()}"
        subprocess.run(["rbd", "create", "--size", "64M", self.spec], check=True, capture_output=True)
        self.hcnode = f"uri=rbd:{self.spec},serial=probe"
        # Same client, keyring and ceph.conf as hcnode; cache left at both VMMs' default
        # (writeback: librbd cache on, writethrough until the first flush).
        self.qemu = (f"rbd:{self.spec}:id={env.get('HCNODE_CEPH_ID', 'hcnode')}"
                     f":conf={env['HCNODE_CEPH_CONF']}:keyring={env['HCNODE_CEPH_KEYRING']}")

    def remove(self):
        subprocess.run(["rbd", "rm", "--no-progress", self.spec], capture_output=True)


def timed_run(cmd, marker, timeout):
    """Runs cmd; returns (seconds to marker line, seconds to exit, exit code)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    t_marker = None
    for line in p.stdout:
        if t_marker is None and marker in line:
            t_marker = time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            p.kill()
            break
    rc = p.wait()
    return t_marker, time.monotonic() - t0, rc


def overhead(cmd, guest_bytes, settle=1.0):
    """RSS of the process minus the resident part of its guest-RAM mapping (KiB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        time.sleep(settle)
        rss = guest = 0
        size_kib = guest_bytes // 1024
        with open(f"/proc/{p.pid}/smaps") as f:
            cur_size = cur_rss = 0
            blocks = []
            for line in f:
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    blocks.append((cur_size, cur_rss))
                    cur_size = cur_rss = 0
                elif line.startswith("Size:"):
                    cur_size = int(line.split()[1])
                elif line.startswith("Rss:"):
                    cur_rss = int(line.split()[1])
            blocks.append((cur_size, cur_rss))
        rss = sum(r for _, r in blocks)
        # Guest RAM: the mapping(s) of at least the guest's size (QEMU may round up/align).
        guest = sum(r for s, r in blocks if s >= size_kib)
        return rss, guest
    finally:
        p.kill()
        p.wait()


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--linux", action="store_true")
    ap.add_argument("--smoke", action="store_true",
                    help="every VMM and row once (deploy/test.sh: proves the benchmark runs)")
    a = ap.parse_args()
    if a.smoke:
        a.runs = 1

    cmdline = "mode=print n=1"
    try:
        rbd = RbdDisk()
    except (RuntimeError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        print(f"bench/boot: cannot make the RBD image for the +rbd rows: {e} {detail.decode().strip()}",
              file=sys.stderr)
        sys.exit(1)
    try:
        failed = run_tables(a, cmdline, rbd)
    finally:
        rbd.remove()
    if failed:
        # A VMM that never printed the banner is a broken benchmark row, not a slow one.
        print(f"bench/boot: {failed} run(s) FAILED (no banner; see above)", file=sys.stderr)
        sys.exit(1)


def run_tables(a, cmdline, rbd):
    variants = [
        ("hcnode-vmm", hcnode_cmd(a.vmm, a.probe, cmdline)),
        ("QEMU microvm", qemu_cmd("microvm", a.probe, cmdline)),
        ("QEMU pc+qboot", qemu_cmd("pc", a.probe, cmdline)),
    ]
    # One RBD disk attached (the guest boots and exits without touching it): the VMM loads its
    # storage library, connects to the cluster and opens the image before the guest runs, and
    # closes it at exit; QEMU with its own rbd driver on the same image. hcnode-vmm without a
    # disk loads no storage library at all (blockdev/rbd/ceph_api.hpp).
    variants += [
        ("hcnode-vmm +rbd", hcnode_cmd(a.vmm, a.probe, cmdline, disk=rbd.hcnode)),
        ("QEMU microvm +rbd", qemu_cmd("microvm", a.probe, cmdline, drive=rbd.qemu)),
        ("QEMU pc+qboot +rbd", qemu_cmd("pc", a.probe, cmdline, drive=rbd.qemu)),
    ]
    results = {name: ([], []) for name, _ in variants}
    failed = 0
    # Interleave the runs so that load changes hit every VMM alike.
    for _ in range(a.runs):
        for name, cmd in variants:
            banner, total, rc = timed_run(cmd, BANNER, 60)
            if banner is None:
                failed += 1
                print(f"bench/boot: {name} printed no banner (exit {rc})", file=sys.stderr)
            results[name][0].append(banner)
            results[name][1].append(total)
    print(f"\nProbe guest boot (PVH ELF, 128 MiB, 1 vCPU), medians of {a.runs} interleaved runs")
    print(f"{'VMM':<18} | {'start->banner ms':>16} | {'start->exit ms':>14} | {'exit vs QEMU microvm':>20}")
    print("-" * 18 + "-+-" + "-" * 16 + "-+-" + "-" * 14 + "-+-" + "-" * 20)
    for name, _ in variants:
        # Rows with a disk against QEMU microvm with the same disk.
        ref = "QEMU microvm +rbd" if name.endswith("+rbd") else "QEMU microvm"
        b, t = med(results[name][0]), med(results[name][1])
        print(f"{name:<18} | {b * 1000:16.1f} | {t * 1000:14.1f} | {t / med(results[ref][1]):19.2f}x")
    print("goal: hcnode-vmm <= 0.50x QEMU; +rbd rows: one RBD disk attached (not touched by the guest),"
          " ratio against QEMU microvm +rbd")

    guest = 128 << 20
    spin = "mode=spin ms=600000"
    print(f"\nVMM memory overhead, 128 MiB / 1 vCPU probe guest spinning at CPL3 (RSS - guest RAM resident)")
    print(f"{'VMM':<18} | {'RSS KiB':>9} | {'guest KiB':>9} | {'overhead KiB':>12} | {'overhead MiB':>12}")
    print("-" * 18 + "-+-" + "-" * 9 + "-+-" + "-" * 9 + "-+-" + "-" * 12 + "-+-" + "-" * 12)
    peers = [("hcnode-vmm", hcnode_cmd(a.vmm, a.probe, spin)),
             ("QEMU microvm", qemu_cmd("microvm", a.probe, spin)),
             ("hcnode-vmm +rbd", hcnode_cmd(a.vmm, a.probe, spin, disk=rbd.hcnode)),
             ("QEMU microvm +rbd", qemu_cmd("microvm", a.probe, spin, drive=rbd.qemu))]
    for name, cmd in peers:
        samples = [overhead(cmd, guest) for _ in range(1 if a.smoke else 3)]
        rss = med([s[0] for s in samples])
        g = med([s[1] for s in samples])
        print(f"{name:<18} | {rss:9.0f} | {g:9.0f} | {rss - g:12.0f} | {(rss - g) / 1024:12.2f}")
    print("goal: hcnode-vmm <= 5 MiB (without a disk)")

    if a.linux:
        kernel = subprocess.run([f"{a.repo}/deploy/guest/kernel.sh", "--pvh"], capture_output=True, text=True, check=True).stdout.split()[-1]
        kcmd = subprocess.run([f"{a.repo}/deploy/guest/kernel.sh", "--cmdline"], capture_output=True, text=True, check=True).stdout.strip()
        initrd = subprocess.run([f"{a.repo}/deploy/guest/build-initramfs.sh"], capture_output=True, text=True, check=True).stdout.split()[-1]
        print(f"\nLinux (PVH vmlinux + initramfs, 256 MiB, 1 vCPU) to HCNODE-GUEST-READY, one run each")
        print(f"{'VMM':<16} | {'start->ready s':>14} | {'start->exit s':>13}")
        print("-" * 16 + "-+-" + "-" * 14 + "-+-" + "-" * 13)
        for name, cmd in [("hcnode-vmm", hcnode_cmd(a.vmm, a.probe, kcmd, "256M", kernel, initrd)),
                          ("QEMU pc+qboot", qemu_cmd("pc", a.probe, kcmd, "256M", kernel, initrd))]:
            ready, total, rc = timed_run(cmd, b"HCNODE-GUEST-READY", 900)
            failed += ready is None
            print(f"{name:<16} | {ready if ready else float('nan'):14.1f} | {total:13.1f}")
        print("(reported only: on PVM hosts guest kernel code is emulated)")
    return failed


if __name__ == "__main__":
    main()

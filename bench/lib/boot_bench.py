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


def qemu_cmd(machine, probe, cmdline, mem="128M", kernel=None, initrd=None):
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
    return cmd


def hcnode_cmd(vmm, probe, cmdline, mem="128M", kernel=None, initrd=None, vcpus=1):
    # --debug-exit: the probe ends the VM through port 0xf4, as on QEMU microvm's isa-debug-exit.
    cmd = [vmm, "--kernel", kernel or probe, "--memory", mem, "--vcpus", str(vcpus),
           "--serial", "stdout", "--cmdline", cmdline, "--log-level", "warn", "--debug-exit"]
    if initrd:
        cmd += ["--initrd", initrd]
    return cmd


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
    rows = []
    variants = [
        ("hcnode-vmm", hcnode_cmd(a.vmm, a.probe, cmdline)),
        ("QEMU microvm", qemu_cmd("microvm", a.probe, cmdline)),
        ("QEMU pc+qboot", qemu_cmd("pc", a.probe, cmdline)),
    ]
    results = {name: ([], []) for name, _ in variants}
    # Interleave the runs so that load changes hit every VMM alike.
    for _ in range(a.runs):
        for name, cmd in variants:
            banner, total, rc = timed_run(cmd, BANNER, 60)
            if banner is None:
                print(f"bench/boot: {name} printed no banner (exit {rc})", file=sys.stderr)
            results[name][0].append(banner)
            results[name][1].append(total)
    qemu_exit = med(results["QEMU microvm"][1])
    print(f"\nProbe guest boot (PVH ELF, 128 MiB, 1 vCPU), medians of {a.runs} interleaved runs")
    print(f"{'VMM':<16} | {'start->banner ms':>16} | {'start->exit ms':>14} | {'exit vs QEMU microvm':>20}")
    print("-" * 16 + "-+-" + "-" * 16 + "-+-" + "-" * 14 + "-+-" + "-" * 20)
    for name, _ in variants:
        b, t = med(results[name][0]), med(results[name][1])
        print(f"{name:<16} | {b * 1000:16.1f} | {t * 1000:14.1f} | {t / qemu_exit:19.2f}x")
    print("goal: hcnode-vmm <= 0.50x QEMU")

    guest = 128 << 20
    spin = "mode=spin ms=600000"
    print(f"\nVMM memory overhead, 128 MiB / 1 vCPU probe guest spinning at CPL3 (RSS - guest RAM resident)")
    print(f"{'VMM':<16} | {'RSS KiB':>9} | {'guest KiB':>9} | {'overhead KiB':>12} | {'overhead MiB':>12}")
    print("-" * 16 + "-+-" + "-" * 9 + "-+-" + "-" * 9 + "-+-" + "-" * 12 + "-+-" + "-" * 12)
    for name, cmd in [("hcnode-vmm", hcnode_cmd(a.vmm, a.probe, spin)),
                      ("QEMU microvm", qemu_cmd("microvm", a.probe, spin))]:
        samples = [overhead(cmd, guest) for _ in range(3)]
        rss = med([s[0] for s in samples])
        g = med([s[1] for s in samples])
        print(f"{name:<16} | {rss:9.0f} | {g:9.0f} | {rss - g:12.0f} | {(rss - g) / 1024:12.2f}")
    print("goal: hcnode-vmm <= 5 MiB")

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
            print(f"{name:<16} | {ready if ready else float('nan'):14.1f} | {total:13.1f}")
        print("(reported only: on PVM hosts guest kernel code is emulated)")


if __name__ == "__main__":
    main()

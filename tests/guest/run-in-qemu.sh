#!/usr/bin/env bash
# Boots the probe guest under QEMU/KVM and exits with the probe's status.
#
# usage: run-in-qemu.sh PROBE_ELF [CMDLINE] [--machine microvm|pc]
#                       [--timeout SECONDS] [--log FILE] [-- EXTRA_QEMU_ARGS...]
#
# Serial output (COM1) goes to stdout (and to --log FILE if given).
# Exit status:
#   0..127  the probe's own status (0 = success; tests/guest/exit.hpp)
#   124     timeout: QEMU did not end in time (the probe hung)
#   125     QEMU failed, or ended without a "probe: exit status=N" line
#   126     usage error / missing QEMU or /dev/kvm
#
# How the status comes back:
#   debug-exit (microvm; pc has no such device here): QEMU exits with
#     (status << 1) | 1, mapped back to status.
#   i8042 reset or triple fault (pc, -no-reboot): QEMU exits 0; the status
#     is taken from the probe's last "probe: exit status=N" serial line.
#   Either way the serial line must be there (and agree with debug-exit):
#   QEMU's own failures also exit 1, which would otherwise read as status 0.
# A last line on stderr says which path ended the VM:
#   run-in-qemu: qemu_rc=N via=debug-exit|reset|timeout|qemu-error status=N|none wall_ms=N
# (wall_ms: QEMU process start to exit, as bench-boot.sh reports it).
set -euo pipefail

usage() {
    sed -n '2,25p' "$0" >&2
    exit 126
}

elf=""
cmdline=""
machine="microvm"
timeout_s=60
log=""
extra=()
have_cmdline=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --machine) machine="${2:?}"; shift 2 ;;
        --machine=*) machine="${1#*=}"; shift ;;
        --timeout) timeout_s="${2:?}"; shift 2 ;;
        --log) log="${2:?}"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) usage ;;
        *)
            if [[ -z "$elf" ]]; then
                elf="$1"
            elif [[ $have_cmdline -eq 0 ]]; then
                cmdline="$1"; have_cmdline=1
            else
                usage
            fi
            shift ;;
    esac
done
[[ -n "$elf" ]] || usage
[[ -r "$elf" ]] || { echo "run-in-qemu: cannot read $elf" >&2; exit 126; }
qemu="${QEMU:-qemu-system-x86_64}"
command -v "$qemu" >/dev/null || { echo "run-in-qemu: $qemu not found (apt-get install qemu-system-x86)" >&2; exit 126; }
[[ -w /dev/kvm ]] || { echo "run-in-qemu: /dev/kvm missing or not writable" >&2; exit 126; }

# -cpu host needs -arch-capabilities here ("failed to set MSR 0x10a"), and
# the KVM PV features that use hypercalls must be off: vmcall never
# completes under PVM (shared/machine-notes.md). +invtsc makes QEMU publish
# the TSC rate in CPUID 0x40000010, so the probe needs no PIT calibration.
# shellcheck disable=SC2054  # commas belong to QEMU option values
args=(
    -enable-kvm
    -cpu host,-arch-capabilities,kvm-pv-ipi=off,kvm-pv-unhalt=off,kvm-pv-sched-yield=off,+invtsc
    -m 128M -smp 1
    -nographic -display none -nodefaults -no-reboot
    -serial stdio
    -kernel "$elf"
)
case "$machine" in
    microvm)
        # No i8042 on microvm: the probe ends it through isa-debug-exit.
        # shellcheck disable=SC2054  # commas belong to QEMU option values
        args+=(-M microvm,x-option-roms=off,isa-serial=on,rtc=off
               -device isa-debug-exit,iobase=0xf4,iosize=0x04) ;;
    pc)
        # qboot instead of SeaBIOS: SeaBIOS alone costs ~4 s here.
        bios=/usr/share/qemu/qboot.rom
        [[ -r "$bios" ]] || { echo "run-in-qemu: $bios missing" >&2; exit 126; }
        args+=(-M pc -bios "$bios") ;;
    *) echo "run-in-qemu: unknown machine '$machine' (microvm|pc)" >&2; exit 126 ;;
esac
[[ $have_cmdline -eq 1 ]] && args+=(-append "$cmdline")
args+=("${extra[@]}")

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
set +e
# stdin from /dev/null: -serial stdio must not grab the caller's terminal.
start_ns=$(date +%s%N)
timeout --kill-after=5 "$timeout_s" "$qemu" "${args[@]}" </dev/null >"$out" 2>&1
rc=$?
wall_ms=$((($(date +%s%N) - start_ns) / 1000000))
set -e
cat "$out"
[[ -n "$log" ]] && cp "$out" "$log"

status_line="$(grep -a -o 'probe: exit status=[0-9]*' "$out" | tail -n 1 || true)"
serial_status="${status_line##*=}"
# One summary line on stderr says which path ended the VM.
summary() { echo "run-in-qemu: qemu_rc=$rc via=$1 status=$2 wall_ms=$wall_ms" >&2; }
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    summary timeout none
    exit 124
elif [[ $((rc & 1)) -eq 1 && "$serial_status" == "$(((rc - 1) / 2))" ]]; then
    # isa-debug-exit: (status << 1) | 1
    summary debug-exit "$serial_status"
    exit "$serial_status"
elif [[ $rc -eq 0 && -n "$serial_status" ]]; then
    # i8042 reset or triple fault; -no-reboot turned it into a clean exit.
    summary reset "$serial_status"
    exit "$serial_status"
else
    summary qemu-error none
    exit 125
fi

#!/usr/bin/env bash
# Integration test: the probe guest's virtio-pci driver (mode=rng,
# tests/guest/virtio_{pci,rng}.cpp) against two device implementations:
#   - hcnode-vmm's virtio-rng (compute/virtio/pci_transport + devices/virtio_rng)
#   - QEMU's virtio-rng-pci (modern-only, and transitional), -M pc + qboot
# Agreement of the probe with both shows our transport and the probe's driver
# each follow virtio 1.2 rather than only each other.
#
# usage: probe_rng_test.sh VMM PROBE_ELF
# Prints one line per check and "N passed, N failed". Exit 0 all passed,
# 1 a failure, 77 skipped: no /dev/kvm, or no QEMU (the hcnode checks still
# run first). With CI=true a missing component is a failure (1).
set -uo pipefail

vmm="${1:?usage: probe_rng_test.sh VMM PROBE_ELF}"
elf="${2:?usage: probe_rng_test.sh VMM PROBE_ELF}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
run_qemu="$repo/tests/guest/run-in-qemu.sh"
qemu="${QEMU:-qemu-system-x86_64}"

# shellcheck source=tests/integration/skip.sh
source "$(dirname "${BASH_SOURCE[0]}")/skip.sh"
[[ -w /dev/kvm ]] || skip "/dev/kvm is missing or not writable"
[[ -x "$vmm" ]] || { echo "FAIL: $vmm is not executable"; exit 1; }
[[ -r "$elf" ]] || { echo "FAIL: cannot read $elf"; exit 1; }

passed=0
failed=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() {
    echo "FAIL $1: $2; output:"
    sed 's/^/    /' "$out"
    failed=$((failed + 1))
}

# hcnode NAME CMDLINE [VMM_ARGS...]: sets $out, $rc, $ms.
hcnode() {
    local name="$1" cmdline="$2"
    shift 2
    out="$work/$name.out"
    local start
    start=$(date +%s%N)
    timeout --kill-after=5 60 "$vmm" --kernel "$elf" --cmdline "$cmdline" --log-level warn --debug-exit \
        "$@" >"$out" 2>&1 </dev/null
    rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
}

# qemu NAME CMDLINE [QEMU_ARGS...]: sets $out, $rc (the probe's status), $ms.
qemu() {
    local name="$1" cmdline="$2"
    shift 2
    out="$work/$name.out"
    local start
    start=$(date +%s%N)
    "$run_qemu" "$elf" "$cmdline" --machine pc --timeout 60 -- "$@" >"$out" 2>&1
    rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
}

# Every regex must match a line of $out.
has_lines() {
    local re
    for re in "$@"; do
        grep -aEq "$re" "$out" || { echo "no line matches /$re/"; return 1; }
    done
}

# check_rng NAME BYTES EXACT: the success report of mode=rng bytes=BYTES.
# EXACT=1: used_len must be BYTES (hcnode fills whole buffers); else 1..BYTES
# (§5.4.6.1 only promises "one or more" bytes).
check_rng() {
    local name="$1" bytes="$2" exact="$3" why
    if [[ $rc -ne 0 ]]; then
        bad "$name" "exit status $rc, want 0"
        return
    fi
    why="$(has_lines '^probe: mode name=rng$' \
        '^probe: virtio device=rng features=0x[0-9a-f]+ queue_size=[1-9][0-9]* accepted=0x[0-9a-f]+ ' \
        "^probe: rng bytes=$bytes used_len=[0-9]+ nonzero=[0-9]+ first8=0x[0-9a-f]{16} descs=1 " \
        "^probe: rng bytes=$bytes used_len=[0-9]+ nonzero=[0-9]+ first8=0x[0-9a-f]{16} descs=2 " \
        '^probe: virtio_cost init_us=[0-9]+ ' \
        '^probe: done mode=rng$' '^probe: exit status=0 ')" || { bad "$name" "$why"; return; }
    if grep -aq '^probe: error' "$out"; then
        bad "$name" "an error line"
        return
    fi
    # VERSION_1 (bit 32) offered and accepted (§6.1).
    local features accepted
    features="$(sed -n 's/^probe: virtio .* features=\(0x[0-9a-f]*\) .*/\1/p' "$out")"
    accepted="$(sed -n 's/^probe: virtio .* accepted=\(0x[0-9a-f]*\) .*/\1/p' "$out")"
    if (((features >> 32 & 1) != 1 || (accepted >> 32 & 1) != 1 || (accepted & ~features) != 0)); then
        bad "$name" "features=$features accepted=$accepted: want VERSION_1 in both, accepted within offered"
        return
    fi
    local line used nonzero
    while read -r line; do
        used="$(sed -n 's/.* used_len=\([0-9]*\) .*/\1/p' <<<"$line")"
        nonzero="$(sed -n 's/.* nonzero=\([0-9]*\) .*/\1/p' <<<"$line")"
        if [[ "$exact" == 1 ]] && ((used != bytes)); then
            bad "$name" "used_len=$used, want $bytes: $line"
            return
        fi
        if ((used < 1 || used > bytes)); then
            bad "$name" "used_len=$used out of 1..$bytes: $line"
            return
        fi
        # Random bytes: about 1/256 are zero. Fewer than 3/4 non-zero means
        # the buffer was not (fully) written.
        if ((nonzero * 4 < used * 3)); then
            bad "$name" "only $nonzero of $used bytes non-zero: $line"
            return
        fi
    done < <(grep -a '^probe: rng bytes=' "$out")
    local cost
    cost="$(sed -n 's/^probe: virtio_cost //p' "$out")"
    ok "$name (${ms} ms; $cost)"
}

# check_error NAME WANT_RC REASON
check_error() {
    local name="$1" want_rc="$2" reason="$3" why
    if [[ $rc -ne $want_rc ]]; then
        bad "$name" "exit status $rc, want $want_rc"
        return
    fi
    why="$(has_lines "^probe: error reason=$reason device=rng$" '^probe: exit status=1 ')" ||
        { bad "$name" "$why"; return; }
    if grep -aq '^probe: done' "$out"; then
        bad "$name" "a done line after an error"
        return
    fi
    ok "$name"
}

# --- hcnode-vmm: status v of the probe comes back as 64+v (compute/exit_status.hpp).
hcnode hcnode-rng "mode=rng bytes=256"
check_rng hcnode-rng 256 1
if [[ $rc -eq 0 ]] && ! grep -aq 'pci_id=0x1044 .*bars_assigned=0$' "$out"; then
    bad hcnode-ids "want the modern id 0x1044 and BARs placed by hcnode"
fi
hcnode hcnode-rng-default "mode=rng"
check_rng hcnode-rng-default 64 1
hcnode hcnode-rng-max "mode=rng bytes=4096"
check_rng hcnode-rng-max 4096 1
hcnode hcnode-no-rng "mode=rng bytes=256" --no-rng
check_error hcnode-no-rng 65 device-missing
# The driver accepts feature bit 0, which the device did not offer: the
# device must leave FEATURES_OK clear (§3.1.1 step 5, §2.2.1).
hcnode hcnode-refused "mode=rng force_features=0x1"
check_error hcnode-refused 65 features-refused
hcnode hcnode-bad-bytes "mode=rng bytes=8"
if [[ $rc -eq 66 ]] && grep -aq '^probe: error reason=bad-number bytes="8"$' "$out"; then
    ok hcnode-bad-bytes
else
    bad hcnode-bad-bytes "exit status $rc, want 66 and a bad-number line"
fi

# --- QEMU's virtio-rng-pci (the third implementation).
if ! command -v "$qemu" >/dev/null; then
    echo "$passed passed, $failed failed"
    ((failed == 0)) || exit 1
    skip "$qemu not found: QEMU checks not run (apt-get install qemu-system-x86)"
fi
qemu qemu-rng-modern "mode=rng bytes=256" -device virtio-rng-pci,disable-legacy=on
check_rng qemu-rng-modern 256 0
if [[ $rc -eq 0 ]] && ! grep -aq 'pci_id=0x1044 ' "$out"; then
    bad qemu-ids "want the modern id 0x1044"
fi
# Transitional (QEMU's default on pc): id 0x1005, same modern capabilities.
qemu qemu-rng-transitional "mode=rng bytes=100" -device virtio-rng-pci
check_rng qemu-rng-transitional 100 0
if [[ $rc -eq 0 ]] && ! grep -aq 'pci_id=0x1005 ' "$out"; then
    bad qemu-transitional-id "want the transitional id 0x1005"
fi
qemu qemu-no-rng "mode=rng"
check_error qemu-no-rng 1 device-missing

echo "$passed passed, $failed failed"
((failed == 0))

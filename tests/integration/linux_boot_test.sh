#!/usr/bin/env bash
# Integration test: hcnode-vmm boots the Linux test guest to userspace with 2 vCPUs.
#   linux_boot_test.sh VMM_BINARY pvh|bzimage
# Also checks that Linux enumerated hcnode's PCI bus (host bridge + virtio-rng).
# Kernel: deploy/guest/kernel.sh (on PVM hosts the patched kernel from ../shared/guest-kernel);
# root: the minimal initramfs (build-initramfs.sh) — no disk needed. Passes when the guest
# prints HCNODE-GUEST-READY, reports nproc=2, prints HCNODE-GUEST-DONE status=0 and resets
# through the i8042, which ends hcnode-vmm with exit status 0. Slow on PVM hosts (guest kernel
# code is emulated): minutes, not seconds.
set -uo pipefail
vmm=${1:?usage: linux_boot_test.sh VMM pvh|bzimage}
entry=${2:?usage: linux_boot_test.sh VMM pvh|bzimage}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/integration/skip.sh
source "$(dirname "${BASH_SOURCE[0]}")/skip.sh"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable"
kargs=()
[[ $entry == pvh ]] && kargs+=(--pvh)
# A kernel build that fails is a failure; only a kernel that cannot be had at all skips.
source "$repo/tests/integration/guest_kernel.sh"
guest_kernel kernel "${kargs[@]}"
cmdline=$("$repo/deploy/guest/kernel.sh" --cmdline)
initrd=$("$repo/deploy/guest/build-initramfs.sh" | tail -n 1) || { echo "FAIL: build-initramfs.sh"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
echo "booting $kernel ($entry) with $initrd"
timeout 900 "$vmm" --kernel "$kernel" --initrd "$initrd" --memory 256M --vcpus 2 --serial stdout \
    --cmdline "$cmdline" >"$log" 2>&1
rc=$?
elapsed=$((SECONDS - start))
fail() {
    echo "FAIL: $* (hcnode-vmm exit $rc after ${elapsed}s); last console lines:"
    tail -n 40 "$log"
    exit 1
}
[[ $rc -eq 124 ]] && fail "timed out"
grep -q '^HCNODE-GUEST-READY' "$log" || fail "no HCNODE-GUEST-READY"
grep -q '^HCNODE-GUEST-INFO .*nproc=2' "$log" || fail "the guest did not bring up 2 vCPUs"
# Linux enumerated our PCI bus (config mechanism #1): host bridge and the virtio-rng function.
grep -q '^HCNODE-GUEST-INFO .*pci=[^ ]*0000:00:00.0:8086:0d57' "$log" || fail "Linux did not find the PCI host bridge"
grep -q '^HCNODE-GUEST-INFO .*pci=[^ ]*0000:00:01.0:1af4:1044' "$log" || fail "Linux did not find the virtio-rng PCI function"
grep -q '^HCNODE-GUEST-DONE status=0' "$log" || fail "no HCNODE-GUEST-DONE status=0"
[[ $rc -eq 0 ]] || fail "hcnode-vmm did not exit 0"
grep '^HCNODE-GUEST-INFO' "$log"
echo "PASS: Linux ($entry entry) reached userspace on 2 vCPUs and reset cleanly in ${elapsed}s"

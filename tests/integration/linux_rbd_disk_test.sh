#!/usr/bin/env bash
# Integration test: the Linux guest runs from RBD through hcnode-vmm's own virtio-blk + librbd:
# root file system on /dev/vda (an RBD image holding the guest's ext4 root image) and a short fio
# job (4 KiB random writes, O_DIRECT, QD4, 5 s) on /dev/vdb (a scratch RBD image).
#   linux_rbd_disk_test.sh VMM_BINARY
# Needs the dev cluster's environment (HCNODE_CEPH_CONF, HCNODE_CEPH_KEYRING, HCNODE_RBD_POOL).
# Slow on PVM hosts (guest kernel code is emulated): about a minute.
set -uo pipefail
vmm=${1:?usage: linux_rbd_disk_test.sh VMM}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/integration/skip.sh
source "$(dirname "${BASH_SOURCE[0]}")/skip.sh"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable"
[[ -n ${HCNODE_CEPH_CONF:-} && -r ${HCNODE_CEPH_CONF:-} ]] || skip "no dev cluster (HCNODE_CEPH_CONF)"
pool=${HCNODE_RBD_POOL:-rbd}
rbd_cli() { rbd --conf "$HCNODE_CEPH_CONF" --id "${HCNODE_CEPH_ID:-hcnode}" --keyring "$HCNODE_CEPH_KEYRING" "$@"; }
# A kernel build that fails is a failure; only a kernel that cannot be had at all skips.
source "$repo/tests/integration/guest_kernel.sh"
guest_kernel kernel --pvh
rootfs=$("$repo/deploy/guest/build-rootfs.sh" | tail -n 1) || { echo "FAIL: build-rootfs.sh"; exit 1; }
cmdline="$("$repo/deploy/guest/kernel.sh" --cmdline) hcnode.fio=randwrite-4k hcnode.fio_dev=vdb hcnode.fio_runtime=5"
name=it-linux-$$-$RANDOM
log=$(mktemp)
cleanup() {
    rbd_cli rm --no-progress "$pool/$name-root" >/dev/null 2>&1
    rbd_cli rm --no-progress "$pool/$name-scratch" >/dev/null 2>&1
    rm -f "$log"
}
trap cleanup EXIT
rbd_cli import --no-progress "$rootfs" "$pool/$name-root" || { echo "FAIL: rbd import"; exit 1; }
rbd_cli create --size 256M "$pool/$name-scratch" || { echo "FAIL: rbd create"; exit 1; }
start=$SECONDS
echo "booting $kernel (pvh) with root on rbd:$pool/$name-root"
timeout 900 "$vmm" --kernel "$kernel" --memory 256M --vcpus 2 --serial stdout --cmdline "$cmdline" \
    --disk "uri=rbd:$pool/$name-root,serial=root" --disk "uri=rbd:$pool/$name-scratch,serial=scratch" \
    >"$log" 2>&1
rc=$?
elapsed=$((SECONDS - start))
fail() {
    echo "FAIL: $* (hcnode-vmm exit $rc after ${elapsed}s); last console lines:"
    tail -n 40 "$log"
    exit 1
}
[[ $rc -eq 124 ]] && fail "timed out"
grep -q '^HCNODE-GUEST-READY' "$log" || fail "no HCNODE-GUEST-READY (root on /dev/vda did not mount?)"
grep -q '^HCNODE-GUEST-INFO .*block=[^ ]*vda' "$log" || fail "the guest has no /dev/vda"
grep -q '^HCNODE-GUEST-INFO .*block=[^ ]*vdb' "$log" || fail "the guest has no /dev/vdb"
summary=$(grep '^HCNODE-FIO: summary' "$log") || fail "no fio summary"
grep -q 'error=0 ' <<<"$summary" || fail "fio reported an error: $summary"
iops=$(sed -n 's/.* write_iops=\([0-9.]*\).*/\1/p' <<<"$summary")
[[ -n $iops ]] && awk -v i="$iops" 'BEGIN { exit !(i > 0) }' || fail "fio wrote nothing: $summary"
grep -q '^HCNODE-GUEST-DONE status=0' "$log" || fail "no HCNODE-GUEST-DONE status=0"
[[ $rc -eq 0 ]] || fail "hcnode-vmm did not exit 0"
grep -E '^HCNODE-(GUEST-INFO|FIO: summary)' "$log"
echo "PASS: Linux ran from rbd:$pool/$name-root (/dev/vda) and fio wrote to /dev/vdb at ${iops} IOPS in ${elapsed}s"

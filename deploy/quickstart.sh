#!/usr/bin/env bash
# hcnode quickstart: from a fresh Debian 12 machine to a running dev cluster with a golden image
# and a VM booted from a fresh copy-on-write clone of it, console on this terminal.
#
#   ./deploy/quickstart.sh             everything below (≈4–8 min the first time on 2 cores)
#   ./deploy/quickstart.sh --no-linux  stop after the probe guest (skips the Linux boot, which
#                                      takes 1–2 min on PVM machines: guest kernel code is emulated)
#
# Steps: install missing packages (apt) -> build (Release) -> dev cluster up (Ceph + Gluster on
# loopback) -> build the Linux guest's root image -> import it into RBD as the golden image
# rbd/golden-linux@golden -> boot the probe guest (milliseconds of guest work) -> clone the golden
# image (RBD clone v2) and boot the Linux guest from the clone, console shown -> remove the clone.
#
# The probe guest runs under hcnode's own VMM (hcnode-vmm). Until hcnode-vmm has virtio-blk (the
# disks issue), the Linux VM on the RBD clone is booted by QEMU with KVM; the golden image, the
# clone and the cluster are already hcnode's. The cluster stays up afterwards:
#   deploy/devcluster.sh status | env | down [--purge]
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HCNODE_BUILD_DIR:-$repo/build/release}
linux=1
for arg in "$@"; do
    case $arg in
        --no-linux) linux=0 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "quickstart: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

t0=$SECONDS
step() { printf '\n=== [%4ds] %s\n' "$((SECONDS - t0))" "$*"; }

step "1/6 dependencies (apt, only what is missing)"
"$repo/deploy/install-deps.sh"

step "2/6 build (Release) in $build"
# shellcheck source=deploy/lib/build.sh
source "$repo/deploy/lib/build.sh"
hcnode_build "$repo" "$build" Release quickstart || exit 1

step "3/6 dev cluster up (Ceph: 1 mon, 1 mgr, 3 OSDs; Gluster: replica-3 volume)"
"$repo/deploy/devcluster.sh" up
eval "$("$repo/deploy/devcluster.sh" env)"
rbd_cli=(rbd --conf "$HCNODE_CEPH_CONF" --id "$HCNODE_CEPH_ID" --keyring "$HCNODE_CEPH_KEYRING")

step "4/6 golden image: Linux guest root image -> rbd/golden-linux@golden"
rootfs=$("$repo/deploy/guest/build-rootfs.sh" | tail -n 1)
golden=golden-linux
if "${rbd_cli[@]}" snap ls "$HCNODE_RBD_POOL/$golden" 2>/dev/null | grep -qw golden; then
    echo "golden image $HCNODE_RBD_POOL/$golden@golden already present"
else
    # An import interrupted earlier leaves an image without the snapshot: start it over.
    "${rbd_cli[@]}" rm --no-progress "$HCNODE_RBD_POOL/$golden" >/dev/null 2>&1 || true
    "${rbd_cli[@]}" import --no-progress --image-feature layering,exclusive-lock,object-map,fast-diff,deep-flatten \
        "$rootfs" "$HCNODE_RBD_POOL/$golden"
    "${rbd_cli[@]}" snap create "$HCNODE_RBD_POOL/$golden@golden"
    echo "imported $rootfs as $HCNODE_RBD_POOL/$golden@golden"
fi
"${rbd_cli[@]}" info "$HCNODE_RBD_POOL/$golden" | sed -n '1,4p'

step "5/6 probe guest under hcnode-vmm (our VMM: PVH entry, 2 vCPUs, PCI scan) — console:"
"$build/compute/hcnode-vmm" --kernel "$build/tests/guest/probe.elf" --memory 128M --vcpus 2 \
    --serial stdout --cmdline "mode=pci" --log-level warn

if [[ $linux -eq 1 ]]; then
    clone="quickstart-vm-$(date +%s)"
    step "6/6 clone $HCNODE_RBD_POOL/$golden@golden -> $HCNODE_RBD_POOL/$clone and boot Linux from it"
    ct=$(date +%s%N)
    "${rbd_cli[@]}" clone --rbd-default-clone-format 2 "$HCNODE_RBD_POOL/$golden@golden" "$HCNODE_RBD_POOL/$clone"
    echo "clone created in $(( ($(date +%s%N) - ct) / 1000000 )) ms"
    trap '"${rbd_cli[@]}" rm --no-progress "$HCNODE_RBD_POOL/$clone" >/dev/null 2>&1 || true' EXIT
    echo "booting (1–2 min on PVM machines: the guest kernel's code is emulated there) ..."
    "$repo/deploy/guest/boot-qemu.sh" --vcpus 2 --expect-ready --timeout 600 \
        --root-rbd "$HCNODE_RBD_POOL/$clone"
else
    step "6/6 skipped (--no-linux)"
fi

step "done in $((SECONDS - t0)) s"
cat <<EOF
The dev cluster is up:   $repo/deploy/devcluster.sh status
Its environment:         eval "\$($repo/deploy/devcluster.sh env)"
Golden image:            rbd:$HCNODE_RBD_POOL/$golden@golden
Logs:                    build $build/build.log; cluster ${HCNODE_CLUSTER_DIR}/logs
Tear down:               $repo/deploy/devcluster.sh down   (--purge also deletes its data)
EOF

#!/usr/bin/env bash
# hcnode quickstart: from a fresh Debian 12 machine to a running dev cluster with a golden image
# and VMs booted by hcnode's own VMM from fresh copy-on-write clones of it, console on this
# terminal.
#
#   ./deploy/quickstart.sh             everything below (≈4–8 min the first time on 2 cores)
#   ./deploy/quickstart.sh --no-linux  stop after the probe guest (skips the Linux boot, which
#                                      takes 1–3 min on PVM machines: guest kernel code is emulated)
#
# Steps: install missing packages (apt) -> build (Release) -> dev cluster up (Ceph + Gluster on
# loopback) -> build the Linux guest's root image -> `hcctl image import ... --golden` makes it
# the golden image rbd/golden-linux -> `hcctl image clone`, and the probe guest under hcnode-vmm
# writes and verifies a pattern on that clone (seconds) -> `hcctl image clone` again and boot the
# Linux guest from the new clone under hcnode-vmm (virtio-blk straight to librbd), console
# shown -> the clones are removed (also on Ctrl-C or failure).
#
# The cluster and the golden image stay afterwards:
#   deploy/devcluster.sh status | env | down [--purge]      build/release/cluster/hcctl image ls rbd
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HCNODE_BUILD_DIR:-$repo/build/release}
linux=1
for arg in "$@"; do
    case $arg in
        --no-linux) linux=0 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
# Only what the quickstart runs: the VMM, hcctl and the probe guest (no test binaries).
hcnode_build "$repo" "$build" Release quickstart -- hcnode-vmm hcctl probe-guest || exit 1
hcctl=$build/cluster/hcctl
vmm=$build/compute/hcnode-vmm

step "3/6 dev cluster up (Ceph: 1 mon, 1 mgr, 3 OSDs; Gluster: replica-3 volume)"
"$repo/deploy/devcluster.sh" up
eval "$("$repo/deploy/devcluster.sh" env)"
# hcctl's pools then come from that environment (pools "rbd" and "gluster"); a storage config
# file would take precedence, and the quickstart means the dev cluster.
unset HCNODE_STORAGE_CONFIG

# The clones this run made are removed whatever happens (success, failure, Ctrl-C).
clones=()
remove_clones() {
    local c
    for c in "${clones[@]}"; do
        if "$hcctl" image rm --no-progress "$c" >/dev/null 2>&1; then
            echo "removed clone $c"
        else
            echo "quickstart: could not remove $c (try: $hcctl image rm $c)" >&2
        fi
    done
    clones=()
}
trap remove_clones EXIT
trap 'exit 130' INT TERM
# image_field IMAGE KEY: one field of `hcctl image info -o json`.
image_field() {
    "$hcctl" image info "$1" -o json | /usr/bin/python3 -c "import json, sys; print(json.load(sys.stdin)['$2'])"
}

step "4/6 golden image: Linux guest root image -> rbd/golden-linux (hcctl image import --golden)"
rootfs=$("$repo/deploy/guest/build-rootfs.sh" | tail -n 1)
golden=rbd/golden-linux
if [[ $(image_field "$golden" golden 2>/dev/null) == True ]]; then
    echo "golden image $golden already present"
elif "$hcctl" image info "$golden" >/dev/null 2>&1; then
    # Imported earlier (by an older quickstart with the rbd CLI) but not marked golden.
    "$hcctl" image golden mark "$golden"
else
    # An interrupted import leaves nothing under the name (hcctl imports under a temporary name).
    "$hcctl" image import "$rootfs" "$golden" --golden
fi
"$hcctl" image info "$golden"

stamp=$(date +%s)
step "5/6 probe guest under hcnode-vmm on a fresh clone: write + verify 4 MiB through virtio-blk"
probe_clone=rbd/quickstart-probe-$stamp
clones+=("$probe_clone")
"$hcctl" image clone "$golden" "$probe_clone"
probe_uri=$(image_field "$probe_clone" uri)
# The probe reports on the console and ends the VM through the debug-exit port (--debug-exit):
# hcnode-vmm exits 0 when the probe succeeded, 64+N when it failed with status N
# (compute/exit_status.hpp).
rc=0
"$vmm" --kernel "$build/tests/guest/probe.elf" --memory 128M --vcpus 2 --serial stdout --debug-exit \
    --cmdline "mode=write-verify offset=0 bytes=4194304 bs=65536 depth=8 seed=$stamp" \
    --disk "uri=$probe_uri,serial=probe" --log-level warn || rc=$?
if [[ $rc -ne 0 ]]; then
    echo "quickstart: the probe guest failed (hcnode-vmm exit $rc; 64+N = probe status N)" >&2
    exit 1
fi
echo "the probe wrote to the clone $probe_clone (copy-on-write: $golden itself is never written)"
remove_clones

if [[ $linux -eq 1 ]]; then
    vm_clone=rbd/quickstart-vm-$stamp
    step "6/6 clone $golden -> $vm_clone and boot Linux from it under hcnode-vmm"
    clones+=("$vm_clone")
    "$hcctl" image clone "$golden" "$vm_clone"
    vm_uri=$(image_field "$vm_clone" uri)
    # The guest kernel: ../shared's when this checkout sits in the hcnode workspace, otherwise
    # built once from Debian's linux-source-6.1 (~6-7 min on 2 cores, progress below) and cached
    # under ~/.cache/hcnode/guest for every later run.
    kernel=$("$repo/deploy/guest/kernel.sh" --pvh | tail -n 1)
    cmdline=$("$repo/deploy/guest/kernel.sh" --cmdline)
    console=$(mktemp /tmp/hcnode-quickstart-console.XXXXXX)
    echo "kernel $kernel (PVH entry); root disk $vm_uri (virtio-blk -> librbd inside hcnode-vmm)"
    if "$repo/deploy/guest/kernel.sh" --is-pvm; then
        echo "booting: 1–3 min on this PVM machine (guest kernel code is emulated here; on hardware KVM it takes about a second) ..."
    else
        echo "booting ..."
    fi
    # Progress while the (quiet) kernel boots: the time so far, until the guest's userspace is up.
    (
        boot_start=$SECONDS
        while sleep 15; do
            grep -q '^HCNODE-GUEST-READY' "$console" 2>/dev/null && break
            printf '... still booting (%ds)\n' "$((SECONDS - boot_start))" >&2
        done
    ) &
    ticker=$!
    rc=0
    timeout 900 "$vmm" --kernel "$kernel" --memory 256M --vcpus 2 --serial stdout --cmdline "$cmdline" \
        --disk "uri=$vm_uri,serial=root" --log-level warn 2>&1 | tee "$console" || rc=${PIPESTATUS[0]}
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
    if [[ $rc -eq 0 ]] && grep -q '^HCNODE-GUEST-READY' "$console" &&
        grep -q '^HCNODE-GUEST-DONE status=0' "$console"; then
        echo "Linux ran from $vm_clone under hcnode-vmm and powered off cleanly"
        rm -f "$console"
    else
        echo "quickstart: the Linux guest did not finish cleanly (hcnode-vmm exit $rc; 124 = timed out);" \
            "console kept in $console" >&2
        exit 1
    fi
    remove_clones
else
    step "6/6 skipped (--no-linux)"
fi

step "done in $((SECONDS - t0)) s"
cat <<EOF
The dev cluster is up:   $repo/deploy/devcluster.sh status
Its environment:         eval "\$($repo/deploy/devcluster.sh env)"
Golden image:            $golden   ($hcctl image info $golden)
Clone it yourself:       $hcctl image clone $golden rbd/my-vm
Logs:                    build $build/build.log; cluster ${HCNODE_CLUSTER_DIR}/logs
Tear down:               $repo/deploy/devcluster.sh down   (--purge also deletes its data)
EOF

#!/usr/bin/env bash
# Integration test: hcnode-vmm with a storage library that cannot be loaded (issue 10 §4: the
# VMM loads librados/librbd/gfapi with dlopen only for a disk that needs them,
# blockdev/rbd/ceph_api.hpp, blockdev/gluster/gfapi_api.hpp).
#   - a VM with an rbd: (gluster://) disk fails to start with exit status 8 (a disk failed to
#     open, compute/exit_status.hpp) and one line naming the library — never a crash;
#   - a VM without a disk boots and exits 0: it never touches the library.
# The library is made unloadable for the VMM alone: in a private mount namespace (unshare -m)
# /dev/null is bind-mounted over the real file, so dlopen finds an empty file ("file too
# short"). Nothing else on the machine sees it. The disk open fails at dlopen, before any
# connection, so no cluster is needed (HCNODE_CEPH_CONF may name a file that does not exist).
#
# usage: storage_library_missing_test.sh VMM PROBE_ELF
# Exit 0 all passed, 1 a failure, 77 skipped: no /dev/kvm, or no mount namespace (not root).
# With CI=true a missing component is a failure.
set -uo pipefail

vmm="${1:?usage: storage_library_missing_test.sh VMM PROBE_ELF}"
elf="${2:?usage: storage_library_missing_test.sh VMM PROBE_ELF}"

# shellcheck source=tests/integration/skip.sh
source "$(dirname "${BASH_SOURCE[0]}")/skip.sh"
[[ -w /dev/kvm ]] || skip "/dev/kvm is missing or not writable"
[[ -x "$vmm" ]] || { echo "FAIL: $vmm is not executable"; exit 1; }
[[ -r "$elf" ]] || { echo "FAIL: cannot read $elf"; exit 1; }
unshare -m true 2>/dev/null || skip "unshare -m: no private mount namespace (needs root)"

passed=0
failed=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/out"

# Runs the VMM (with the remaining arguments) in a mount namespace where SONAME resolves to
# an empty file; its output goes to $out.
run_without() {
    local soname=$1
    shift
    local file
    file=$(readlink -f "/usr/lib/x86_64-linux-gnu/$soname")
    [[ -f $file ]] || { echo "FAIL: $soname is not installed at /usr/lib/x86_64-linux-gnu"; exit 1; }
    unshare -m sh -c 'mount --bind /dev/null "$1" && shift && exec "$@"' sh "$file" \
        env HCNODE_CEPH_CONF="$work/no-such-ceph.conf" \
        "$vmm" --kernel "$elf" --memory 64M --vcpus 1 --serial stdout --debug-exit \
        --log-level warn "$@" >"$out" 2>&1
}

check() {
    local name=$1 want=$2 rc=$3 text=$4
    if [[ $rc -eq $want ]] && { [[ -z $text ]] || grep -qF -- "$text" "$out"; }; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: exit $rc (want $want)${text:+, want a line with '$text'}; output:"
        sed 's/^/    /' "$out"
        failed=$((failed + 1))
    fi
}

for soname in librados.so.2 librbd.so.1; do
    run_without "$soname" --cmdline "mode=print n=1" --disk "uri=rbd:rbd/never-opened,serial=probe"
    check "rbd disk without a loadable $soname: exit 8 naming it" 8 $? "$soname not loadable"
done
run_without libgfapi.so.0 --cmdline "mode=print n=1" \
    --disk "uri=gluster://127.0.0.1/novolume/never-opened.raw,serial=probe"
check "gluster disk without a loadable libgfapi.so.0: exit 8 naming it" 8 $? "libgfapi.so.0 not loadable"

for soname in librbd.so.1 libgfapi.so.0; do
    run_without "$soname" --cmdline "mode=print n=1"
    check "no disk, $soname unloadable: the VM boots and exits 0" 0 $? "hcnode-probe: banner"
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

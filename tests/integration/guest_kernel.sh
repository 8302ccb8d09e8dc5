# Sourced by the tests that boot or load the Linux test guest's kernel (bash).
#
# guest_kernel VAR [kernel.sh args...]: sets VAR to the kernel deploy/guest/kernel.sh names (its
# last line of stdout), building it first if this machine has none (cached). Ends the test
# otherwise, telling an absent component from a failure:
#   kernel.sh exit 3  no kernel here and the packages to build one are missing: skipped (exit
#                     77), but FAIL with CI=true, where a missing component is a broken CI
#   any other failure a kernel build that failed, an unreadable HCNODE_GUEST_KERNEL, ...: FAIL
guest_kernel() {
    local var=$1 out rc repo
    shift
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    out=$("$repo/deploy/guest/kernel.sh" "$@" | tail -n 1; exit "${PIPESTATUS[0]}")
    rc=$?
    if [[ $rc -eq 3 ]]; then
        skip "no guest kernel and no packages to build one (deploy/guest/kernel.sh $* exit 3)"
    fi
    if [[ $rc -ne 0 || -z $out ]]; then
        echo "FAIL: deploy/guest/kernel.sh $* exited $rc: the guest kernel could not be made (its output is above)"
        exit 1
    fi
    printf -v "$var" '%s' "$out"
}

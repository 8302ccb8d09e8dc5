#!/usr/bin/env bash
# Integration test: the x86 kernel loaders (compute/arch/x86) on the Linux test guest's real
# kernel — one [linux-kernel] case of hcnode_unit_tests (tests/unit/compute/arch_x86/
# real_kernels_test.cpp), given the kernel deploy/guest/kernel.sh names: ../shared/guest-kernel
# beside the checkout on PVM hosts, $HCNODE_GUEST_KERNEL, or the project's own cached build
# (made here if missing).
#   real_kernels_test.sh UNIT_TEST_BINARY vmlinux|bzimage
# No kernel of that kind and no packages to build one (or an $HCNODE_GUEST_KERNEL of the other
# kind): skipped (77), a failure with CI=true. A kernel build that fails: a failure.
set -uo pipefail
bin=${1:?usage: real_kernels_test.sh UNIT_TEST_BINARY vmlinux|bzimage}
kind=${2:?usage: real_kernels_test.sh UNIT_TEST_BINARY vmlinux|bzimage}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/integration/skip.sh
source "$(dirname "${BASH_SOURCE[0]}")/skip.sh"
source "$repo/tests/integration/guest_kernel.sh"
# The format, from the file's magic: ELF ("\x7fELF" at 0), or the boot protocol's "HdrS" at
# 0x202 (Documentation/arch/x86/boot.rst).
format_of() {
    if [[ $(head -c 4 "$1" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then echo vmlinux
    elif [[ $(dd if="$1" bs=1 skip=514 count=4 status=none) == HdrS ]]; then echo bzimage
    else echo unknown; fi
}
case $kind in
vmlinux) guest_kernel kernel --pvh; var=HCNODE_GUEST_VMLINUX; filter="x86 real Linux vmlinux*" ;;
bzimage) guest_kernel kernel; var=HCNODE_GUEST_BZIMAGE; filter="x86 real Linux bzImage*" ;;
*) echo "FAIL: unknown kind '$kind' (vmlinux or bzimage)"; exit 1 ;;
esac
format=$(format_of "$kernel")
if [[ $format != "$kind" ]]; then
    # HCNODE_GUEST_KERNEL is taken as is by kernel.sh, whatever its kind; otherwise kernel.sh
    # handed out the wrong kind of file, which is a failure.
    [[ -n ${HCNODE_GUEST_KERNEL:-} ]] && skip "HCNODE_GUEST_KERNEL=$HCNODE_GUEST_KERNEL is a $format, not a $kind"
    echo "FAIL: deploy/guest/kernel.sh named $kernel, a $format, for a $kind"; exit 1
fi
echo "$kind: $kernel"
export "$var=$kernel"
exec "$bin" "$filter" -w NoTests

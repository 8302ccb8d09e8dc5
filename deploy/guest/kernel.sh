#!/usr/bin/env bash
# Which Linux kernel the hcnode test guest boots, and with what command line.
#
# Usage: kernel.sh [--pvh] [--stock] [--pvm|--no-pvm]   print the kernel's path (last line of stdout)
#        kernel.sh --cmdline [--pvm|--no-pvm]           print the recommended kernel command line
#        kernel.sh --is-pvm                             exit 0 if this host's KVM is PVM
#        kernel.sh --will-build                         exit 0 if a kernel would be built here
#                                                       (install-deps.sh then installs the tools)
#
# Kernel, first match wins:
#   1. $HCNODE_GUEST_KERNEL, if set (taken as is).
#   2. On PVM hosts (/sys/module/kvm_pvm exists, or /proc/cpuinfo shows no vmx/svm): the
#      patched kernel in <repo>/../shared/guest-kernel: bzImage, or vmlinux (ELF with the PVH
#      note) with --pvh. If that folder is missing, build-kernel.sh --pvm builds the same kind.
#   3. --stock: Debian's newest /boot/vmlinuz-* (linux-image-amd64). Its virtio/ext4 drivers are
#      modules, so it needs an initramfs (/boot/initrd.img-*) and cannot boot root=/dev/vda
#      directly; it does not reach userspace on PVM hosts at all.
#   4. Otherwise our own all-built-in kernel from build-kernel.sh (Debian's linux-source-6.1 +
#      kernel.fragment), cached by the hash of its inputs (first build ~6-7 min on 2 cores).
# --pvm / --no-pvm override the host detection (also HCNODE_GUEST_PVM=1/0).
# Exit status 3: no kernel here and the packages to build one are missing (build-kernel.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared_kernel_dir="$repo/../shared/guest-kernel"

die() { echo "kernel.sh: error: $*" >&2; exit 1; }

pvh=0 stock=0 want_cmdline=0 want_is_pvm=0 want_will_build=0 pvm=${HCNODE_GUEST_PVM:-auto}
while [ $# -gt 0 ]; do
	case "$1" in
	--pvh) pvh=1 ;;
	--stock) stock=1 ;;
	--cmdline) want_cmdline=1 ;;
	--is-pvm) want_is_pvm=1 ;;
	--will-build) want_will_build=1 ;;
	--pvm) pvm=1 ;;
	--no-pvm) pvm=0 ;;
	-h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done

if [ "$pvm" = auto ]; then
	if [ -d /sys/module/kvm_pvm ] || ! grep -qwE 'vmx|svm' /proc/cpuinfo; then pvm=1; else pvm=0; fi
fi

if [ "$want_is_pvm" = 1 ]; then
	[ "$pvm" = 1 ]
	exit
fi

# Command lines. PVM: the one measured in shared/guest-kernel/README.md (clearcpuid list: CPUID
# bits KVM does not support leak through here and the kernel would use instructions PVM's
# emulator cannot do), no ACPI (its AML interpreter costs ~30 s emulated), PCI through 0xCF8,
# keyboard-controller reset so that `reboot -f` ends the VM.
pvm_cmdline="console=ttyS0 panic=-1 noxsave clearcpuid=cx16,erms,fsrm,sse4_2,popcnt,rdrand,rdseed,fsgsbase,smap,invpcid,rdtscp,rdpid init_on_alloc=0 mitigations=off tsc=reliable no_timer_check cryptomgr.notests quiet acpi=off pci=conf1 reboot=k root=/dev/vda rw"
std_cmdline="console=ttyS0 reboot=k panic=-1 root=/dev/vda rw acpi=off pci=conf1"

# The same choice as below, answered without building: only HCNODE_GUEST_KERNEL or, on PVM
# hosts, ../shared's kernel spare a build (--stock is never the default).
if [ "$want_will_build" = 1 ]; then
	[ -z "${HCNODE_GUEST_KERNEL:-}" ] || exit 1
	if [ "$pvm" = 1 ] && [ -r "$shared_kernel_dir/bzImage" ] && [ -r "$shared_kernel_dir/vmlinux" ]; then
		exit 1
	fi
	exit 0
fi

if [ "$want_cmdline" = 1 ]; then
	if [ "$pvm" = 1 ]; then echo "$pvm_cmdline"; else echo "$std_cmdline"; fi
	exit 0
fi

if [ -n "${HCNODE_GUEST_KERNEL:-}" ]; then
	[ -r "$HCNODE_GUEST_KERNEL" ] || die "HCNODE_GUEST_KERNEL=$HCNODE_GUEST_KERNEL is not a readable file"
	echo "$HCNODE_GUEST_KERNEL"
	exit 0
fi

if [ "$pvm" = 1 ]; then
	name=bzImage
	[ "$pvh" = 1 ] && name=vmlinux
	if [ -r "$shared_kernel_dir/$name" ]; then
		echo "$(cd "$shared_kernel_dir" && pwd)/$name"
		exit 0
	fi
	echo "kernel.sh: PVM host but no $shared_kernel_dir/$name: building a patched kernel" >&2
	args=(--pvm)
	[ "$pvh" = 1 ] && args+=(--pvh)
	exec "$here/build-kernel.sh" "${args[@]}"
fi

if [ "$stock" = 1 ]; then
	k=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
	[ -n "$k" ] || die "no /boot/vmlinuz-*: install linux-image-amd64 (deploy/install-deps.sh or apt-get install linux-image-amd64)"
	echo "kernel.sh: note: the stock kernel needs its initramfs ($(ls -1 /boot/initrd.img-* 2>/dev/null | sort -V | tail -n 1)) for virtio-blk/ext4" >&2
	[ "$pvh" = 1 ] && echo "kernel.sh: note: --pvh ignored for the stock kernel (bzImage only)" >&2
	echo "$k"
	exit 0
fi

args=()
[ "$pvh" = 1 ] && args+=(--pvh)
exec "$here/build-kernel.sh" "${args[@]}"

#!/usr/bin/env bash
# Boots the hcnode test guest (Linux + build-rootfs.sh's image) under QEMU/KVM, independently
# of hcnode's own VMM, and prints its serial console on stdout.
#
# Usage: boot-qemu.sh [options]
#   --root-rbd POOL/IMG boot from this RBD image in place (needs the devcluster env)
#   --rootfs IMG        root image (default: build-rootfs.sh's cached image, built if needed);
#                       never modified: the guest writes to a qcow2 overlay that is deleted
#   --kernel K          kernel (default: kernel.sh --pvh, the ELF vmlinux booted through its
#                       PVH entry: on PVM hosts this skips ~57 s of emulated bzImage unpacking)
#   --bzimage           default kernel as bzImage (Linux boot protocol) instead
#   --append "ARGS"     extra kernel parameters after kernel.sh --cmdline
#   --cmdline "ARGS"    the whole kernel command line instead
#   --vcpus N           vCPUs (default 2)         --mem SIZE    guest RAM (default 256M)
#   --extra-disk IMG    another raw disk (vdb, vdc, ... in order; repeatable); written to!
#   --fio JOB           run /etc/hcnode/fio/JOB.fio in the guest (hcnode.fio=JOB)
#   --fio-dev NAME      device for the job (default vdb)   --fio-runtime S  (default 5)
#   --shell             interactive: console on this terminal, guest drops to a shell
#   --machine pc|microvm  (default pc: -M pc + qboot; microvm ends through isa-debug-exit)
#   --timeout S         kill QEMU after S seconds (default 600) -> exit 124; a KVM internal
#                       error (QEMU would wait forever) ends it at once -> exit 3
#   --expect-ready      exit 0 only if HCNODE-GUEST-READY and HCNODE-GUEST-DONE status=0
#                       appeared and QEMU ended by itself with the guest's power-off
#   --quiet             console to the log only; stdout gets just the HCNODE-* lines
#   --no-quiet          drop the kernel's 'quiet' parameter (see where a boot stops)
#   --log FILE          keep the full console here (default: a temp file, deleted on success)
#   --qemu-arg ARG      extra QEMU argument (repeatable)
# On stderr: "boot-qemu: ..." progress, timings from QEMU process start (READY, DONE, exit),
# and on failure the last 30 console lines plus a diagnosis hint.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache="${HCNODE_CACHE_DIR:-$HOME/.cache/hcnode}/guest"

die() { echo "boot-qemu: error: $*" >&2; exit 2; }
say() { echo "boot-qemu: $*" >&2; }

root_rbd='' rootfs='' kernel='' append='' cmdline='' vcpus=2 mem=256M timeout=600 machine=pc
fio_job='' fio_dev='' fio_runtime='' shell=0 expect=0 quiet=0 noquiet=0 logfile='' pvh=1
extra_disks=() qemu_extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--rootfs) rootfs=${2:?}; shift ;;
	--root-rbd) root_rbd=${2:?}; shift ;;
	--kernel) kernel=${2:?}; shift ;;
	--pvh) pvh=1 ;;
	--bzimage) pvh=0 ;;
	--append) append=${2?}; shift ;;
	--cmdline) cmdline=${2:?}; shift ;;
	--vcpus) vcpus=${2:?}; shift ;;
	--mem) mem=${2:?}; shift ;;
	--extra-disk) extra_disks+=("${2:?}"); shift ;;
	--fio) fio_job=${2:?}; shift ;;
	--fio-dev) fio_dev=${2:?}; shift ;;
	--fio-runtime) fio_runtime=${2:?}; shift ;;
	--shell) shell=1 ;;
	--machine) machine=${2:?}; shift ;;
	--timeout) timeout=${2:?}; shift ;;
	--expect-ready) expect=1 ;;
	--quiet) quiet=1 ;;
	--no-quiet) noquiet=1 ;;
	--log) logfile=${2:?}; shift ;;
	--qemu-arg) qemu_extra+=("${2:?}"); shift ;;
	-h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done
case "$timeout" in ''|*[!0-9]*) die "--timeout wants whole seconds" ;; esac
case "$vcpus" in ''|*[!0-9]*) die "--vcpus wants a number" ;; esac
case "$machine" in pc|microvm) ;; *) die "--machine is pc or microvm" ;; esac

qemu_bin=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 missing: run deploy/install-deps.sh (apt-get install qemu-system-x86)"
command -v qemu-img >/dev/null || die "qemu-img missing: run deploy/install-deps.sh (apt-get install qemu-utils)"
[ -w /dev/kvm ] || die "/dev/kvm is not usable by $(id -un)"

if [ -z "$rootfs" ]; then
	rootfs=$("$here/build-rootfs.sh" | tail -n 1) || die "build-rootfs.sh failed"
fi
[ -r "$rootfs" ] || die "no root image $rootfs"
rootfs=$(readlink -f "$rootfs")
if [ -z "$kernel" ]; then
	kargs=()
	[ "$pvh" = 1 ] && kargs+=(--pvh)
	kernel=$("$here/kernel.sh" "${kargs[@]}" | tail -n 1) || die "kernel.sh found no kernel"
fi
[ -r "$kernel" ] || die "no kernel $kernel"
[ -n "$cmdline" ] || cmdline=$("$here/kernel.sh" --cmdline)
if [ "$noquiet" = 1 ]; then
	cmdline=$(sed -E 's/(^| )quiet( |$)/\1\2/; s/  +/ /g; s/ $//' <<<"$cmdline")
fi
[ -n "$fio_job" ] && cmdline+=" hcnode.fio=$fio_job"
[ -n "$fio_dev" ] && cmdline+=" hcnode.fio_dev=$fio_dev"
[ -n "$fio_runtime" ] && cmdline+=" hcnode.fio_runtime=$fio_runtime"
[ "$shell" = 1 ] && cmdline+=" hcnode.shell=1"
[ "$machine" = microvm ] && cmdline+=" hcnode.exit_port=0xf4"
[ -n "$append" ] && cmdline+=" $append"

mkdir -p "$cache"
run=$(mktemp -d "$cache/run.XXXXXX") || die "cannot make a run directory in $cache"
[ -n "$logfile" ] || logfile="$run/console.log"
: >"$logfile" || die "cannot write $logfile"
qpid=''
# shellcheck disable=SC2317  # called through trap
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then kill "$qpid" 2>/dev/null; fi
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Copy-on-write overlay on disk (not tmpfs: cache=none needs O_DIRECT).
if [ -n "$root_rbd" ]; then
	# The root disk is an RBD image written in place (a clone made for this boot), reached by
	# QEMU's own librbd driver as the dev cluster's client.hcnode.
	: "${HCNODE_CEPH_CONF:?--root-rbd needs the dev cluster environment: eval \"\$(deploy/devcluster.sh env)\"}"
	root_drive="file=rbd:$root_rbd:id=${HCNODE_CEPH_ID:-hcnode}:conf=$HCNODE_CEPH_CONF:keyring=$HCNODE_CEPH_KEYRING,if=none,id=root,format=raw,cache=none"
else
	qemu-img create -q -f qcow2 -F raw -b "$rootfs" "$run/root.qcow2" || die "qemu-img create failed"
	root_drive="file=$run/root.qcow2,if=none,id=root,format=qcow2,cache=none"
fi

# shellcheck disable=SC2054  # commas are QEMU's
if [ "$machine" = pc ]; then
	transport=virtio-blk-pci
	qemu=("$qemu_bin" -M pc -bios /usr/share/qemu/qboot.rom)
else
	transport=virtio-blk-device
	qemu=("$qemu_bin" -M microvm,x-option-roms=off,isa-serial=on,rtc=off,acpi=off
		-device isa-debug-exit,iobase=0xf4,iosize=0x04)
fi
# shellcheck disable=SC2054
qemu+=(-enable-kvm
	-cpu host,-arch-capabilities,-cx16,kvm-pv-ipi=off,kvm-pv-unhalt=off,kvm-pv-sched-yield=off
	-smp "$vcpus" -m "$mem"
	-kernel "$kernel" -append "$cmdline"
	-drive "$root_drive"
	-device "$transport,drive=root"
	-no-reboot -nographic -nodefaults)
i=1
for d in "${extra_disks[@]}"; do
	[ -w "$d" ] || die "extra disk $d is not a writable file"
	qemu+=(-drive "file=$d,if=none,id=disk$i,format=raw,cache=none" -device "$transport,drive=disk$i")
	i=$((i + 1))
done
qemu+=("${qemu_extra[@]}")

say "kernel $kernel"
if [ -n "$root_rbd" ]; then say "root disk rbd:$root_rbd"; else say "rootfs $rootfs (overlay $run/root.qcow2)"; fi
say "cmdline: $cmdline"

if [ "$shell" = 1 ]; then
	say "interactive: Ctrl-A X quits QEMU"
	trap - EXIT
	"${qemu[@]}" -serial mon:stdio
	rc=$?
	rm -rf "$run"
	exit $rc
fi

usec() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }
secs() { printf '%d.%d' $(($1 / 1000000)) $(($1 % 1000000 / 100000)); }

start=$(usec)
deadline=$((start + timeout * 1000000))
exec {con}< <(exec "${qemu[@]}" -serial stdio </dev/null 2>&1)
qpid=$!
say "QEMU pid $qpid: ${qemu[*]} -serial stdio"

ready_at='' done_at='' done_status='' timed_out=0 kvm_error=0
emit() {
	printf '%s\n' "$1" >>"$logfile"
	if [ "$quiet" = 0 ]; then printf '%s\n' "$1"
	else case "$1" in *HCNODE-*) printf '%s\n' "$1" ;; esac; fi
}
while :; do
	now=$(usec)
	left=$((deadline - now))
	if [ "$left" -le 0 ]; then timed_out=1; break; fi
	if IFS= read -r -t "$(secs "$left")" -u "$con" line; then
		line=${line%$'\r'}
		emit "$line"
		case "$line" in
		*HCNODE-GUEST-READY*)
			if [ -z "$ready_at" ]; then ready_at=$(($(usec) - start)); say "READY after $(secs "$ready_at") s"; fi ;;
		*"KVM internal error"*)
			# QEMU stops the VM and waits forever: collect its register dump, then end it
			if [ "$kvm_error" = 0 ]; then
				kvm_error=1
				say "KVM internal error: stopping QEMU in 2 s"
				deadline=$(($(usec) + 2000000))
			fi ;;
		*"HCNODE-GUEST-DONE status="*)
			if [ -z "$done_at" ]; then
				done_at=$(($(usec) - start))
				done_status=${line##*HCNODE-GUEST-DONE status=}
				done_status=${done_status%%[!0-9]*}
				say "DONE status=$done_status after $(secs "$done_at") s"
			fi ;;
		esac
	else
		rc=$?
		if [ "$rc" -gt 128 ]; then timed_out=1; break; fi
		[ -n "$line" ] && emit "${line%$'\r'}"
		break  # EOF: QEMU closed its output
	fi
done

if [ "$timed_out" = 1 ]; then
	kill "$qpid" 2>/dev/null
	for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done
	kill -9 "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	qrc=124
else
	wait "$qpid"
	qrc=$?
fi
qpid=
end_at=$(($(usec) - start))
exec {con}<&-

ok=1
if [ "$kvm_error" = 1 ]; then
	say "QEMU stopped after a KVM internal error ($(secs "$end_at") s)"
	ok=0
elif [ "$timed_out" = 1 ]; then
	say "TIMEOUT after ${timeout} s (READY $([ -n "$ready_at" ] && echo seen || echo "not seen"), DONE ${done_status:+status=}${done_status:-not seen}): QEMU killed"
	ok=0
else
	say "QEMU exited with $qrc after $(secs "$end_at") s"
fi
if [ "$machine" = pc ]; then expected_qrc=0; else expected_qrc=$(( ((${done_status:-0} & 255) << 1) | 1 )); fi
if [ "$expect" = 1 ] && [ "$ok" = 1 ]; then
	[ -n "$ready_at" ] || { say "FAIL: no HCNODE-GUEST-READY"; ok=0; }
	[ "${done_status:-x}" = 0 ] || { say "FAIL: HCNODE-GUEST-DONE status=${done_status:-<none>}"; ok=0; }
	[ "$qrc" = "$expected_qrc" ] || { say "FAIL: QEMU exit status $qrc, expected $expected_qrc (guest power-off)"; ok=0; }
fi

if [ "$ok" = 0 ]; then
	if [ "$logfile" = "$run/console.log" ]; then
		mkdir -p "$cache/logs"
		logfile="$cache/logs/console-$(date +%Y%m%d-%H%M%S)-$$.log"
		cp "$run/console.log" "$logfile"
	fi
	say "last 30 console lines (full log kept: $logfile):"
	tail -n 30 "$logfile" | sed 's/^/  | /' >&2
	hint=''
	if grep -q 'KVM internal error' "$logfile"; then
		hint="KVM could not emulate a guest kernel instruction (PVM host?): use the patched kernel (kernel.sh) and its clearcpuid list (kernel.sh --cmdline)"
	elif grep -q 'failed to set MSR' "$logfile"; then
		hint="QEMU -cpu host needs -arch-capabilities here"
	elif grep -qE 'VFS: Unable to mount root|Cannot open root device' "$logfile"; then
		hint="the kernel did not find /dev/vda: check virtio-blk/PCI in the kernel, pci=conf1 and acpi=off"
	elif grep -qE 'segfault|Kernel panic|Oops|BUG:' "$logfile"; then
		hint="guest crash (see the lines above); one boot in ~19 on PVM hosts crashed at random early in userspace: keep the log, then retry once"
	elif grep -q 'HCNODE-GUEST-POWEROFF-FAILED' "$logfile"; then
		hint="the guest could not end the VM: boot with reboot=k on -M pc, or --machine microvm (debug-exit port)"
	elif [ -n "$ready_at" ] && [ -z "$done_status" ] && [ "$timed_out" = 1 ]; then
		hint="userspace is up but /init did not finish: fio in a PVM guest needs ~10-15 s more than its runtime per job file; raise --timeout"
	elif [ -z "$ready_at" ] && [ "$timed_out" = 1 ]; then
		if grep -qE '(^| )quiet( |$)' <<<"$cmdline" && ! grep -q '[^[:space:]]' "$logfile"; then
			hint="nothing printed yet: with 'quiet' the kernel is silent until /init, which takes ~40-50 s (PVH vmlinux) or ~115 s (bzImage) on PVM hosts; rerun with --no-quiet to see where it stops"
		else
			hint="no READY before the timeout: kernel boot under PVM emulation takes ~40-140 s; the log shows how far it got"
		fi
	fi
	[ -n "$hint" ] && say "diagnosis: $hint"
fi

say "summary: ready_s=${ready_at:+$(secs "$ready_at")} done_s=${done_at:+$(secs "$done_at")} done_status=${done_status} qemu_exit=$qrc total_s=$(secs "$end_at")"
if [ "$expect" = 1 ] || [ "$timed_out" = 1 ]; then
	[ "$ok" = 1 ] && exit 0
	[ "$kvm_error" = 1 ] && exit 3
	[ "$timed_out" = 1 ] && exit 124
	exit 1
fi
exit "$qrc"

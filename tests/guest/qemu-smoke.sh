#!/usr/bin/env bash
# Boots the probe guest under QEMU/KVM in each mode and through each exit
# path, and checks its serial report lines and exit status.
#
# usage: qemu-smoke.sh PROBE_ELF
# Prints one line per check and "N passed, N failed". Exits 0 if all
# passed, 1 otherwise, 77 (skip) when QEMU or /dev/kvm is missing -- but
# with CI=true a missing component is a failure, never a skip.
set -uo pipefail

elf="${1:?usage: qemu-smoke.sh PROBE_ELF}"
here="$(cd "$(dirname "$0")" && pwd)"
run="$here/run-in-qemu.sh"

if ! command -v "${QEMU:-qemu-system-x86_64}" >/dev/null || [[ ! -w /dev/kvm ]]; then
    echo "qemu-smoke: needs qemu-system-x86_64 and a writable /dev/kvm"
    [[ "${CI:-}" == "true" ]] && exit 1
    exit 77
fi

passed=0
failed=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# boot NAME MACHINE CMDLINE [EXTRA_QEMU_ARGS...]: sets $out, $rc and $via.
boot() {
    local name="$1" machine="$2" cmdline="$3"
    shift 3
    out="$work/$name.out"
    "$run" "$elf" "$cmdline" --machine "$machine" --timeout 30 -- "$@" \
        >"$out" 2>"$work/$name.err"
    rc=$?
    via="$(sed -n 's/.* via=\([a-z0-9-]*\) .*/\1/p' "$work/$name.err")"
}

# expect NAME WANT_RC WANT_VIA REGEX...: every REGEX must match a line;
# a REGEX starting with '!' must match none.
expect() {
    local name="$1" want_rc="$2" want_via="$3"
    shift 3
    if [[ "$rc" != "$want_rc" ]]; then
        bad "$name" "status $rc, want $want_rc (via=$via); output:"
        sed 's/^/    /' "$out" "$work/$name.err"
        return
    fi
    if [[ "$via" != "$want_via" ]]; then
        bad "$name" "ended via $via, want $want_via"
        return
    fi
    local re
    for re in "$@"; do
        if [[ "$re" == '!'* ]]; then
            if grep -aEq "${re#!}" "$out"; then
                bad "$name" "a line matches /${re#!}/; output:"
                sed 's/^/    /' "$out"
                return
            fi
        elif ! grep -aEq "$re" "$out"; then
            bad "$name" "no line matches /$re/; output:"
            sed 's/^/    /' "$out"
            return
        fi
    done
    ok "$name"
}

common=('^hcnode-probe: banner v1$'
        '^probe: start_info .* valid=1$'
        '^probe: tsc tsc_khz=[1-9][0-9]* source=[a-z0-9-]+')

boot default-microvm microvm ""
expect default-microvm 0 debug-exit "${common[@]}" \
    '^probe: spin ms=10 iterations=[1-9][0-9]* cycles=[0-9]+$' \
    '^probe: done mode=default$' '^probe: exit status=0 method=auto$' '!exit_fallback'
khz="$(sed -n 's/^probe: tsc tsc_khz=\([0-9]*\) .*/\1/p' "$out")"

boot default-pc pc ""
expect default-pc 0 reset "${common[@]}" '^probe: done mode=default$' \
    '^probe: exit status=0 method=auto$' '^probe: exit_fallback method=i8042$' \
    '!exit_fallback method=triple'

boot spin microvm "mode=spin ms=100"
expect spin 0 debug-exit '^probe: spin ms=100 iterations=[1-9][0-9]* cycles=[0-9]+$' \
    '^probe: done mode=spin$'
cycles="$(sed -n 's/^probe: spin ms=100 .* cycles=\([0-9]*\)$/\1/p' "$out")"
# The loop ends only once ms * tsc_khz TSC ticks have passed (main.cpp spin()), at the rate this
# same boot calibrated: that is the outcome to check. (Not the first boot's rate, which is its
# own measurement, nor an upper bound: how long the host takes to let the loop see the TSC
# again is timing; the 30 s --timeout of each boot is the hang guard.)
spin_khz="$(sed -n 's/^probe: tsc tsc_khz=\([0-9]*\) .*/\1/p' "$out")"
if [[ -n "$spin_khz" && -n "$cycles" ]] && ((cycles >= 100 * spin_khz)); then
    ok spin-duration
else
    bad spin-duration "cycles=$cycles for 100 ms at tsc_khz=$spin_khz"
fi

boot print microvm "mode=print n=5"
expect print 0 debug-exit '^probe: print i=1 n=5$' '^probe: print i=5 n=5$' \
    '^probe: done mode=print$'
lines="$(grep -ac '^probe: print ' "$out")"
if [[ "$lines" == 5 ]]; then
    ok print-count
else
    bad print-count "$lines print lines, want 5"
fi

fault_re='^probe: fault vector=%s name=%s error=0x[0-9a-f]+ rip=0x[0-9a-f]+ cs=0x33 rflags=0x[0-9a-f]+ rsp=0x[0-9a-f]+ ss=0x2b cr2=%s$'
boot fault-ud microvm "mode=fault"
# shellcheck disable=SC2059
expect fault-ud 3 debug-exit "$(printf "$fault_re" 6 UD '0x[0-9a-f]+')" \
    '^probe: exit status=3 method=auto$'
boot fault-pf microvm "mode=fault kind=pf"
# shellcheck disable=SC2059
expect fault-pf 3 debug-exit "$(printf "$fault_re" 14 PF 0x100000000)"
boot fault-gp microvm "mode=fault kind=gp"
# shellcheck disable=SC2059
expect fault-gp 3 debug-exit "$(printf "$fault_re" 13 GP '0x[0-9a-f]+')"
boot fault-de microvm "mode=fault kind=de"
# shellcheck disable=SC2059
expect fault-de 3 debug-exit "$(printf "$fault_re" 0 DE '0x[0-9a-f]+')"
boot fault-pc pc "mode=fault"
# shellcheck disable=SC2059
expect fault-pc 3 reset "$(printf "$fault_re" 6 UD '0x[0-9a-f]+')"

boot i8042-pc pc "exit=i8042"
expect i8042-pc 0 reset '^probe: exit status=0 method=i8042$' '!exit_fallback'
boot triple-microvm microvm "exit=triple"
expect triple-microvm 0 reset '^probe: exit status=0 method=triple$' '!exit_fallback'
# microvm has no i8042: the probe must fall back to a triple fault.
boot i8042-fallback microvm "exit=i8042"
expect i8042-fallback 0 reset '^probe: exit status=0 method=i8042$' \
    '^probe: exit_fallback method=triple$'
boot debug-pc pc "mode=fault" -device isa-debug-exit,iobase=0xf4,iosize=0x04
expect debug-pc 3 debug-exit '^probe: exit status=3 method=auto$'

boot bad-mode microvm "mode=bogus"
expect bad-mode 2 debug-exit '^probe: error reason=unknown-mode mode="bogus"$'
boot bad-number microvm "mode=spin ms=12x"
expect bad-number 2 debug-exit '^probe: error reason=bad-number ms="12x"$'
boot bad-exit microvm "exit=nope"
expect bad-exit 2 debug-exit '^probe: error reason=bad-exit-method exit="nope"$'

boot pit microvm "tsc=pit"
expect pit 0 debug-exit '^probe: tsc tsc_khz=[0-9]+ source=pit pit_ms=20 pit_samples=[0-9]+$'
pit_khz="$(sed -n 's/^probe: tsc tsc_khz=\([0-9]*\) source=pit.*/\1/p' "$out")"
# The PIT path measures the TSC against a 20 ms window of the PIT (tsc.cpp from_pit), so its
# precision is timing (a descheduled vCPU, 2 shared cores) and no test of ours. Its outcome is
# a rate in the right unit: a wrong PIT frequency, window or unit would be off by far more than
# a factor of 2 (x1000 for ms/us, x1.19 MHz/kHz ...), which no scheduling delay comes near.
if [[ -n "$khz" && -n "$pit_khz" ]] && ((pit_khz * 2 > khz && pit_khz < khz * 2)); then
    ok pit-rate
else
    bad pit-rate "pit says $pit_khz kHz, cpuid says $khz kHz (want within a factor of 2)"
fi

# virtio-blk modes (blk_modes.cpp) against QEMU's virtio-blk-pci on a
# 64 MiB raw image (default cache mode: works on any file system).
img="$(mktemp -p "${TMPDIR:-/var/tmp}" probe-smoke-XXXXXX.img)"
img2="$(mktemp -p "${TMPDIR:-/var/tmp}" probe-smoke-XXXXXX.img)"
trap 'rm -rf "$work" "$img" "$img2"' EXIT
truncate -s 64M "$img"
truncate -s 16M "$img2"
# shellcheck disable=SC2054  # commas belong to QEMU option values
blk=(-drive "file=$img,if=none,id=d0,format=raw,aio=threads"
     -device virtio-blk-pci,drive=d0,disable-legacy=on,num-queues=2,serial=smoke-serial)
blk_line='^probe: blk disk=0 features=0x[0-9a-f]+ capacity=131072 blk_size=512 num_queues=2 seg_max=[0-9]+ ro=0 serial="smoke-serial" bdf=00:[0-9a-f]{2}\.0$'

boot blk-write-verify pc "mode=write-verify bytes=1048576 bs=16384 depth=4 seed=9" "${blk[@]}"
expect blk-write-verify 0 reset "$blk_line" \
    '^probe: write_verify offset=0 bytes=1048576 bs=16384 requests=64 mismatches=0 first_bad=0xffffffffffffffff write_errors=0 read_errors=0 flush_status=0 us=[0-9]+$' \
    '^probe: done mode=write-verify$'
# A second VM reads what the first wrote.
boot blk-verify-only pc "mode=write-verify bytes=1048576 bs=65536 seed=9 verify-only=1" "${blk[@]}"
expect blk-verify-only 0 reset 'mismatches=0 .* read_errors=0 flush_status=none ' \
    '^probe: done mode=write-verify$'
boot blk-verify-wrong-seed pc "mode=write-verify bytes=4096 seed=10 verify-only=1" "${blk[@]}"
expect blk-verify-wrong-seed 1 reset 'mismatches=512 first_bad=0x0 ' \
    '^probe: error reason=mismatch device=blk$'

boot blk-records pc "mode=records offset=2097152 count=20 seed=3" "${blk[@]}"
expect blk-records 0 reset '^probe: record seq=1$' '^probe: record seq=20$' \
    '^probe: records written=20$' '^probe: done mode=records$'
lines="$(grep -ac '^probe: record seq=' "$out")"
if [[ "$lines" == 20 ]]; then
    ok blk-records-count
else
    bad blk-records-count "$lines record lines, want 20"
fi

io_re='^probe: io rw=%s bs=4096 depth=%s queues=%s seconds=1 ops=[1-9][0-9]* errors=0 iops=[1-9][0-9]* kib_s=[1-9][0-9]* lat_p50_us=[0-9]+ lat_p90_us=[0-9]+ lat_p99_us=[0-9]+ lat_max_us=[0-9]+$'
boot blk-io pc "mode=io rw=randread depth=8 seconds=1" "${blk[@]}"
# shellcheck disable=SC2059
expect blk-io 0 reset "$(printf "$io_re" randread 8 1)" '^probe: done mode=io$'
boot blk-io-mq pc "mode=io rw=randrw depth=16 queues=2 seconds=1 size=16777216" "${blk[@]}"
# shellcheck disable=SC2059
expect blk-io-mq 0 reset "$(printf "$io_re" randrw 16 2)" '^probe: done mode=io$'

boot blk-zeroes pc "mode=zeroes offset=4194304" "${blk[@]}"
expect blk-zeroes 0 reset \
    '^probe: zeroes discard=ok discard_nonzero_bytes=[0-9]+ write_zeroes=ok write_zeroes_nonzero_bytes=0$' \
    '^probe: done mode=zeroes$'

# shellcheck disable=SC2054
boot blk-ro-check pc "mode=ro-check" -drive "file=$img,if=none,id=d0,format=raw,readonly=on" \
    -device virtio-blk-pci,drive=d0,disable-legacy=on
expect blk-ro-check 0 reset ' ro=1 serial="" ' \
    '^probe: ro_check ro_feature=1 read_status=0 write_status=1$' '^probe: done mode=ro-check$'

# disk=1 counts transitional (0x1001) and modern (0x1042) functions together.
# shellcheck disable=SC2054
boot blk-disk1 pc "mode=write-verify disk=1 bytes=65536" \
    -drive "file=$img,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0 \
    -drive "file=$img2,if=none,id=d1,format=raw" \
    -device virtio-blk-pci,drive=d1,disable-legacy=on,queue-size=64,indirect_desc=off,serial=second
expect blk-disk1 0 reset '^probe: blk disk=1 .* capacity=32768 .* serial="second" ' \
    '^probe: blk_setup pci_id=0x1042 .* queue_size=64 indirect=0 ' '^probe: done mode=write-verify$'

boot blk-hostile pc "mode=hostile" "${blk[@]}"
expect blk-hostile 0 reset '^probe: hostile case=loop completed=[01] ' \
    '^probe: hostile case=unknown-type completed=1 used_len=[0-9]+ status=2 ' \
    '^probe: hostile_check case=avail-jump ok=1$' '!hostile_check .* ok=0' \
    '^probe: hostile_done cases=16 alive=1$' '^probe: done mode=hostile$'

boot blk-missing pc "mode=write-verify"
expect blk-missing 1 reset '^probe: error reason=device-missing device=blk$'

echo "$passed passed, $failed failed"
((failed == 0))

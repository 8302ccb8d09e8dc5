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
if [[ -n "$khz" && -n "$cycles" ]] && ((cycles >= 100 * khz && cycles < 200 * khz)); then
    ok spin-duration
else
    bad spin-duration "cycles=$cycles for 100 ms at tsc_khz=$khz"
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
if [[ -n "$khz" && -n "$pit_khz" ]] && ((pit_khz * 100 > khz * 99 && pit_khz * 100 < khz * 101)); then
    ok pit-accuracy
else
    bad pit-accuracy "pit says $pit_khz kHz, cpuid says $khz kHz (want within 1%)"
fi

echo "$passed passed, $failed failed"
((failed == 0))

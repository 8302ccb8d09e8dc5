#!/usr/bin/env bash
# QEMU boot time of the probe guest: process start -> exit, median of N.
#
# usage: bench-boot.sh PROBE_ELF [CMDLINE] [--machine microvm|pc] [-n N]
# Prints each run's wall time and "bench: machine=M runs=N median_ms=X
# min_ms=Y max_ms=Z". This is the peer hcnode's own VMM boot is compared
# with (shared/machine-notes.md). Runs are sequential: 2 shared cores.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
elf="${1:?usage: bench-boot.sh PROBE_ELF [CMDLINE] [--machine microvm|pc] [-n N]}"
shift
cmdline=""
machine="microvm"
runs=5
while [[ $# -gt 0 ]]; do
    case "$1" in
        --machine) machine="${2:?}"; shift 2 ;;
        -n) runs="${2:?}"; shift 2 ;;
        *) cmdline="$1"; shift ;;
    esac
done

times=()
for ((i = 1; i <= runs; i++)); do
    err="$("$here/run-in-qemu.sh" "$elf" "$cmdline" --machine "$machine" 2>&1 >/dev/null)" || {
        echo "bench: run $i failed: $err" >&2
        exit 1
    }
    ms="$(sed -n 's/.* wall_ms=\([0-9]*\).*/\1/p' <<<"$err")"
    echo "bench: run=$i wall_ms=$ms"
    times+=("$ms")
done
mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
echo "bench: machine=$machine runs=$runs median_ms=${sorted[$((runs / 2))]}" \
     "min_ms=${sorted[0]} max_ms=${sorted[$((runs - 1))]}"

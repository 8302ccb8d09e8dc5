#!/usr/bin/env bash
# Runs one benchmark in its --smoke mode for deploy/test.sh (CTest label "bench"): the benchmark
# must exit 0 and print its table (a line with the table's column separator " | "). No
# thresholds: smoke runs measure nothing, they prove that every peer and row of the benchmark
# still runs, so a broken benchmark fails CI instead of waiting for the next person who runs it.
#
#   bench/lib/smoke.sh NAME [ARGS...]     runs bench/NAME --smoke ARGS...
set -uo pipefail
name=${1:?usage: smoke.sh NAME [ARGS...]}
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mktemp /tmp/hcnode-bench-smoke.XXXXXX)
trap 'rm -f "$out"' EXIT
"$here/$name" --smoke "$@" | tee "$out"
rc=${PIPESTATUS[0]}
if [[ $rc -ne 0 ]]; then
    echo "FAIL bench/$name --smoke exited $rc"
    exit 1
fi
if ! grep -q ' | ' "$out"; then
    echo "FAIL bench/$name --smoke printed no table"
    exit 1
fi
echo "ok bench/$name --smoke printed its table"

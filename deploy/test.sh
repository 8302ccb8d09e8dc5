#!/usr/bin/env bash
# Runs every hcnode test on this machine: installs what is missing, builds (Debug with ASan +
# UBSan, warnings as errors), runs the unit tests, runs the fuzz targets for 30 s each (clang++-16
# + libFuzzer, tests/fuzz/README.md), brings up a private dev cluster (real Ceph +
# Gluster on loopback), makes the Linux guest's kernel if this machine has none (cached), runs the
# integration tests (real KVM, real Ceph, real Gluster, QEMU as an independent check of the
# guests), runs every benchmark once in its --smoke mode (bench/: no thresholds, each must run and
# print its table), tears the cluster down, and exits non-zero on any failure. The last line is
# always `tests: N passed, N failed, N skipped`, also when the build or the cluster fails (then
# counted as failed); a test that did not run (missing executable) is failed, never skipped.
#
#   ./deploy/test.sh                 everything (≈15–25 min on 2 cores, most of it the build
#                                    and one Linux boot under emulated guest kernel code)
#   ./deploy/test.sh --unit          build + unit tests only (no fuzzing, no cluster, no KVM)
#   ./deploy/test.sh --keep-cluster  leave the test cluster up afterwards (for debugging)
#
# With CI=true a missing component (Ceph, Gluster, /dev/kvm, QEMU, clang++-16) fails its test
# instead of skipping it. The test cluster is separate from the quickstart one (its own
# directory, ports and Gluster address), so both can be up at once.
# Logs: the build in $BUILD/build.log, test output in $BUILD/Testing/Temporary/LastTest*.log,
# cluster logs under $HCNODE_TEST_CLUSTER_DIR (printed on failure).
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HCNODE_TEST_BUILD_DIR:-$repo/build/test}
cluster_dir=${HCNODE_TEST_CLUSTER_DIR:-/tmp/hcnode-test-cluster}
unit_only=0
keep_cluster=0
for arg in "$@"; do
    case $arg in
        --unit) unit_only=1 ;;
        --keep-cluster) keep_cluster=1 ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

t0=$SECONDS
step() { printf '\n=== [%4ds] %s\n' "$((SECONDS - t0))" "$*"; }

passed=0
failed=0
skipped=0
disabled=0
not_run=()   # steps that failed before their tests could run (build, cluster, ...), for the summary
# Adds the counts of one ctest run to the totals, test by test from its JUnit report
# (deploy/lib/junit_counts.py: a missing executable is a failure, a disabled test is not a pass).
# A run that left no report at all failed as a whole: it counts as one failed test.
count_results() {
    local junit=$1 what=$2 p f s d
    if [[ ! -r $junit ]]; then
        failed=$((failed + 1))
        not_run+=("$what: ctest left no report ($junit)")
        return 0
    fi
    read -r p f s d < <(python3 "$repo/deploy/lib/junit_counts.py" "$junit")
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    disabled=$((disabled + d))
}
# A step that failed before its tests ran: count N failed tests (at least 1) and say why.
count_not_run() {
    local n=$1 why=$2
    (( n > 0 )) || n=1
    failed=$((failed + n))
    not_run+=("$why ($n test(s) counted as failed)")
}
summary() {
    if [[ $failed -gt 0 ]]; then
        step "why the failed tests failed (full output above)"
        local r
        for r in "${not_run[@]}"; do echo "--- $r"; done
        python3 "$repo/deploy/lib/junit_failures.py" "$build"/unit.xml "$build"/fuzz.xml \
            "$build"/integration.xml "$build"/bench.xml 2>/dev/null || true
    fi
    step "summary"
    echo "unit + fuzz + integration tests + benchmark smoke runs, $((SECONDS - t0)) s in all"
    [[ $disabled -eq 0 ]] || echo "($disabled disabled test(s), neither passed nor failed)"
    echo "tests: $passed passed, $failed failed, $skipped skipped"
}

step "dependencies"
"$repo/deploy/install-deps.sh"

step "build (Debug, ASan+UBSan, -Werror) in $build"
# shellcheck source=deploy/lib/build.sh
source "$repo/deploy/lib/build.sh"
if ! hcnode_build "$repo" "$build" Debug test.sh -DHCNODE_WERROR=ON; then
    count_not_run 1 "configure or build failed (logs: $build/configure.log, $build/build.log)"
    summary
    exit 1
fi

status=0
rm -f "$build"/unit.xml "$build"/fuzz.xml "$build"/integration.xml "$build"/bench.xml  # no stale reports
step "unit tests"
(cd "$build" && ctest -L unit --output-on-failure --output-junit unit.xml) || status=1
count_results "$build/unit.xml" "unit tests"

if [[ $unit_only -eq 1 ]]; then
    summary
    exit $status
fi

# Needs neither the cluster nor KVM; runs before the cluster takes the CPUs.
step "fuzz tests (30 s per target)"
(cd "$build" && ctest -L fuzz --output-on-failure --output-junit fuzz.xml) || status=1
count_results "$build/fuzz.xml" "fuzz tests"

# The test cluster: own directory, Ceph ports and Gluster address (quickstart's may be up).
export HCNODE_CLUSTER_DIR=$cluster_dir
export HCNODE_CEPH_PORT_BASE=${HCNODE_TEST_CEPH_PORT_BASE:-17800}
export HCNODE_GLUSTER_HOST=${HCNODE_TEST_GLUSTER_HOST:-127.0.0.4}
export HCNODE_GLUSTER_VOLUME=${HCNODE_TEST_GLUSTER_VOLUME:-vmtest}
teardown() {
    if [[ $keep_cluster -eq 1 ]]; then
        echo "test.sh: cluster left up in $cluster_dir (stop: HCNODE_CLUSTER_DIR=$cluster_dir $repo/deploy/devcluster.sh down --purge)"
    else
        step "tear down the test cluster"
        "$repo/deploy/devcluster.sh" down --purge --dir "$cluster_dir" || true
    fi
}
trap teardown EXIT

step "dev cluster up ($cluster_dir)"
# A cluster left over from an interrupted run is rebuilt from nothing, so every run starts clean.
"$repo/deploy/devcluster.sh" down --purge --dir "$cluster_dir" >/dev/null 2>&1 || true
if ! "$repo/deploy/devcluster.sh" up --dir "$cluster_dir"; then
    echo "test.sh: the dev cluster did not come up (logs under $cluster_dir)"
    # Every integration test needed it: each counts as failed, not as skipped or absent.
    n=$(cd "$build" && ctest -N -L integration | sed -n 's/^Total Tests: //p')
    count_not_run "${n:-1}" "the dev cluster did not come up (logs under $cluster_dir): integration tests not run"
    trap - EXIT
    teardown
    summary
    exit 1
fi
eval "$("$repo/deploy/devcluster.sh" env --dir "$cluster_dir")"

# The Linux guest's kernel: built here (cached under ~/.cache/hcnode) when this machine has none
# (no ../shared/guest-kernel beside the checkout, or hardware KVM), so that no Linux-boot test
# spends its time limit on a kernel build. A failed build is not counted here: the Linux tests
# then fail on it themselves (they call kernel.sh too).
step "guest kernel (deploy/guest/kernel.sh: cached, or built once in ~6-7 min)"
if kernel=$("$repo/deploy/guest/kernel.sh" --pvh | tail -n 1) &&
    bzimage=$("$repo/deploy/guest/kernel.sh" | tail -n 1); then
    echo "guest kernel: $kernel, $bzimage"
else
    echo "test.sh: the guest kernel could not be made; the Linux-boot tests will fail on it"
fi

step "integration tests"
(cd "$build" && ctest -L integration --output-on-failure --output-junit integration.xml) || status=1
count_results "$build/integration.xml" "integration tests"

# Every benchmark once in its --smoke mode (bench/lib/smoke.sh): no thresholds, but a benchmark
# that fails or prints no table fails the run. Against the test cluster, with this build.
step "benchmark smoke runs (bench/*: every peer and row once)"
(cd "$build" && ctest -L bench --output-on-failure --output-junit bench.xml) || status=1
count_results "$build/bench.xml" "benchmark smoke runs"

# Tear down before the summary, so that the summary is the last thing printed.
trap - EXIT
teardown
summary
exit $status

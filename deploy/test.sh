#!/usr/bin/env bash
# Runs every hcnode test on this machine: installs what is missing, builds (Debug with ASan +
# UBSan, warnings as errors), runs the unit tests, runs the fuzz targets for 30 s each (clang++-16
# + libFuzzer, tests/fuzz/README.md), brings up a private dev cluster (real Ceph +
# Gluster on loopback), runs the integration tests (real KVM, real Ceph, real Gluster, QEMU as an
# independent check of the guests), tears the cluster down, and exits non-zero on any failure.
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
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

t0=$SECONDS
step() { printf '\n=== [%4ds] %s\n' "$((SECONDS - t0))" "$*"; }

passed=0
failed=0
skipped=0
# Adds the counts of one ctest run (from its JUnit report) to the totals.
count_results() {
    local junit=$1
    [[ -r $junit ]] || return 0
    local t f s
    t=$(grep -o 'tests="[0-9]*"' "$junit" | head -1 | tr -dc 0-9)
    f=$(grep -o 'failures="[0-9]*"' "$junit" | head -1 | tr -dc 0-9)
    s=$(grep -o 'skipped="[0-9]*"' "$junit" | head -1 | tr -dc 0-9)
    passed=$((passed + ${t:-0} - ${f:-0} - ${s:-0}))
    failed=$((failed + ${f:-0}))
    skipped=$((skipped + ${s:-0}))
}
summary() {
    if [[ $failed -gt 0 ]]; then
        step "why the failed tests failed (full output above)"
        python3 "$repo/deploy/lib/junit_failures.py" "$build"/unit.xml "$build"/fuzz.xml \
            "$build"/integration.xml || true
    fi
    step "summary"
    echo "unit + fuzz + integration tests, $((SECONDS - t0)) s in all"
    echo "tests: $passed passed, $failed failed, $skipped skipped"
}

step "dependencies"
"$repo/deploy/install-deps.sh"

step "build (Debug, ASan+UBSan, -Werror) in $build"
# shellcheck source=deploy/lib/build.sh
source "$repo/deploy/lib/build.sh"
hcnode_build "$repo" "$build" Debug test.sh -DHCNODE_WERROR=ON || exit 1

status=0
rm -f "$build"/unit.xml "$build"/fuzz.xml "$build"/integration.xml  # no stale reports
step "unit tests"
(cd "$build" && ctest -L unit --output-on-failure --output-junit unit.xml) || status=1
count_results "$build/unit.xml"

if [[ $unit_only -eq 1 ]]; then
    summary
    exit $status
fi

# Needs neither the cluster nor KVM; runs before the cluster takes the CPUs.
step "fuzz tests (30 s per target)"
(cd "$build" && ctest -L fuzz --output-on-failure --output-junit fuzz.xml) || status=1
count_results "$build/fuzz.xml"

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
    status=1
    summary
    exit 1
fi
eval "$("$repo/deploy/devcluster.sh" env --dir "$cluster_dir")"

step "integration tests"
(cd "$build" && ctest -L integration --output-on-failure --output-junit integration.xml) || status=1
count_results "$build/integration.xml"

# Tear down before the summary, so that the summary is the last thing printed.
trap - EXIT
teardown
summary
exit $status

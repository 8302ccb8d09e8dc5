# Sourced by the integration test scripts (bash): how a test says that a component it needs is
# absent. skip REASON: exit 77 (CTest's SKIP_RETURN_CODE) on a developer machine; with CI=true a
# missing component is a broken CI, so the test FAILS instead (exit 1). The same rule as the C++
# tests' tests/integration/requirements.hpp.
skip() {
    if [[ ${CI:-} == true ]]; then
        echo "FAIL (CI=true, missing component): $*"
        exit 1
    fi
    echo "SKIPPED: $*"
    exit 77
}

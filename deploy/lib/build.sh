# shellcheck shell=bash
# deploy/lib/build.sh - configures and builds hcnode with CMake + Ninja, logs to files, and on
# failure prints the part of the log that matters. Sourced by quickstart.sh and test.sh (and
# bench/boot); never executed.
#
#   hcnode_build REPO BUILD_DIR BUILD_TYPE WHO [extra cmake -D... args]
# Logs: BUILD_DIR/configure.log and BUILD_DIR/build.log. Returns non-zero on failure.
hcnode_build() {
    local repo=$1 build=$2 type=$3 who=$4
    shift 4
    mkdir -p "$build"
    if ! cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >"$build/configure.log" 2>&1; then
        tail -40 "$build/configure.log"
        echo "$who: cmake configure failed (log: $build/configure.log)"
        return 1
    fi
    if ! cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1; then
        grep -E -A5 'error|FAILED' "$build/build.log" | head -80
        echo "$who: build failed (log: $build/build.log)"
        return 1
    fi
    echo "built ($type) in $build; log: $build/build.log"
}

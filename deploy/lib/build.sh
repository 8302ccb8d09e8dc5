# shellcheck shell=bash
# deploy/lib/build.sh - configures and builds hcnode with CMake + Ninja, logs to files, shows
# progress while it builds, and on failure prints the part of the log that matters. Sourced by
# quickstart.sh and test.sh (and bench/boot); never executed.
#
#   hcnode_build REPO BUILD_DIR BUILD_TYPE WHO [cmake -D... args] [-- TARGET...]
# Without targets everything is built; with them only those (and what they need).
# Logs: BUILD_DIR/configure.log and BUILD_DIR/build.log. Returns non-zero on failure.
hcnode_build() {
    local repo=$1 build=$2 type=$3 who=$4
    shift 4
    local cmake_args=() targets=()
    while [[ $# -gt 0 ]]; do
        if [[ $1 == -- ]]; then
            shift
            targets=("$@")
            break
        fi
        cmake_args+=("$1")
        shift
    done
    mkdir -p "$build"
    if ! cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="$type" "${cmake_args[@]}" >"$build/configure.log" 2>&1; then
        tail -40 "$build/configure.log"
        echo "$who: cmake configure failed (log: $build/configure.log)"
        return 1
    fi
    local target_args=()
    [[ ${#targets[@]} -eq 0 ]] || target_args=(--target "${targets[@]}")
    local t0=$SECONDS rc=0
    # Ninja's status line "[done/total]" goes to the log; a line of progress every 20 s tells a
    # person (or a CI log) that the build lives and how far it is.
    cmake --build "$build" -j "$(nproc)" "${target_args[@]}" >"$build/build.log" 2>&1 &
    local pid=$!
    while ! wait_for_exit "$pid" 20; do
        local st
        st=$(grep -o '^\[[0-9]*/[0-9]*\]' "$build/build.log" | tail -n 1)
        printf '%s: building %s ... %s after %d s\n' "$who" "$type" "${st:-[configuring]}" "$((SECONDS - t0))"
    done
    wait "$pid" || rc=$?
    if [[ $rc -ne 0 ]]; then
        grep -E -A5 'error|FAILED' "$build/build.log" | head -80
        echo "$who: build failed (log: $build/build.log)"
        return 1
    fi
    echo "built ($type${targets:+: ${targets[*]}}) in $build in $((SECONDS - t0)) s; log: $build/build.log"
}

# wait_for_exit PID SECONDS: 0 once PID has exited, 1 if it still runs after SECONDS.
wait_for_exit() {
    local pid=$1 i
    for ((i = 0; i < $2 * 4; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    ! kill -0 "$pid" 2>/dev/null
}

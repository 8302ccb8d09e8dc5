#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang++-16 (a CMake sub-project, cached: only
# what changed is rebuilt) and runs each one for a bounded time.
#
#   tests/fuzz/run-fuzzers.sh [--seconds N] [--build-dir DIR] [--jobs J] [TARGET...]
#     --seconds N     run time per target (default 60); CTest uses 30, the long job 3600
#     --build-dir DIR build, corpus and crash artifacts (default: <repo>/build/fuzz)
#     --jobs J        parallel compile jobs (default: nproc)
#     TARGET...       a subset of virtio_queue_fuzz virtio_blk_fuzz elf_loader_fuzz qcow2_image_fuzz
#
# Prints one line per target:
#   fuzz: <target> runs=<executions> seconds=N crashes=<0|1> corpus=<files in the corpus>
# and exits 0 when every target ran clean, 1 on any crash, leak, timeout, out-of-memory or
# build failure (the crashing input's path and the command that reproduces it are printed).
# The corpus grows in DIR/corpus/<target> from run to run, seeded by tests/fuzz/corpus/<target>;
# logs in DIR/logs/<target>.log; crashing inputs in DIR/artifacts/<target>/.
# Without clang++-16 or its libFuzzer runtime (libclang-rt-16-dev) it exits 77 (CTest:
# "Skipped") — unless CI=true, where a missing tool fails the run.
# The compiler can be overridden with HCNODE_FUZZ_CXX.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
seconds=60
build=$repo/build/fuzz
jobs=$(nproc)
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
        --seconds=*) seconds=${1#*=}; shift ;;
        --build-dir) build=${2:?--build-dir needs a value}; shift 2 ;;
        --build-dir=*) build=${1#*=}; shift ;;
        --jobs) jobs=${2:?--jobs needs a value}; shift 2 ;;
        --jobs=*) jobs=${1#*=}; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run-fuzzers.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "run-fuzzers.sh: --seconds must be a positive integer, not '$seconds'" >&2
    exit 2
fi

# A missing tool: skip on a developer machine, fail in CI (tests/integration/requirements.hpp).
missing() {
    if [[ ${CI:-} == true ]]; then
        echo "run-fuzzers.sh: $1 (CI=true: failing)" >&2
        exit 1
    fi
    echo "run-fuzzers.sh: $1: skipped" >&2
    exit 77
}

cxx=${HCNODE_FUZZ_CXX:-clang++-16}
command -v "$cxx" >/dev/null 2>&1 || missing "$cxx not found (apt-get install clang-16 libclang-rt-16-dev)"
command -v cmake >/dev/null 2>&1 || missing "cmake not found"
# clang prints the bare name when the runtime library is not installed.
fuzzer_rt=$("$cxx" -print-file-name=libclang_rt.fuzzer-x86_64.a)
[[ -f $fuzzer_rt ]] || missing "the libFuzzer runtime of $cxx is not installed (libclang-rt-16-dev)"

# --- build (CMake re-runs itself and rebuilds only what changed) -----------------------------
mkdir -p "$build"
build=$(cd "$build" && pwd)
if [[ ! -f $build/CMakeCache.txt ]]; then
    generator=()
    command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
    if ! cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$(command -v "$cxx")" \
            >"$build/configure.log" 2>&1; then
        tail -30 "$build/configure.log"
        echo "run-fuzzers.sh: configure failed (log: $build/configure.log)"
        exit 1
    fi
fi
if ! cmake --build "$build" -j "$jobs" >"$build/build.log" 2>&1; then
    grep -E -A5 'error|FAILED' "$build/build.log" | head -60
    echo "run-fuzzers.sh: build failed (log: $build/build.log)"
    exit 1
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    IFS=';' read -r -a targets <"$build/targets.txt"  # a CMake list: a;b;c
fi

# --- run ------------------------------------------------------------------------------------
# Readable stacks in crash reports: the sanitizer runtime does not find Debian's symlinked
# llvm-symbolizer by itself. UBSan reports with a stack too.
if [[ -z ${ASAN_SYMBOLIZER_PATH:-} ]]; then
    for s in llvm-symbolizer-16 llvm-symbolizer; do
        if command -v "$s" >/dev/null 2>&1; then
            export ASAN_SYMBOLIZER_PATH
            ASAN_SYMBOLIZER_PATH=$(readlink -f "$(command -v "$s")")
            break
        fi
    done
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
mkdir -p "$build/logs"
for t in "${targets[@]}"; do
    bin=$build/$t
    if [[ ! -x $bin ]]; then
        echo "run-fuzzers.sh: no fuzz target '$t' in $build" >&2
        status=1
        continue
    fi
    corpus=$build/corpus/$t
    artifacts=$build/artifacts/$t
    log=$build/logs/$t.log
    mkdir -p "$corpus" "$artifacts"
    dirs=("$corpus")
    [[ -d $here/corpus/$t ]] && dirs+=("$here/corpus/$t")
    before=$(ls "$artifacts")

    rc=0
    "$bin" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
        -detect_leaks=1 -artifact_prefix="$artifacts/" "${dirs[@]}" >"$log" 2>&1 || rc=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    if [[ -z $runs ]]; then
        # No final stats (killed?): the last status line "#<runs> ...".
        runs=$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$log" | tail -1)
    fi
    new_artifacts=$(comm -13 <(echo "$before") <(ls "$artifacts") | grep -E '^(crash|leak|timeout|oom)-' || true)
    crashes=0
    if [[ $rc -ne 0 || -n $new_artifacts ]]; then
        crashes=1
        status=1
    fi
    corpus_n=$(find "$corpus" -maxdepth 1 -type f | wc -l)
    echo "fuzz: $t runs=${runs:-0} seconds=$seconds crashes=$crashes corpus=$corpus_n"
    if [[ $crashes -ne 0 ]]; then
        echo "fuzz: $t FAILED (libFuzzer exit code $rc); the end of its log ($log):"
        grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)' "$log" | tail -40 | sed 's/^/    /'
        if [[ -n $new_artifacts ]]; then
            while read -r a; do
                echo "fuzz: $t crashing input: $artifacts/$a"
                echo "fuzz: $t reproduce: $bin $artifacts/$a"
            done <<<"$new_artifacts"
        else
            echo "fuzz: $t no input was saved (see the log above)"
        fi
    fi
done
exit $status

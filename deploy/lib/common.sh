# shellcheck shell=bash
# deploy/lib/common.sh - helpers shared by deploy/devcluster.sh and its libraries:
# terse logging with timestamps, timings, pid handling by pid file, bounded waits,
# precondition checks (commands, ports, disk space).
#
# Sourced, never executed. Expects `set -euo pipefail` in the caller and these globals:
#   DC_DIR   the cluster directory
#   DC_T0_US start of the current command, in microseconds (see now_us)

# ----------------------------------------------------------------------------------------
# Time and logging
# ----------------------------------------------------------------------------------------

# Microseconds since the epoch (bash 5 EPOCHREALTIME; LC_ALL=C makes the separator a dot).
now_us() {
    local t=${EPOCHREALTIME}
    echo "${t/./}"
}

# Seconds since DC_T0_US with two decimals, e.g. "7.91".
elapsed() {
    local us=$(( $(now_us) - DC_T0_US ))
    printf '%d.%02d' $(( us / 1000000 )) $(( (us % 1000000) / 10000 ))
}

# One terse line on stdout: "[  7.91s] ceph: OSDs started".
log() {
    printf '[%7ss] %s\n' "$(elapsed)" "$*"
}

warn() {
    printf '[%7ss] WARNING: %s\n' "$(elapsed)" "$*" >&2
}

die() {
    printf 'devcluster: ERROR: %s\n' "$*" >&2
    exit 1
}

# Print the last N (default 20) lines of each existing log file to stderr.
show_log_tail() {
    local n=20 f
    if [[ ${1-} =~ ^-n([0-9]+)$ ]]; then n=${BASH_REMATCH[1]}; shift; fi
    for f in "$@"; do
        [[ -s $f ]] || continue
        printf -- '---- last %d lines of %s ----\n' "$n" "$f" >&2
        tail -n "$n" "$f" >&2 || true
    done
}

# Record a phase timing both on stdout ("timing NAME=SECONDS", machine-readable,
# grep '^timing ') and in $DC_DIR/timings.env (NAME=SECONDS, sourceable).
record_timing() {
    local name=$1 secs=${2:-$(elapsed)}
    printf 'timing %s=%s\n' "$name" "$secs"
    printf '%s=%s\n' "$name" "$secs" >> "$DC_DIR/timings.env"
}

# run LOGFILE CMD...: run CMD with stdout+stderr appended to LOGFILE. On failure print the
# command and the tail of LOGFILE, then return the command's status (so `run ... || die`).
run() {
    local logf=$1 rc=0
    shift
    printf '+ %s\n' "$*" >> "$logf"
    # 9>&-: daemons started here must not inherit the lock fd of devcluster.sh.
    "$@" >> "$logf" 2>&1 9>&- || rc=$?
    if (( rc != 0 )); then
        printf 'devcluster: command failed (exit %d): %s\n' "$rc" "$*" >&2
        show_log_tail "$logf"
    fi
    return "$rc"
}

# wait_until TIMEOUT_S INTERVAL_S CMD...: poll CMD until it succeeds. Returns 1 on timeout.
wait_until() {
    local timeout_s=$1 interval=$2 deadline
    shift 2
    deadline=$(( $(now_us) + timeout_s * 1000000 ))
    while true; do
        if "$@"; then return 0; fi
        if (( $(now_us) >= deadline )); then return 1; fi
        sleep "$interval"
    done
}

# ----------------------------------------------------------------------------------------
# Processes, by pid file and command-line marker (never by process name)
# ----------------------------------------------------------------------------------------

# True if PID exists and is not a zombie. (kill -0 succeeds on zombies, and PID 1 here does
# not always reap at once, so a plain kill -0 would make `down` wait for dead processes.)
pid_alive() {
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z && ${stat:0:1} != X ]]
}

# The command line of PID with NULs turned into spaces (empty if gone).
pid_cmdline() {
    tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null || true
}

# pid_is_ours PID MARKER: alive and its command line contains MARKER (e.g. our ceph.conf
# path). Guards against killing an unrelated process that reused a stale pid.
pid_is_ours() {
    local pid=$1 marker=$2
    pid_alive "$pid" || return 1
    [[ $(pid_cmdline "$pid") == *"$marker"* ]]
}

# Print the pid stored in FILE if the file holds a number (nothing otherwise).
read_pidfile() {
    local f=$1 pid=""
    if [[ -r $f ]]; then read -r pid < "$f" 2> /dev/null || true; fi
    if [[ $pid =~ ^[0-9]+$ ]]; then echo "$pid"; fi
}

# pidfile_ours FILE MARKER: print the pid from FILE if that process is alive and ours.
pidfile_ours() {
    local pid
    pid=$(read_pidfile "$1")
    if [[ -n $pid ]] && pid_is_ours "$pid" "$2"; then echo "$pid"; fi
}

any_alive() {
    local p
    for p in "$@"; do
        if pid_alive "$p"; then return 0; fi
    done
    return 1
}

none_alive() {
    ! any_alive "$@"
}

# stop_pids LABEL TIMEOUT_S PID...: SIGTERM all, wait up to TIMEOUT_S for them to exit,
# then SIGKILL what is left and wait up to 10 s more. Returns 1 if any survives.
stop_pids() {
    local label=$1 timeout_s=$2 p left=() pids=()
    shift 2
    # Only plain pids > 1: kill(1) takes 0 as our process group, -N as group N and -1 as every
    # process we may signal (as root: all of them), and pid 1 is never ours to stop.
    for p in "$@"; do
        if [[ $p =~ ^[1-9][0-9]*$ && $p != 1 ]]; then pids+=("$p"); else warn "$label: not signalling '$p'"; fi
    done
    set -- "${pids[@]}"
    (( $# > 0 )) || return 0
    kill -TERM "$@" 2>/dev/null || true
    if ! wait_until "$timeout_s" 0.1 none_alive "$@"; then
        for p in "$@"; do
            if pid_alive "$p"; then left+=("$p"); fi
        done
        warn "$label: pid(s) ${left[*]} ignored SIGTERM for ${timeout_s}s; sending SIGKILL"
        kill -KILL "${left[@]}" 2>/dev/null || true
        if ! wait_until 10 0.1 none_alive "${left[@]}"; then
            warn "$label: pid(s) ${left[*]} still alive after SIGKILL"
            return 1
        fi
    fi
    return 0
}

# ----------------------------------------------------------------------------------------
# Preconditions
# ----------------------------------------------------------------------------------------

# require_cmds "cmd:package" ...: fail with one clear message listing every missing command.
require_cmds() {
    local spec cmd pkg missing=() pkgs=()
    for spec in "$@"; do
        cmd=${spec%%:*}
        pkg=${spec#*:}
        if [[ $cmd == /* ]]; then
            [[ -x $cmd ]] && continue
        elif command -v "$cmd" > /dev/null 2>&1; then
            continue
        fi
        missing+=("$cmd")
        [[ " ${pkgs[*]} " == *" $pkg "* ]] || pkgs+=("$pkg")
    done
    if (( ${#missing[@]} > 0 )); then
        die "missing command(s): ${missing[*]} (Debian package(s): ${pkgs[*]}).
       Install the project's dependencies first: deploy/install-deps.sh"
    fi
}

# require_lib SONAME PACKAGE: a shared library the dev cluster loads at run time.
require_lib() {
    if ! ldconfig -p 2>/dev/null | grep -q "[[:space:]]$1 "; then
        die "missing shared library $1 (Debian package $2).
       Install the project's dependencies first: deploy/install-deps.sh"
    fi
}

# Listening TCP sockets as "ADDR:PORT PID(S)" lines (PIDs may be empty if not visible).
listeners() {
    ss -Hltnp 2>/dev/null | awk '{
        pids = ""; s = $0
        while (match(s, /pid=[0-9]+/)) { pids = pids substr(s, RSTART + 4, RLENGTH - 4) " "; s = substr(s, RSTART + RLENGTH) }
        print $4, pids }'
}

# port_conflicts ADDR PORT_MIN PORT_MAX [OWN_PID...]: print "addr:port held by pid N (cmd)"
# for each listener in the window on ADDR or on a wildcard address, excluding OWN_PIDs.
port_conflicts() {
    local addr=$1 pmin=$2 pmax=$3 line laddr lport pids pid own cmd
    shift 3
    own=" $* "
    while read -r laddr pids; do
        lport=${laddr##*:}
        laddr=${laddr%:*}
        [[ $lport =~ ^[0-9]+$ ]] || continue
        (( lport >= pmin && lport <= pmax )) || continue
        case $laddr in
            "$addr" | 0.0.0.0 | "*" | "[::]" | "[::ffff:$addr]") ;;
            *) continue ;;
        esac
        line="$laddr:$lport"
        if [[ -z $pids ]]; then
            echo "$line held by an unknown process (see: ss -ltnp)"
            continue
        fi
        for pid in $pids; do
            [[ $own == *" $pid "* ]] && continue 2
        done
        for pid in $pids; do
            cmd=$(pid_cmdline "$pid")
            echo "$line held by pid $pid (${cmd:0:100})"
        done
    done < <(listeners)
}

# human-readable bytes from a size like 4G / 512M / 1073741824.
size_to_bytes() {
    local s=$1 n unit
    [[ $s =~ ^([0-9]+)([KMGT]?)i?B?$ ]] || die "bad size '$s' (use e.g. 2G, 4096M)"
    n=${BASH_REMATCH[1]}
    unit=${BASH_REMATCH[2]}
    case $unit in
        K) echo $(( n << 10 )) ;;
        M) echo $(( n << 20 )) ;;
        G) echo $(( n << 30 )) ;;
        T) echo $(( n << 40 )) ;;
        *) echo "$n" ;;
    esac
}

# check_disk PATH NEED_BYTES: the file system holding PATH (or its nearest existing parent)
# must have NEED_BYTES free and stay >= 5 % free afterwards (the mon stops below its
# mon_data_avail_crit). Fails with a clear message otherwise.
check_disk() {
    local p=$1 need=$2 avail total after_pct
    while [[ ! -e $p ]]; do p=$(dirname "$p"); done
    read -r total avail < <(df -P -B1 "$p" | awk 'NR == 2 { print $2, $4 }')
    [[ $avail =~ ^[0-9]+$ ]] || die "cannot read free space of $p (df failed)"
    after_pct=$(( (avail - need) * 100 / total ))
    if (( avail < need || after_pct < 5 )); then
        die "not enough disk space on the file system of $p: $(( avail >> 20 )) MiB free,
       the dev cluster needs $(( need >> 20 )) MiB and leaves >= 5% free (now $(( avail * 100 / total ))% free).
       Free some space, point --dir elsewhere, or lower HCNODE_CEPH_OSD_SIZE."
    fi
}

# shellcheck shell=bash
# deploy/lib/gluster.sh - the Gluster half of the dev cluster: a private glusterd and a
# replica-3 volume (group virt) with three bricks on one loopback address.
#
# Sourced by deploy/devcluster.sh after lib/common.sh. Globals it reads:
#   DC_DIR DC_LOGS DC_LIB DC_TIMEOUT DC_GLUSTER_HOST DC_GLUSTER_VOLUME
#
# What is private and what is not (measured on glusterfs 10.3):
# - glusterd gets its own volfile, working directory, unix socket (the CLI talks to it with
#   --glusterd-sock), pid file and log, all under $DC_DIR/gluster.
# - glusterd listens on port 24007 and that port cannot be moved: glusterd starts bricks and
#   the self-heal daemon with `-s BRICK_HOST` and no port, so they fetch their volfiles from
#   BRICK_HOST:24007. Two instances coexist by binding to different loopback addresses
#   (transport.socket.bind-address = HCNODE_GLUSTER_HOST, bricks inherit it), e.g. 127.0.0.2
#   for the dev cluster and 127.0.0.3 for the benchmark.
# - Brick and self-heal pid files, sockets and logs always go to /var/run/gluster and
#   /var/log/glusterfs. The brick pid file names contain host and brick path (distinct per
#   instance); the self-heal one only the volume name: two instances need distinct volume
#   names (HCNODE_GLUSTER_VOLUME) as well.
#
# Layout of $DC_DIR/gluster:
#   glusterd.vol glusterd.pid glusterd.socket glusterd/ (working dir) bricks/b{1,2,3}
#   log/glusterd.log  pids (processes recorded at `up`: role pid)  .complete

GL_PY=/usr/bin/python3
GL_PORT=24007
GL_RUN=/var/run/gluster

gluster_vars() {
    GL_DIR=$DC_DIR/gluster
    GL_WD=$GL_DIR/glusterd
    GL_VOLFILE=$GL_DIR/glusterd.vol
    GL_SOCK=$GL_DIR/glusterd.socket
    GL_PIDFILE=$GL_DIR/glusterd.pid
    GL_LOGDIR=$GL_DIR/log
    GL_LOG=$GL_LOGDIR/glusterd.log
    GL_BRICKS=$GL_DIR/bricks
    GL_PIDS_REC=$GL_DIR/pids
    GL_HOST=$DC_GLUSTER_HOST
    GL_VOL=$DC_GLUSTER_VOLUME
    GL_HELPER=$DC_LIB/gluster_helper.py
}

# The gluster CLI, talking to our glusterd over its private unix socket; never hangs.
gluster_cli() {
    timeout -k 5 60 gluster --glusterd-sock="$GL_SOCK" --mode=script \
        --log-file="$GL_LOGDIR/cli.log" "$@"
}

gluster_brick_paths() {
    local i
    for i in 1 2 3; do echo "$GL_BRICKS/b$i"; done
}

# glusterd names a brick's pid file after host and path: /a/b/c -> a-b-c.
gluster_brick_pidfile() {
    local p=${1#/}
    echo "$GL_RUN/vols/$GL_VOL/$GL_HOST-${p//\//-}.pid"
}

gluster_shd_pidfile() { echo "$GL_RUN/shd/$GL_VOL/$GL_VOL-shd.pid"; }

# Command-line markers that identify our processes (trailing space: b1 must not match b10).
gluster_brick_marker() { echo "--brick-name $1 "; }
gluster_shd_marker() { echo "-s $GL_HOST --volfile-id shd/$GL_VOL "; }

glusterd_pid() { pidfile_ours "$GL_PIDFILE" "$GL_VOLFILE"; }

# Every live process of ours: "role pid" lines. Sources: pid files (glusterd's own, the
# bricks' and the self-heal daemon's in /var/run/gluster) and the pids recorded at `up`
# (in case a pid file was removed), each checked against its command-line marker.
gluster_our_pids() {
    local pid b role rest seen=" "
    pid=$(glusterd_pid)
    if [[ -n $pid ]]; then echo "glusterd $pid"; seen+="$pid "; fi
    for b in $(gluster_brick_paths); do
        pid=$(pidfile_ours "$(gluster_brick_pidfile "$b")" "$(gluster_brick_marker "$b")")
        if [[ -n $pid && $seen != *" $pid "* ]]; then echo "brick $pid"; seen+="$pid "; fi
    done
    pid=$(pidfile_ours "$(gluster_shd_pidfile)" "$(gluster_shd_marker)")
    if [[ -n $pid && $seen != *" $pid "* ]]; then echo "shd $pid"; seen+="$pid "; fi
    if [[ -r $GL_PIDS_REC ]]; then
        while read -r role pid rest; do
            [[ $seen == *" $pid "* ]] && continue
            case $role in
                glusterd) pid_is_ours "$pid" "$GL_VOLFILE" || continue ;;
                brick) pid_is_ours "$pid" "--brick-name $rest " || continue ;;
                shd) pid_is_ours "$pid" "$(gluster_shd_marker)" || continue ;;
                *) continue ;;
            esac
            echo "$role $pid"
            seen+="$pid "
        done < "$GL_PIDS_REC"
    fi
}

# The self-heal daemon pid file is named after the volume only: refuse to share it with
# another gluster instance that uses the same volume name.
gluster_check_shd_conflict() {
    local pid
    pid=$(read_pidfile "$(gluster_shd_pidfile)")
    [[ -n $pid ]] && pid_alive "$pid" || return 0
    pid_is_ours "$pid" "$(gluster_shd_marker)" && return 0
    die "another gluster instance runs a self-heal daemon for a volume named '$GL_VOL'
       (pid $pid: $(pid_cmdline "$pid" | cut -c1-120)).
       Its pid file $(gluster_shd_pidfile) would clash: set HCNODE_GLUSTER_VOLUME to another name."
}

# "brick PATH PID ONLINE" / "shd - PID ONLINE" lines from `volume status --xml`.
gluster_status_lines() {
    local xml
    xml=$(gluster_cli volume status "$GL_VOL" --xml 2>/dev/null) || return 1
    "$GL_PY" "$GL_HELPER" status <<< "$xml"
}

# True when all three bricks and the self-heal daemon are online; records their pids.
gluster_all_online() {
    local lines n_brick=0 shd_ok=0 kind path pid online
    lines=$(gluster_status_lines) || return 1
    while read -r kind path pid online; do
        [[ $online == 1 && $pid =~ ^[0-9]+$ ]] || continue
        if [[ $kind == brick ]]; then n_brick=$(( n_brick + 1 )); else shd_ok=1; fi
    done <<< "$lines"
    (( n_brick == 3 && shd_ok == 1 )) || return 1
    gluster_record_pids "$lines"
}

# Write $GL_PIDS_REC: "glusterd PID", "brick PID PATH", "shd PID" - what `down` kills.
gluster_record_pids() {
    local kind path pid online
    {
        echo "glusterd $(glusterd_pid)"
        while read -r kind path pid online; do
            [[ $pid =~ ^[0-9]+$ ]] || continue
            if [[ $kind == brick ]]; then echo "brick $pid $path"; else echo "shd $pid"; fi
        done <<< "$1"
    } > "$GL_PIDS_REC"
}

gluster_diag() {
    echo "devcluster: gluster volume $GL_VOL status:" >&2
    gluster_cli volume status "$GL_VOL" >&2 2>&1 || true
    show_log_tail "$GL_LOG"
    local b
    for b in $(gluster_brick_paths); do
        show_log_tail -n10 "$(gluster_brick_log "$b")"
    done
}

# glusterd names brick logs after the brick path: /a/b/c -> /var/log/glusterfs/bricks/a-b-c.log
gluster_brick_log() {
    local p=${1#/}
    echo "/var/log/glusterfs/bricks/${p//\//-}.log"
}

# After `down --purge`: our brick logs and the (empty) per-volume run directories.
gluster_purge_system_files() {
    local b
    for b in $(gluster_brick_paths); do
        rm -f "$(gluster_brick_log "$b")"
    done
    rmdir "$GL_RUN/vols/$GL_VOL" "$GL_RUN/shd/$GL_VOL" 2> /dev/null || true
}

gluster_write_volfile() {
    # The packaged volfile with our working directory, unix socket and bind address.
    sed -e "s#^\([[:space:]]*option working-directory\).*#\1 $GL_WD#" \
        -e "s#^\([[:space:]]*option transport.socket.listen-port\).*#\1 $GL_PORT#" \
        -e "/^end-volume/i\\    option glusterd-sockfile $GL_SOCK\\n    option transport.socket.bind-address $GL_HOST" \
        /etc/glusterfs/glusterd.vol > "$GL_VOLFILE"
    if ! grep -q "working-directory $GL_WD" "$GL_VOLFILE" || ! grep -q "bind-address $GL_HOST" "$GL_VOLFILE"; then
        die "could not derive $GL_VOLFILE from /etc/glusterfs/glusterd.vol"
    fi
}

# Remove pid files of ours that no longer name a live process (after a crash or a reboot
# a stale pid may belong to someone else; glusterd would then think the brick runs).
gluster_clean_stale_pidfiles() {
    local b f
    for b in $(gluster_brick_paths); do
        f=$(gluster_brick_pidfile "$b")
        [[ -e $f && -z $(pidfile_ours "$f" "$(gluster_brick_marker "$b")") ]] && rm -f "$f"
    done
    f=$(gluster_shd_pidfile)
    [[ -e $f && -z $(pidfile_ours "$f" "$(gluster_shd_marker)") ]] && rm -f "$f"
    [[ -e $GL_PIDFILE && -z $(glusterd_pid) ]] && rm -f "$GL_PIDFILE"
    return 0
}

gluster_answers() {
    gluster_cli volume list > /dev/null 2>&1
}

# glusterd's init runs geo-replication's gsyncd (a Python program) 25 times to write a config
# template: ~3.5 s of CPU before glusterd answers, competing with the Ceph OSDs. Geo-
# replication is of no use here, so glusterd runs in a private mount namespace in which
# gsyncd is a stub that only answers `--version` (the host's file is untouched; bricks and
# the self-heal daemon inherit the namespace, which changes nothing else for them).
# HCNODE_GLUSTER_STUB_GSYNCD=0, or no permission for `unshare -m`, starts it plainly.
glusterd_gsyncd_to_stub() {
    local gsyncd
    gsyncd=$(glusterd --print-libexecdir 2> /dev/null)/gsyncd
    [[ ${HCNODE_GLUSTER_STUB_GSYNCD:-1} == 1 && -x $gsyncd ]] || return 1
    command -v mount > /dev/null && unshare -m true 2> /dev/null || return 1
    echo "$gsyncd"
}

glusterd_start() {
    local gsyncd stub=$GL_DIR/gsyncd-stub lf=$DC_LOGS/gluster-setup.log
    local -a cmd=(glusterd -f "$GL_VOLFILE" -p "$GL_PIDFILE" -l "$GL_LOG")
    gluster_clean_stale_pidfiles
    rm -f "$GL_SOCK"
    if gsyncd=$(glusterd_gsyncd_to_stub); then
        printf '#!/bin/sh\n# hcnode devcluster: geo-replication disabled\necho "gsyncd.py (stub)"\n' > "$stub"
        chmod 0755 "$stub"
        # shellcheck disable=SC2016 # $1/$2/$@ belong to the inner sh
        cmd=(unshare -m sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' glusterd-ns "$stub" "$gsyncd" "${cmd[@]}")
    fi
    run "$lf" timeout -k 5 30 "${cmd[@]}" || { show_log_tail "$GL_LOG"; return 1; }
    if ! wait_until 30 0.2 gluster_answers; then
        echo "devcluster: glusterd did not answer on $GL_SOCK within 30 s" >&2
        show_log_tail "$GL_LOG"
        return 1
    fi
}

gluster_wait_online() {
    if ! wait_until "$DC_TIMEOUT" 0.3 gluster_all_online; then
        echo "devcluster: gluster bricks/self-heal daemon not all online within ${DC_TIMEOUT}s" >&2
        gluster_diag
        return 1
    fi
}

gluster_probe() {
    local out
    if ! out=$(timeout -k 5 "$(( DC_TIMEOUT + 10 ))" "$GL_PY" "$GL_HELPER" probe "$GL_HOST" "$GL_PORT" "$GL_VOL" "$DC_TIMEOUT" 2>&1); then
        echo "devcluster: gfapi probe failed: $out" >&2
        gluster_diag
        return 1
    fi
}

# Bring Gluster up from nothing (wipes $GL_DIR; our processes must be stopped).
gluster_create() {
    local lf=$DC_LOGS/gluster-setup.log b bricks=()
    rm -rf "$GL_DIR"
    rm -f "$DC_LOGS"/gluster-*
    mkdir -p "$GL_WD" "$GL_LOGDIR" "$GL_BRICKS"
    cp -r /var/lib/glusterd/groups /var/lib/glusterd/hooks "$GL_WD/"
    gluster_write_volfile
    glusterd_start || return 1
    log "gluster: glusterd up on $GL_HOST:$GL_PORT (cli socket $GL_SOCK)"
    for b in $(gluster_brick_paths); do
        mkdir -p "$b"
        bricks+=("$GL_HOST:$b")
    done
    # force: replica 3 on one host, bricks on the root file system.
    run "$lf" gluster_cli volume create "$GL_VOL" replica 3 "${bricks[@]}" force || return 1
    run "$lf" gluster_cli volume set "$GL_VOL" group virt || return 1
    run "$lf" gluster_cli volume start "$GL_VOL" || { gluster_diag; return 1; }
    gluster_wait_online || return 1
    log "gluster: volume $GL_VOL (replica 3, group virt) started"
    gluster_probe || return 1
    log "gluster: volume usable through gfapi"
    record_timing gluster_usable
    touch "$GL_DIR/.complete"
}

# Bring an existing volume back: glusterd restarts the bricks and the self-heal daemon of
# a started volume itself; if glusterd runs, `volume start force` restarts dead bricks.
gluster_restart() {
    local lf=$DC_LOGS/gluster-setup.log pids
    if [[ -z $(glusterd_pid) ]]; then
        # Leftover bricks of a dead glusterd: stop them so glusterd starts from a clean state.
        pids=$(gluster_our_pids | awk '{ print $2 }')
        # shellcheck disable=SC2086 # word splitting of the pid list is intended
        [[ -z $pids ]] || stop_pids "gluster leftovers" 10 $pids
        glusterd_start || return 1
        log "gluster: glusterd restarted on existing data"
    elif ! gluster_all_online; then
        # glusterd runs but a brick or the self-heal daemon died: start just those.
        run "$lf" gluster_cli volume start "$GL_VOL" force || { gluster_diag; return 1; }
        log "gluster: restarted the missing brick/self-heal processes"
    fi
    gluster_wait_online || return 1
    gluster_probe || return 1
    log "gluster: volume $GL_VOL online and usable through gfapi"
    record_timing gluster_usable
}

# Stop every Gluster process of ours, by pid file / recorded pid (see gluster_our_pids).
gluster_stop() {
    local pids rc=0
    [[ -d $GL_DIR ]] || return 0
    pids=$(gluster_our_pids | awk '{ print $2 }')
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    [[ -z $pids ]] || stop_pids "gluster" 15 $pids || rc=1
    gluster_clean_stale_pidfiles
    rm -f "$GL_SOCK"
    return "$rc"
}

gluster_is_healthy() {
    [[ -n $(glusterd_pid) ]] || return 1
    gluster_all_online || return 1
    timeout -k 5 30 "$GL_PY" "$GL_HELPER" probe "$GL_HOST" "$GL_PORT" "$GL_VOL" 10 > /dev/null 2>&1
}

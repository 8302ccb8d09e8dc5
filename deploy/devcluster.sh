#!/usr/bin/env bash
# deploy/devcluster.sh - a real Ceph cluster and a Gluster volume on one machine, for
# hcnode's integration tests and benchmarks.
#
#   deploy/devcluster.sh up     [--dir DIR]          bring up (idempotent; repairs or rebuilds)
#   deploy/devcluster.sh status [--dir DIR]          summary; exit 0 only if all is healthy
#   deploy/devcluster.sh env    [--dir DIR]          shell exports: eval "$(deploy/devcluster.sh env)"
#   deploy/devcluster.sh down   [--purge] [--dir DIR] stop everything we started (--purge: delete DIR)
#   deploy/devcluster.sh destroy [--dir DIR]          same as down --purge
#
# What comes up:
#   Ceph 16 (Pacific): mon.a, mgr.x, osd.0-2 (BlueStore on files), cephx, 127.0.0.1,
#     pools `rbd` (size 3, min_size 1, rbd pool init) and `hcnode` (cluster state, app
#     `hcnode`), require-min-compat-client mimic (RBD clone v2), user client.hcnode with
#     least privilege (rbd pool, hcnode pool incl. cls_lock, `osd blocklist` add/rm/ls).
#   Gluster 10: a private glusterd and the replica-3 volume `vmstore` (group virt), bricks
#     DIR/gluster/bricks/b{1,2,3} on 127.0.0.2, reachable through gfapi at 127.0.0.2:24007.
#
# `down` keeps the data, so the next `up` only restarts the daemons (a few seconds);
# `down --purge` (or `destroy`) also deletes DIR. `up` after a crash or a reboot (stale pid
# files, daemons gone) restarts the daemons on the existing data; if that does not give a
# healthy cluster within the timeout, or a previous bring-up never finished, it wipes that
# half (Ceph or Gluster) and builds it again.
#
# Settings (environment; recorded in DIR/cluster.env at the first `up`, and that recorded
# value wins afterwards, so `down`/`env`/`status` need only DIR):
#   HCNODE_CLUSTER_DIR     DIR, default /tmp/hcnode-devcluster (--dir overrides)
#   HCNODE_CEPH_PORT_BASE  mon v2 port, default 16800; v1 = BASE+1, other daemons
#                          BASE+2..BASE+99. Two clusters need bases >= 100 apart.
#   HCNODE_CEPH_OSD_SIZE   BlueStore block file per OSD, default 4G (sparse)
#   HCNODE_GLUSTER_HOST    loopback address for glusterd and bricks, default 127.0.0.2
#                          (not 127.0.0.1: the gluster CLI refuses it as a brick host)
#   HCNODE_GLUSTER_VOLUME  default vmstore
#   HCNODE_GLUSTER_PORT    must be 24007 (glusterd starts bricks without a port option, so
#                          they always fetch volfiles from HOST:24007); instances coexist
#                          by HCNODE_GLUSTER_HOST (and distinct volume names) instead.
#   HCNODE_UP_TIMEOUT      seconds for each wait (HEALTH_OK, bricks online, ...), default 120
#
# Output: one line per step with the time since start, plus machine-readable lines
# `timing NAME=SECONDS` (ceph_health_ok, gluster_usable, total), also written to
# DIR/timings.env. Logs: DIR/logs (setup steps), DIR/ceph/log, DIR/gluster/log; bricks and
# the self-heal daemon log to /var/log/glusterfs (glusterd's choice).
#
# Stopping is by pid file only: DIR/ceph/run/ceph-*.pid, DIR/gluster/glusterd.pid, the
# brick and self-heal pid files under /var/run/gluster, and the pids recorded at `up` in
# DIR/gluster/pids; every pid is checked against its command line (our conf path, brick
# path, volume) before it is signalled. SIGTERM, then SIGKILL after a timeout.
#
# Start-up speed (HEALTH_OK in ~4-7 s here, target 20 s; measured by bench/devcluster):
# Ceph and Gluster come up in parallel; OSDs are created and started in parallel; every
# key is in the mon's mkfs keyring; bdev_aio_poll_ms = 20 (each BlueStore device close
# waited 250 ms); the mgr loads only the modules it must (lib/ceph.sh); glusterd skips
# geo-replication's 25 gsyncd runs through a stub in a private mount namespace
# (lib/gluster.sh); waits poll through one librados connection (lib/ceph_helper.py).
#
# Needs root (glusterd/bricks and the ceph daemons run as root here, no systemd).

set -euo pipefail
export LC_ALL=C
PATH=$PATH:/usr/sbin:/sbin

DC_SELF=$(readlink -f "${BASH_SOURCE[0]}")
DC_LIB=$(dirname "$DC_SELF")/lib
DC_T0_US=0

# shellcheck source=lib/common.sh
source "$DC_LIB/common.sh"
# shellcheck source=lib/ceph.sh
source "$DC_LIB/ceph.sh"
# shellcheck source=lib/gluster.sh
source "$DC_LIB/gluster.sh"

# shellcheck disable=SC2034 # read by elapsed() in lib/common.sh
DC_T0_US=$(now_us)

usage() {
    sed -n '2,9p' "$DC_SELF" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

# ----------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------

# The caller's own Ceph client settings (e.g. after `eval "$(devcluster.sh env)"` for
# another cluster) must not leak into our admin commands.
unset CEPH_ARGS CEPH_CONF CEPH_KEYRING

load_settings() {
    local settings=$DC_DIR/cluster.env var hv want
    DC_CEPH_PORT_BASE=${HCNODE_CEPH_PORT_BASE:-16800}
    DC_CEPH_OSD_SIZE=${HCNODE_CEPH_OSD_SIZE:-4G}
    DC_GLUSTER_HOST=${HCNODE_GLUSTER_HOST:-127.0.0.2}
    DC_GLUSTER_VOLUME=${HCNODE_GLUSTER_VOLUME:-vmstore}
    DC_TIMEOUT=${HCNODE_UP_TIMEOUT:-120}
    if [[ -r $settings ]]; then
        # An existing cluster keeps the settings it was built with.
        declare -A rec=()
        local k v
        while IFS='=' read -r k v; do
            [[ $k =~ ^[A-Z_]+$ ]] && rec[$k]=$v
        done < "$settings"
        for var in CEPH_PORT_BASE CEPH_OSD_SIZE GLUSTER_HOST GLUSTER_VOLUME; do
            [[ -n ${rec[HCNODE_$var]-} ]] || continue
            hv=HCNODE_$var
            want=${!hv-}
            if [[ -n $want && $want != "${rec[HCNODE_$var]}" && ${DC_CMD-} == up ]]; then
                warn "HCNODE_$var=$want ignored: the cluster in $DC_DIR was built with ${rec[HCNODE_$var]} (down --purge to change it)"
            fi
            printf -v "DC_$var" '%s' "${rec[HCNODE_$var]}"
        done
    fi
    if ! [[ $DC_CEPH_PORT_BASE =~ ^[0-9]+$ ]] || (( DC_CEPH_PORT_BASE < 1024 || DC_CEPH_PORT_BASE > 65400 )); then
        die "HCNODE_CEPH_PORT_BASE=$DC_CEPH_PORT_BASE: need a number in 1024..65400"
    fi
    [[ $DC_GLUSTER_HOST =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ && $DC_GLUSTER_HOST != 127.0.0.1 ]] ||
        die "HCNODE_GLUSTER_HOST=$DC_GLUSTER_HOST: need a loopback address other than 127.0.0.1 (e.g. 127.0.0.2)"
    [[ $DC_GLUSTER_VOLUME =~ ^[A-Za-z0-9_-]+$ ]] || die "HCNODE_GLUSTER_VOLUME=$DC_GLUSTER_VOLUME: bad volume name"
    [[ $DC_TIMEOUT =~ ^[0-9]+$ ]] || die "HCNODE_UP_TIMEOUT=$DC_TIMEOUT: need seconds"
    if [[ -n ${HCNODE_GLUSTER_PORT-} && $HCNODE_GLUSTER_PORT != "$GL_PORT" ]]; then
        die "HCNODE_GLUSTER_PORT=$HCNODE_GLUSTER_PORT is not supported: glusterd starts its bricks
       without a port, so they always reach glusterd at HOST:$GL_PORT. Run a second instance on
       another loopback address instead (HCNODE_GLUSTER_HOST=127.0.0.3, HCNODE_GLUSTER_VOLUME=...)."
    fi
    DC_LOGS=$DC_DIR/logs
    ceph_vars
    gluster_vars
}

save_settings() {
    [[ -e $DC_DIR/cluster.env ]] && return 0
    cat > "$DC_DIR/cluster.env" <<EOF
HCNODE_CEPH_PORT_BASE=$DC_CEPH_PORT_BASE
HCNODE_CEPH_OSD_SIZE=$DC_CEPH_OSD_SIZE
HCNODE_GLUSTER_HOST=$DC_GLUSTER_HOST
HCNODE_GLUSTER_VOLUME=$DC_GLUSTER_VOLUME
EOF
}

# Serialise up/down on one DIR (a second caller waits, bounded).
take_lock() {
    mkdir -p "$DC_DIR"
    exec 9> "$DC_DIR/.lock"
    flock -w 300 9 || die "another devcluster.sh is working on $DC_DIR for 300 s (lock $DC_DIR/.lock)"
}

# ----------------------------------------------------------------------------------------
# Preconditions
# ----------------------------------------------------------------------------------------

preflight_commands() {
    require_cmds ceph:ceph-common rados:ceph-common rbd:ceph-common ceph-authtool:ceph-common \
        monmaptool:ceph-base ceph-mon:ceph-mon ceph-osd:ceph-osd ceph-mgr:ceph-mgr \
        glusterd:glusterfs-server glusterfsd:glusterfs-server gluster:glusterfs-cli \
        /usr/bin/python3:python3 ss:iproute2 timeout:coreutils flock:util-linux
    /usr/bin/python3 -c 'import rados' 2> /dev/null ||
        die "the Python module rados is missing for /usr/bin/python3 (Debian package python3-rados).
       Install the project's dependencies first: deploy/install-deps.sh"
    require_lib libgfapi.so.0 libgfapi0
    [[ -r /etc/glusterfs/glusterd.vol && -d /var/lib/glusterd/groups && -d /var/lib/glusterd/hooks ]] ||
        die "/etc/glusterfs/glusterd.vol or /var/lib/glusterd/{groups,hooks} missing (Debian package glusterfs-server).
       Install the project's dependencies first: deploy/install-deps.sh"
    (( EUID == 0 )) || die "run as root (glusterd and its bricks need it)"
}

indent() {
    local line
    while IFS= read -r line; do printf '         %s\n' "$line"; done <<< "$1"
}

# Ports we are about to bind must be free (listeners of our own daemons are fine).
preflight_ports() {
    local own conflicts
    own=$(for d in $(ceph_daemons); do ceph_daemon_pid "$d"; done; gluster_our_pids | awk '{ print $2 }')
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    conflicts=$(port_conflicts 127.0.0.1 "$DC_CEPH_PORT_BASE" "$CEPH_MS_MAX" $own)
    if [[ -n $conflicts ]]; then
        die "Ceph port window 127.0.0.1:$DC_CEPH_PORT_BASE-$CEPH_MS_MAX is in use:
$(indent "$conflicts")
       Another dev cluster? Use a base >= 100 away: HCNODE_CEPH_PORT_BASE=$(( DC_CEPH_PORT_BASE + 100 )) (with another --dir)."
    fi
    # shellcheck disable=SC2086
    conflicts=$(port_conflicts "$DC_GLUSTER_HOST" "$GL_PORT" "$GL_PORT" $own)
    if [[ -n $conflicts ]]; then
        die "Gluster port $DC_GLUSTER_HOST:$GL_PORT is in use:
$(indent "$conflicts")
       A system glusterd (listening on all addresses) must be stopped, or use another
       HCNODE_GLUSTER_HOST (e.g. 127.0.0.3) with another --dir."
    fi
}

# The OSD block files are sparse (bluestore_block_preallocate_file is off) but can grow to
# HCNODE_CEPH_OSD_SIZE each: a new cluster needs room for all three plus 1 GiB; a restart
# on existing data just 1 GiB.
preflight_disk() {
    local need=$(( 1 << 30 ))
    if [[ ${1-} == create || ! -f $CEPH_DIR/.complete ]]; then
        need=$(( need + 3 * $(size_to_bytes "$DC_CEPH_OSD_SIZE") ))
    fi
    check_disk "$DC_DIR" "$need"
}

# ----------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------

ceph_up() {
    local rc=0
    if [[ -f $CEPH_DIR/.complete ]]; then
        ceph_restart || rc=$?
        (( rc != 0 )) || return 0
        if (( rc == 3 )); then
            # All OSDs up and PGs clean, only a health warning (e.g. disk space): a rebuild
            # would not help and would lose the data.
            echo "devcluster: Ceph runs but is not HEALTH_OK (see the health detail above); not rebuilding" >&2
            return 1
        fi
        warn "ceph: restart on the existing data failed; wiping DIR/ceph and building it again"
    elif [[ -e $CEPH_DIR ]]; then
        log "ceph: incomplete earlier bring-up found; wiping DIR/ceph and building it again"
    fi
    ceph_stop || return 1
    preflight_disk create
    ceph_create
}

gluster_up() {
    if [[ -f $GL_DIR/.complete ]]; then
        if gluster_restart; then return 0; fi
        warn "gluster: restart on the existing data failed; wiping DIR/gluster and building it again"
    elif [[ -e $GL_DIR ]]; then
        log "gluster: incomplete earlier bring-up found; wiping DIR/gluster and building it again"
    fi
    gluster_stop || return 1
    gluster_create
}

print_where() {
    cat <<EOF
  ceph:    conf $CEPH_CONF_FILE  mon 127.0.0.1:$CEPH_MON_PORT
           keyrings $CEPH_HCNODE_KR (client.hcnode), $CEPH_ADMIN_KR
           pools rbd, hcnode; logs $CEPH_LOG
  gluster: volume gluster://$GL_HOST:$GL_PORT/$GL_VOL  bricks $GL_BRICKS/b{1,2,3}
           logs $GL_LOGDIR, /var/log/glusterfs/{bricks,glustershd.log}
  setup logs $DC_LOGS; use: eval "\$($DC_SELF env --dir $DC_DIR)"
EOF
}

cmd_up() {
    preflight_commands
    take_lock
    mkdir -p "$DC_LOGS"
    : > "$DC_DIR/timings.env"
    log "devcluster: up in $DC_DIR (ceph port base $DC_CEPH_PORT_BASE, gluster $DC_GLUSTER_HOST/$DC_GLUSTER_VOLUME)"
    local ceph_ok=0 gl_ok=0
    if [[ -f $CEPH_DIR/.complete ]] && ceph_is_healthy; then ceph_ok=1; fi
    if [[ -f $GL_DIR/.complete ]] && gluster_is_healthy; then gl_ok=1; fi
    if (( ceph_ok && gl_ok )); then
        log "devcluster: already up and healthy"
        record_timing ceph_health_ok
        record_timing gluster_usable
        record_timing total
        print_where
        return 0
    fi
    gluster_check_shd_conflict
    preflight_ports
    preflight_disk
    save_settings

    # Gluster in the background, Ceph in the foreground: both mostly wait on daemons.
    local gl_pid="" rc=0
    if (( !gl_ok )); then
        gluster_up &
        gl_pid=$!
    else
        log "gluster: already healthy"
        record_timing gluster_usable
    fi
    if (( !ceph_ok )); then
        ceph_up || rc=1
    else
        log "ceph: already healthy"
        record_timing ceph_health_ok
    fi
    if [[ -n $gl_pid ]]; then wait "$gl_pid" || rc=1; fi
    if (( rc != 0 )); then
        die "bring-up failed (details above; setup logs in $DC_LOGS). The half that came up keeps running;
       retry with '$DC_SELF up --dir $DC_DIR' or clean up with '$DC_SELF down --purge --dir $DC_DIR'."
    fi
    record_timing total
    log "devcluster: up and healthy in $(elapsed) s"
    print_where
}

# Processes of ours that lost their pid file (found by executable AND our DIR in the
# command line, never by name alone): the last safety net of `down`.
stray_pids() {
    local p exe
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2> /dev/null) || continue
        case ${exe##*/} in
            ceph-mon | ceph-mgr | ceph-osd | glusterd | glusterfsd | glusterfs) ;;
            *) continue ;;
        esac
        if [[ $(pid_cmdline "${p#/proc/}") == *"$DC_DIR/"* ]]; then echo "${p#/proc/}"; fi
    done
}

cmd_down() {
    local purge=$1 rc=0 strays
    if [[ ! -d $DC_DIR ]]; then
        log "devcluster: nothing at $DC_DIR"
        return 0
    fi
    take_lock
    ceph_stop || rc=1
    log "ceph: stopped"
    gluster_stop || rc=1
    log "gluster: stopped"
    strays=$(stray_pids)
    if [[ -n $strays ]]; then
        warn "stopping processes of ours without pid file: $strays"
        # shellcheck disable=SC2086
        stop_pids "strays" 10 $strays || rc=1
    fi
    if (( purge )); then
        # Refuse to delete something that does not look like a dev cluster directory.
        [[ $DC_DIR != / && ( -e $DC_DIR/cluster.env || -d $DC_DIR/ceph || -d $DC_DIR/gluster || -d $DC_DIR/logs ) ]] ||
            die "$DC_DIR does not look like a dev cluster directory; not deleting it"
        rm -rf "$DC_DIR"
        gluster_purge_system_files
        log "devcluster: $DC_DIR deleted"
    else
        log "devcluster: data kept in $DC_DIR (next up restarts it; down --purge deletes it)"
    fi
    (( rc == 0 )) || die "some processes could not be stopped (see above)"
}

cmd_status() {
    local rc=0 d pid
    if [[ ! -f $CEPH_DIR/.complete && ! -f $GL_DIR/.complete ]]; then
        echo "devcluster: no cluster at $DC_DIR (run: $DC_SELF up --dir $DC_DIR)"
        return 1
    fi
    echo "dev cluster $DC_DIR"
    printf 'ceph daemons:'
    for d in $(ceph_daemons); do
        pid=$(ceph_daemon_pid "$d")
        printf ' %s=%s' "$d" "${pid:-DOWN}"
    done
    echo
    if ceph_is_healthy; then
        echo "ceph: HEALTH_OK"
    else
        echo "ceph: NOT HEALTHY"
        rc=1
    fi
    if ceph_any_running; then
        ceph_admin -s 2>&1 | sed -n '/^  services:/,/^  io:/p' | grep -v '^  io:' | sed 's/^/  /' || true
    fi
    pid=$(glusterd_pid)
    echo "glusterd: ${pid:-DOWN} ($GL_HOST:$GL_PORT)"
    if [[ -n $pid ]]; then
        local kind path gpid online
        while read -r kind path gpid online; do
            [[ $online == 1 ]] && online=online || online=OFFLINE
            if [[ $kind == brick ]]; then
                printf '  brick %s:%s pid %s %s\n' "$GL_HOST" "$path" "$gpid" "$online"
            else
                printf '  self-heal daemon pid %s %s\n' "$gpid" "$online"
            fi
        done < <(gluster_status_lines || echo "? volume-status-failed - 0")
    fi
    if gluster_is_healthy; then
        echo "gluster: volume $GL_VOL online and usable (gfapi)"
    else
        echo "gluster: NOT HEALTHY"
        rc=1
    fi
    return "$rc"
}

cmd_env() {
    if [[ ! -f $CEPH_DIR/.complete || ! -f $GL_DIR/.complete ]]; then
        echo "devcluster: warning: the cluster at $DC_DIR is not (fully) set up; run: $DC_SELF up --dir $DC_DIR" >&2
    fi
    local kv
    [[ $DC_DIR != *"'"* ]] || die "the cluster directory must not contain a single quote"
    for kv in \
        "HCNODE_CLUSTER_DIR=$DC_DIR" \
        "HCNODE_CEPH_CONF=$CEPH_CONF_FILE" \
        "HCNODE_CEPH_ID=hcnode" \
        "HCNODE_CEPH_KEYRING=$CEPH_HCNODE_KR" \
        "HCNODE_CEPH_ADMIN_KEYRING=$CEPH_ADMIN_KR" \
        "HCNODE_CEPH_PORT_BASE=$DC_CEPH_PORT_BASE" \
        "HCNODE_RBD_POOL=rbd" \
        "HCNODE_STATE_POOL=hcnode" \
        "HCNODE_GLUSTER_HOST=$GL_HOST" \
        "HCNODE_GLUSTER_VOLUME=$GL_VOL" \
        "HCNODE_GLUSTER_PORT=$GL_PORT" \
        "CEPH_CONF=$CEPH_CONF_FILE" \
        "CEPH_KEYRING=$CEPH_HCNODE_KR" \
        "CEPH_ARGS=--id hcnode"; do
        printf "export %s='%s'\n" "${kv%%=*}" "${kv#*=}"
    done
    echo "# ceph/rbd/rados now act as client.hcnode. As client.admin: env -u CEPH_ARGS -u CEPH_KEYRING ceph -s"
}

main() {
    local dir="" purge=0
    DC_CMD=${1-}
    [[ -n $DC_CMD ]] || usage
    shift
    while (( $# > 0 )); do
        case $1 in
            --dir) [[ $# -ge 2 ]] || usage; dir=$2; shift 2 ;;
            --dir=*) dir=${1#--dir=}; shift ;;
            --purge) purge=1; shift ;;
            -h | --help) usage 0 ;;
            *) echo "devcluster: unknown argument '$1'" >&2; usage ;;
        esac
    done
    dir=${dir:-${HCNODE_CLUSTER_DIR:-/tmp/hcnode-devcluster}}
    [[ $dir == /* ]] || dir=$PWD/$dir
    DC_DIR=${dir%/}
    [[ -n $DC_DIR ]] || die "refusing to use / as the cluster directory"
    load_settings
    case $DC_CMD in
        up) cmd_up ;;
        down) cmd_down "$purge" ;;
        destroy) cmd_down 1 ;;
        status) cmd_status ;;
        env) cmd_env ;;
        -h | --help | help) usage 0 ;;
        *) echo "devcluster: unknown command '$DC_CMD'" >&2; usage ;;
    esac
}

main "$@"

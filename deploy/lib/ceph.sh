# shellcheck shell=bash
# deploy/lib/ceph.sh - the Ceph half of the dev cluster: 1 mon (a), 1 mgr (x), 3 OSDs
# (0..2, BlueStore on files), cephx on, on 127.0.0.1, everything under $DC_DIR/ceph.
#
# Sourced by deploy/devcluster.sh after lib/common.sh. Globals it reads:
#   DC_DIR DC_LOGS DC_LIB DC_TIMEOUT DC_CEPH_PORT_BASE DC_CEPH_OSD_SIZE
#
# Ports: mon v2 = BASE, mon v1 = BASE+1, every other daemon binds in [BASE+2, BASE+99]
# (ms_bind_port_min/max), so clusters whose bases are >= 100 apart never collide.
#
# Layout of $DC_DIR/ceph:
#   ceph.conf  ceph.client.admin.keyring  ceph.client.hcnode.keyring  .complete
#   mon/ceph-a  mgr/ceph-x  osd/ceph-N (data + keyring; OSD block is osd/ceph-N/block)
#   run/ (pid files, admin sockets)  log/ (daemon and client logs)  crash/

CEPH_OSD_IDS=(0 1 2)
CEPH_PY=/usr/bin/python3

ceph_vars() {
    CEPH_DIR=$DC_DIR/ceph
    CEPH_CONF_FILE=$CEPH_DIR/ceph.conf
    CEPH_ADMIN_KR=$CEPH_DIR/ceph.client.admin.keyring
    CEPH_HCNODE_KR=$CEPH_DIR/ceph.client.hcnode.keyring
    CEPH_RUN=$CEPH_DIR/run
    CEPH_LOG=$CEPH_DIR/log
    CEPH_MON_PORT=$DC_CEPH_PORT_BASE
    CEPH_MS_MIN=$(( DC_CEPH_PORT_BASE + 2 ))
    CEPH_MS_MAX=$(( DC_CEPH_PORT_BASE + 99 ))
    CEPH_HELPER=$DC_LIB/ceph_helper.py
}

# ceph CLI as client.admin of this cluster; never hangs (connect timeout + hard timeout).
ceph_admin() {
    timeout -k 5 60 ceph -c "$CEPH_CONF_FILE" -n client.admin -k "$CEPH_ADMIN_KR" \
        --connect-timeout 15 "$@"
}

ceph_helper() {
    local sub=$1
    shift
    "$CEPH_PY" "$CEPH_HELPER" "$sub" "$CEPH_CONF_FILE" client.admin "$CEPH_ADMIN_KR" "$@"
}

# Daemon names are TYPE.ID: mon.a mgr.x osd.0 osd.1 osd.2
ceph_daemons() {
    local i
    echo mon.a mgr.x
    for i in "${CEPH_OSD_IDS[@]}"; do echo "osd.$i"; done
}

ceph_pidfile() { echo "$CEPH_RUN/ceph-$1.pid"; }

# Print the pid of daemon NAME if it runs (pid file + command line names our ceph.conf).
ceph_daemon_pid() {
    pidfile_ours "$(ceph_pidfile "$1")" "$CEPH_CONF_FILE"
}

ceph_all_running() {
    local d
    for d in $(ceph_daemons); do
        [[ -n $(ceph_daemon_pid "$d") ]] || return 1
    done
}

ceph_any_running() {
    local d
    for d in $(ceph_daemons); do
        [[ -z $(ceph_daemon_pid "$d") ]] || return 0
    done
    return 1
}

ceph_daemon_log() { echo "$CEPH_LOG/ceph-$1.log"; }

# Start daemon NAME (mon.a, osd.1, ...). The ceph daemons fork only once initialised, so a
# non-zero exit here means it did not come up; show its logs then.
ceph_start_daemon() {
    local name=$1 type id out
    type=${name%%.*}
    id=${name#*.}
    out=$DC_LOGS/ceph-$name.out
    : > "$out"
    rm -f "$(ceph_pidfile "$name")"
    if ! run "$out" timeout -k 5 "$DC_TIMEOUT" "ceph-$type" -c "$CEPH_CONF_FILE" -i "$id"; then
        show_log_tail "$(ceph_daemon_log "$name")"
        return 1
    fi
}

ceph_write_conf() {
    local fsid=$1 block_bytes
    block_bytes=$(size_to_bytes "$DC_CEPH_OSD_SIZE")
    cat > "$CEPH_CONF_FILE" <<EOF
# Written by deploy/devcluster.sh - a throwaway dev cluster on loopback. Do not edit.
[global]
fsid = $fsid
mon_initial_members = a
mon_host = [v2:127.0.0.1:$CEPH_MON_PORT,v1:127.0.0.1:$(( CEPH_MON_PORT + 1 ))]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_port_min = $CEPH_MS_MIN
ms_bind_port_max = $CEPH_MS_MAX
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
# \$name is client.admin, client.hcnode, ...: ceph.client.hcnode.keyring
keyring = $CEPH_DIR/\$cluster.\$name.keyring
run_dir = $CEPH_RUN
crash_dir = $CEPH_DIR/crash
# One host, three OSDs: replicate across OSDs, not hosts.
osd_crush_chooseleaf_type = 0
osd_pool_default_size = 3
osd_pool_default_min_size = 1
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
# RBD clone v2 (clones of unprotected snapshots).
mon_osd_initial_require_min_compat_client = mimic
# Disks here are often less than 30% free.
mon_data_avail_warn = 5
mon_data_avail_crit = 2
# Fast start-up and fast fencing (blocklist) on a one-machine cluster.
paxos_propose_interval = 0.05
mon_mgr_digest_period = 1
mgr_stats_period = 1
mgr_tick_period = 1
osd_mon_report_interval = 1
mgr_initial_modules = iostat

[mon]
mon_data = $CEPH_DIR/mon/\$cluster-\$id
keyring = $CEPH_DIR/mon/\$cluster-\$id/keyring
log_file = $CEPH_LOG/\$cluster-\$name.log
mon_cluster_log_file = $CEPH_LOG/\$cluster.log
pid_file = $CEPH_RUN/\$cluster-\$name.pid
admin_socket = $CEPH_RUN/\$cluster-\$name.asok

[mgr]
mgr_data = $CEPH_DIR/mgr/\$cluster-\$id
# Only the modules Pacific always runs plus iostat (see ceph_mgr_modules).
mgr_module_path = $CEPH_DIR/mgr/modules
keyring = $CEPH_DIR/mgr/\$cluster-\$id/keyring
log_file = $CEPH_LOG/\$cluster-\$name.log
pid_file = $CEPH_RUN/\$cluster-\$name.pid
admin_socket = $CEPH_RUN/\$cluster-\$name.asok

[osd]
osd_data = $CEPH_DIR/osd/\$cluster-\$id
keyring = $CEPH_DIR/osd/\$cluster-\$id/keyring
log_file = $CEPH_LOG/\$cluster-\$name.log
pid_file = $CEPH_RUN/\$cluster-\$name.pid
admin_socket = $CEPH_RUN/\$cluster-\$name.asok
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = $block_bytes
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false
bluestore_fsck_on_umount = false
# The aio thread polls every bdev_aio_poll_ms and every device close waits for it: 250 ms
# by default, ~8 closes per OSD between mkfs and boot.
bdev_aio_poll_ms = 20
osd_memory_target = 1073741824

[client]
log_file = $CEPH_LOG/\$cluster-\$name.log
EOF
}

# The mgr imports every module it finds (26 in Pacific, ~5 s of Python on this machine)
# before it becomes active, and PGs are not reported clean before that. Give it a module
# directory holding only the always-on modules, iostat and the shared helpers.
CEPH_MGR_MODULES=(balancer crash devicehealth orchestrator pg_autoscaler progress rbd_support
    status telemetry volumes iostat osd_perf_query mgr_module.py mgr_util.py)

ceph_mgr_modules() {
    local src=/usr/share/ceph/mgr dst=$CEPH_DIR/mgr/modules m
    mkdir -p "$dst"
    for m in "${CEPH_MGR_MODULES[@]}"; do
        [[ -e $src/$m ]] && ln -sfn "$src/$m" "$dst/$m"
    done
    return 0
}

# ceph_make_keyrings: mon., client.admin, mgr.x and client.hcnode, all imported into the
# mon's mkfs keyring so the mon starts with every key (no `auth get-or-create` round trips).
ceph_make_keyrings() {
    local lf=$1 boot=$CEPH_DIR/mon-bootstrap.keyring mgr_kr=$CEPH_DIR/mgr/ceph-x/keyring
    run "$lf" ceph-authtool --create-keyring "$boot" --gen-key -n mon. --cap mon 'allow *' || return 1
    run "$lf" ceph-authtool --create-keyring "$CEPH_ADMIN_KR" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' || return 1
    run "$lf" ceph-authtool --create-keyring "$mgr_kr" --gen-key -n mgr.x \
        --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' || return 1
    # client.hcnode, least privilege:
    #  mon: profile rbd (read maps; blocklist add of one client address only) plus the
    #       `osd blocklist [range] add|rm` and `osd blocklist ls` commands (fence/unfence
    #       nodes; Pacific has `ls` as its own command prefix). Not `osd blocklist clear`.
    #  osd: rbd images in pool rbd; RBD or raw RADOS objects with cls_lock in pool hcnode
    #       (profile rbd grants rwx on the pool, i.e. class-read/class-write too);
    #  mgr: the rbd_support module for both pools.
    run "$lf" ceph-authtool --create-keyring "$CEPH_HCNODE_KR" --gen-key -n client.hcnode \
        --cap mon 'profile rbd, allow command "osd blocklist", allow command "osd blocklist ls"' \
        --cap osd 'profile rbd pool=rbd, profile rbd pool=hcnode' \
        --cap mgr 'profile rbd pool=rbd, profile rbd pool=hcnode' || return 1
    run "$lf" ceph-authtool "$boot" --import-keyring "$CEPH_ADMIN_KR" || return 1
    run "$lf" ceph-authtool "$boot" --import-keyring "$mgr_kr" || return 1
    run "$lf" ceph-authtool "$boot" --import-keyring "$CEPH_HCNODE_KR" || return 1
    chmod 0644 "$CEPH_HCNODE_KR"
}

# Create, register, mkfs and start OSD ID. Runs in the background, one per OSD.
ceph_osd_create() {
    local id=$1 lf=$DC_LOGS/ceph-osd.$1.setup.log data=$CEPH_DIR/osd/ceph-$1 uuid key
    uuid=$(cat /proc/sys/kernel/random/uuid)
    key=$(ceph-authtool --gen-print-key)
    mkdir -p "$data"
    printf '{"cephx_secret": "%s"}\n' "$key" > "$data/new.json"
    run "$lf" ceph_admin osd new "$uuid" "$id" -i "$data/new.json" || return 1
    rm -f "$data/new.json"
    run "$lf" ceph-authtool --create-keyring "$data/keyring" --name "osd.$id" --add-key "$key" || return 1
    if ! run "$lf" timeout -k 5 "$DC_TIMEOUT" ceph-osd -c "$CEPH_CONF_FILE" -i "$id" --mkfs --osd-uuid "$uuid"; then
        show_log_tail "$(ceph_daemon_log "osd.$id")"
        return 1
    fi
    ceph_start_daemon "osd.$id"
}

# The pools, their applications and the clone-v2 compat level, in one connection.
ceph_create_pools() {
    ceph_helper mon-commands <<'EOF'
{"prefix": "osd pool create", "pool": "rbd", "pg_num": 16, "pgp_num": 16, "pool_type": "replicated"}
{"prefix": "osd pool application enable", "pool": "rbd", "app": "rbd"}
{"prefix": "osd pool create", "pool": "hcnode", "pg_num": 8, "pgp_num": 8, "pool_type": "replicated"}
{"prefix": "osd pool application enable", "pool": "hcnode", "app": "hcnode"}
{"prefix": "osd set-require-min-compat-client", "version": "mimic"}
EOF
}

# Wait for HEALTH_OK (bounded); on failure show `ceph -s` and the daemons' log tails.
# Pools: rbd, hcnode and the mgr's device_health_metrics (created once the mgr is active;
# its PG is briefly unknown, which HEALTH_OK alone does not show).
ceph_wait_health() {
    local lf=$DC_LOGS/ceph-health.log d rc=0
    run "$lf" ceph_helper wait-health "$DC_TIMEOUT" 3 || rc=$?
    (( rc != 0 )) || return 0
    echo "devcluster: Ceph did not reach HEALTH_OK within ${DC_TIMEOUT}s" >&2
    ceph_admin -s >&2 2>&1 || true
    for d in $(ceph_daemons); do
        [[ -n $(ceph_daemon_pid "$d") ]] || echo "devcluster: ceph $d is not running" >&2
    done
    show_log_tail "$CEPH_LOG/ceph-mon.a.log" "$CEPH_LOG/ceph-mgr.x.log"
    for d in "${CEPH_OSD_IDS[@]}"; do
        show_log_tail -n10 "$CEPH_LOG/ceph-osd.$d.log"
    done
    ceph_admin health detail >&2 2>&1 || true
    return "$rc"
}

# Bring Ceph up from nothing (wipes $CEPH_DIR).
ceph_create() {
    local lf=$DC_LOGS/ceph-setup.log fsid pids=() p i rc=0 pool_pid
    rm -rf "$CEPH_DIR"
    rm -f "$DC_LOGS"/ceph-*
    mkdir -p "$CEPH_RUN" "$CEPH_LOG" "$CEPH_DIR/crash" "$CEPH_DIR/mon" "$CEPH_DIR/mgr/ceph-x" "$CEPH_DIR/osd"
    fsid=$(cat /proc/sys/kernel/random/uuid)
    ceph_write_conf "$fsid"
    ceph_mgr_modules
    ceph_make_keyrings "$lf" || return 1
    run "$lf" monmaptool --create --fsid "$fsid" \
        --addv a "[v2:127.0.0.1:$CEPH_MON_PORT,v1:127.0.0.1:$(( CEPH_MON_PORT + 1 ))]" \
        "$CEPH_DIR/monmap" || return 1
    run "$lf" ceph-mon -c "$CEPH_CONF_FILE" --mkfs -i a --monmap "$CEPH_DIR/monmap" \
        --keyring "$CEPH_DIR/mon-bootstrap.keyring" || return 1
    rm -f "$CEPH_DIR/mon-bootstrap.keyring" "$CEPH_DIR/monmap"
    ceph_start_daemon mon.a || return 1
    log "ceph: mon.a up on 127.0.0.1:$CEPH_MON_PORT (msgr2) / $(( CEPH_MON_PORT + 1 )) (v1)"

    # Everything below needs only the mon: run it concurrently.
    ceph_start_daemon mgr.x &
    pids+=($!)
    for i in "${CEPH_OSD_IDS[@]}"; do
        ceph_osd_create "$i" &
        pids+=($!)
    done
    run "$lf" ceph_create_pools &
    pool_pid=$!
    for p in "${pids[@]}"; do
        wait "$p" || rc=1
    done
    (( rc == 0 )) || return 1
    log "ceph: mgr.x and ${#CEPH_OSD_IDS[@]} OSDs (BlueStore, ${DC_CEPH_OSD_SIZE} each) started"
    wait "$pool_pid" || return 1
    log "ceph: pools rbd and hcnode created"

    ceph_wait_health || return 1
    log "ceph: HEALTH_OK"
    record_timing ceph_health_ok

    run "$lf" timeout -k 5 60 rbd -c "$CEPH_CONF_FILE" -n client.admin -k "$CEPH_ADMIN_KR" pool init rbd || return 1
    ceph_check_hcnode_user || return 1
    log "ceph: rbd pool initialised; client.hcnode can do I/O, cls_lock and blocklist"
    touch "$CEPH_DIR/.complete"
}

# client.hcnode must be able to: write/read/lock objects in pool hcnode, list/add/remove
# blocklist entries (fencing). A cheap, one-connection check.
ceph_check_hcnode_user() {
    local lf=$DC_LOGS/ceph-setup.log
    run "$lf" "$CEPH_PY" "$CEPH_HELPER" check-client "$CEPH_CONF_FILE" client.hcnode "$CEPH_HCNODE_KR" hcnode || return 1
    run "$lf" "$CEPH_PY" "$CEPH_HELPER" mon-commands "$CEPH_CONF_FILE" client.hcnode "$CEPH_HCNODE_KR" <<'EOF' || return 1
{"prefix": "osd blocklist", "blocklistop": "add", "addr": "127.0.0.254:0/4242", "expire": 60.0}
{"prefix": "osd blocklist", "blocklistop": "rm", "addr": "127.0.0.254:0/4242"}
{"prefix": "osd blocklist", "range": "range", "blocklistop": "add", "addr": "127.0.0.254/32", "expire": 60.0}
{"prefix": "osd blocklist", "range": "range", "blocklistop": "rm", "addr": "127.0.0.254/32"}
EOF
}

# Restart the daemons that are not running on the existing data.
ceph_restart() {
    local d pids=() p rc=0
    ceph_mgr_modules
    if [[ -z $(ceph_daemon_pid mon.a) ]]; then
        ceph_start_daemon mon.a || return 1
        log "ceph: mon.a restarted"
    fi
    for d in $(ceph_daemons); do
        [[ $d == mon.a || -n $(ceph_daemon_pid "$d") ]] && continue
        ceph_start_daemon "$d" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do
        wait "$p" || rc=1
    done
    (( rc == 0 )) || return 1
    log "ceph: ${#pids[@]} daemon(s) restarted on existing data"
    ceph_wait_health || return $?
    log "ceph: HEALTH_OK"
    record_timing ceph_health_ok
}

# Stop every Ceph daemon of this cluster by pid file: OSDs and mgr first, then the mon.
ceph_stop() {
    local d pid pids=() mon_pid rc=0
    [[ -d $CEPH_RUN ]] || return 0
    for d in $(ceph_daemons); do
        pid=$(ceph_daemon_pid "$d")
        [[ -n $pid ]] || continue
        if [[ $d == mon.a ]]; then mon_pid=$pid; else pids+=("$pid"); fi
    done
    stop_pids "ceph osd/mgr" 20 "${pids[@]}" || rc=1
    if [[ -n ${mon_pid-} ]]; then stop_pids "ceph mon" 20 "$mon_pid" || rc=1; fi
    for d in $(ceph_daemons); do
        [[ -n $(ceph_daemon_pid "$d") ]] && continue
        rm -f "$(ceph_pidfile "$d")" "$CEPH_RUN/ceph-$d.asok"
    done
    return "$rc"
}

# Quick health for `status` / idempotent `up`: all daemons alive and HEALTH_OK.
ceph_is_healthy() {
    ceph_all_running || return 1
    [[ $(ceph_admin health 2>/dev/null) == HEALTH_OK* ]]
}

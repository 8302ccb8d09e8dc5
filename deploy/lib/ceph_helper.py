#!/usr/bin/python3
"""Small librados helpers for deploy/devcluster.sh.

One process and one connection instead of many `ceph` CLI runs: the CLI costs ~0.3 s of
CPU per call, which matters on a 2-core machine while three OSDs are starting.

Run with /usr/bin/python3 (Debian's python3-rados; a pyenv python3 on PATH lacks it).

  ceph_helper.py wait-health CONF NAME KEYRING TIMEOUT_S [MIN_POOLS]
      Poll `status` until HEALTH_OK with every OSD up and in, every PG active+clean and at
      least MIN_POOLS pools. On timeout print the last status and exit 1, or 3 if all
      OSDs were up and all PGs clean but some health check still warned.
  ceph_helper.py mon-commands CONF NAME KEYRING
      Run JSON mon commands read one per line from stdin; stop at the first failure.
  ceph_helper.py check-client CONF NAME KEYRING POOL
      Prove a client can do what hcnode needs: write/read/remove an object, take and
      release a cls_lock exclusive lock, and list the OSD blocklist.
"""

import json
import sys
import time

import rados  # pylint: disable=import-error


def connect(conf, name, keyring, timeout=10):
    cluster = rados.Rados(conffile=conf, name=name, conf={"keyring": keyring})
    cluster.conf_set("client_mount_timeout", str(timeout))
    cluster.conf_set("rados_mon_op_timeout", str(timeout))
    cluster.connect(timeout=timeout)
    return cluster


def mon_json(cluster, cmd, timeout=10):
    ret, out, errs = cluster.mon_command(json.dumps(cmd), b"", timeout=timeout)
    if ret != 0:
        raise RuntimeError("mon command %s failed: %d %s" % (cmd.get("prefix"), ret, errs))
    return out


def mgr_pgs_clean(cluster, num_pgs):
    """The mon's PG digest survives restarts; ask the (new) mgr for its own fresh view."""
    ret, out, _ = cluster.mgr_command(json.dumps({"prefix": "pg stat", "format": "json"}), b"", timeout=5)
    if ret != 0:
        return False
    stat = json.loads(out)
    summary = stat.get("pg_summary", {})
    clean = sum(s.get("num", 0) for s in summary.get("num_pg_by_state", [])
                if s.get("name") == "active+clean")
    return bool(stat.get("pg_ready")) and summary.get("num_pgs") == num_pgs == clean


def wait_health(conf, name, keyring, timeout_s, min_pools=0):
    deadline = time.monotonic() + float(timeout_s)
    cluster = None
    last = "no answer from the monitor"
    only_warnings = False
    while time.monotonic() < deadline:
        try:
            if cluster is None:
                cluster = connect(conf, name, keyring, timeout=max(1, int(deadline - time.monotonic())))
            out = mon_json(cluster, {"prefix": "status", "format": "json"}, timeout=5)
            status = json.loads(out)
            health = status.get("health", {})
            osdmap = status.get("osdmap", {})
            osdmap = osdmap.get("osdmap", osdmap)  # nested in older releases
            pgmap = status.get("pgmap", {})
            num_pgs = pgmap.get("num_pgs", 0)
            clean = sum(s.get("count", 0) for s in pgmap.get("pgs_by_state", [])
                        if s.get("state_name") == "active+clean")
            num_osds = osdmap.get("num_osds", 0)
            # HEALTH_OK alone can come before the mgr has reported any PG: also require
            # every OSD up and in, and every PG active+clean.
            data_ok = (num_osds > 0
                       and osdmap.get("num_up_osds") == num_osds
                       and osdmap.get("num_in_osds") == num_osds
                       and num_pgs > 0 and clean == num_pgs
                       and pgmap.get("num_pools", 0) >= int(min_pools)
                       and mgr_pgs_clean(cluster, num_pgs))
            if data_ok and health.get("status") == "HEALTH_OK":
                print("HEALTH_OK: %d osds up, %d pgs active+clean" % (num_osds, num_pgs))
                return 0
            only_warnings = data_ok
            checks = health.get("checks", {})
            last = "%s (osds %s/%s up, pgs %d/%d active+clean, %s pools) %s" % (
                health.get("status"), osdmap.get("num_up_osds"), num_osds, clean, num_pgs,
                pgmap.get("num_pools"),
                "; ".join("%s: %s" % (k, v.get("summary", {}).get("message", ""))
                          for k, v in sorted(checks.items())))
        except (rados.Error, RuntimeError, ValueError) as exc:
            last = "error: %s" % exc
            only_warnings = False
            if cluster is not None:
                try:
                    cluster.shutdown()
                except rados.Error:
                    pass
                cluster = None
        time.sleep(0.2)
    print("not HEALTH_OK after %s s; last status: %s" % (timeout_s, last))
    # 3: the data is fine (all OSDs up, PGs clean), only health checks remain.
    return 3 if only_warnings else 1


def mon_commands(conf, name, keyring):
    cluster = connect(conf, name, keyring)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        mon_json(cluster, cmd, timeout=30)
    cluster.shutdown()
    return 0


def check_client(conf, name, keyring, pool):
    cluster = connect(conf, name, keyring)
    ioctx = cluster.open_ioctx(pool)
    obj = "devcluster-check"
    data = b"hcnode devcluster check %f" % time.time()
    ioctx.write_full(obj, data)
    if ioctx.read(obj) != data:
        raise RuntimeError("read back differs")
    # cls_lock: needs class-read/class-write on the pool.
    ioctx.lock_exclusive(obj, "devcluster", "cookie", desc="check", duration=5)
    ioctx.unlock(obj, "devcluster", "cookie")
    ioctx.remove_object(obj)
    ioctx.close()
    # Fencing needs the osd blocklist command (ls here; add/rm are tested by devcluster.sh).
    mon_json(cluster, {"prefix": "osd blocklist ls", "format": "json"})
    cluster.shutdown()
    print("ok")
    return 0


def main(argv):
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, conf, name, keyring = argv[1:5]
    try:
        if cmd == "wait-health" and len(argv) in (6, 7):
            return wait_health(conf, name, keyring, *argv[5:7])
        if cmd == "mon-commands" and len(argv) == 5:
            return mon_commands(conf, name, keyring)
        if cmd == "check-client" and len(argv) == 6:
            return check_client(conf, name, keyring, argv[5])
    except (rados.Error, RuntimeError, ValueError) as exc:
        print("%s failed: %s" % (cmd, exc), file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

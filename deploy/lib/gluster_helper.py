#!/usr/bin/python3
"""Gluster helpers for deploy/devcluster.sh (run with /usr/bin/python3; no extra modules).

  gluster_helper.py status < `gluster volume status VOL --xml`
      Print one line per process: "brick PATH PID ONLINE" or "shd - PID ONLINE".
  gluster_helper.py probe HOST PORT VOLUME TIMEOUT_S
      Prove the volume is usable through gfapi (libgfapi.so.0, what hcnode and qemu use):
      create a file, write it, read it back, delete it. Retries until TIMEOUT_S.
      Exits without glfs_fini (which takes ~10 s in gfapi 10.x).
"""

import ctypes
import os
import sys
import time
import xml.etree.ElementTree as ET


def status():
    root = ET.fromstring(sys.stdin.read())
    if root.findtext("opRet") not in ("0", None):
        print("error %s" % root.findtext("opErrstr"), file=sys.stderr)
        return 1
    for node in root.iter("node"):
        host = node.findtext("hostname") or ""
        path = node.findtext("path") or "-"
        pid = node.findtext("pid") or "-1"
        online = node.findtext("status") or "0"
        if host == "Self-heal Daemon":
            print("shd - %s %s" % (pid, online))
        elif path.startswith("/"):
            print("brick %s %s %s" % (path, pid, online))
    return 0


def gfapi():
    lib = ctypes.CDLL("libgfapi.so.0", use_errno=True)
    vp, cp, ci, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t
    lib.glfs_new.restype = vp
    lib.glfs_new.argtypes = [cp]
    lib.glfs_set_volfile_server.argtypes = [vp, cp, cp, ci]
    lib.glfs_set_logging.argtypes = [vp, cp, ci]
    lib.glfs_init.argtypes = [vp]
    lib.glfs_creat.restype = vp
    lib.glfs_creat.argtypes = [vp, cp, ci, ctypes.c_uint]
    lib.glfs_open.restype = vp
    lib.glfs_open.argtypes = [vp, cp, ci]
    lib.glfs_pwrite.restype = ctypes.c_ssize_t
    lib.glfs_pwrite.argtypes = [vp, cp, sz, ctypes.c_longlong, ci, vp, vp]
    lib.glfs_pread.restype = ctypes.c_ssize_t
    lib.glfs_pread.argtypes = [vp, cp, sz, ctypes.c_longlong, ci, vp]
    lib.glfs_close.argtypes = [vp]
    lib.glfs_unlink.argtypes = [vp, cp]
    return lib


def probe_once(lib, fs):
    path = b"/.devcluster-probe-%d" % os.getpid()
    data = b"hcnode devcluster probe %f\n" % time.time()
    fd = lib.glfs_creat(fs, path, os.O_RDWR | os.O_TRUNC, 0o644)
    if not fd:
        return "create failed: %s" % os.strerror(ctypes.get_errno())
    n = lib.glfs_pwrite(fd, data, len(data), 0, 0, None, None)
    lib.glfs_close(fd)
    if n != len(data):
        return "write failed: %s" % os.strerror(ctypes.get_errno())
    fd = lib.glfs_open(fs, path, os.O_RDONLY)
    if not fd:
        return "open failed: %s" % os.strerror(ctypes.get_errno())
    buf = ctypes.create_string_buffer(256)
    n = lib.glfs_pread(fd, buf, 256, 0, 0, None)
    lib.glfs_close(fd)
    lib.glfs_unlink(fs, path)
    if n != len(data) or buf.raw[:n] != data:
        return "read back %d bytes, differs" % n
    return None


def probe(host, port, volume, timeout_s):
    lib = gfapi()
    deadline = time.monotonic() + float(timeout_s)
    last = "not tried"
    while time.monotonic() < deadline:
        fs = lib.glfs_new(volume.encode())
        lib.glfs_set_volfile_server(fs, b"tcp", host.encode(), int(port))
        lib.glfs_set_logging(fs, b"/dev/null", 7)
        if lib.glfs_init(fs) == 0:
            last = probe_once(lib, fs)
            if last is None:
                print("ok")
                sys.stdout.flush()
                os._exit(0)  # skip glfs_fini (~10 s)
        else:
            last = "glfs_init failed: %s" % os.strerror(ctypes.get_errno())
        # A failed glfs_t is leaked on purpose (glfs_fini is slow); retry with a new one.
        time.sleep(0.3)
    print("volume %s on %s:%s not usable after %s s: %s" % (volume, host, port, timeout_s, last))
    sys.stdout.flush()
    os._exit(1)


def main(argv):
    if len(argv) == 2 and argv[1] == "status":
        return status()
    if len(argv) == 6 and argv[1] == "probe":
        return probe(*argv[2:6])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

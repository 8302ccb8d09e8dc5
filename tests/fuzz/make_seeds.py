#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/<name>.

A few hand-made *valid* inputs per target, so that a short run starts from inputs that reach
the deep code (a request that parses, a kernel that loads) instead of rediscovering the
formats. The formats are documented at the top of each target's .cpp file; this script mirrors
them. Re-run it after changing a format:  python3 tests/fuzz/make_seeds.py
"""
import os
import random
import shutil
import struct
import subprocess
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


# --- split virtqueue rings in a RAM image (virtio 1.2 2.7) -----------------------------------
NEXT, WRITE, INDIRECT = 1, 2, 4


def desc(addr, length, flags, nxt):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def ring_image(size, qsize, desc_at, descs, heads, extra):
    """RAM of `size` bytes: descriptor table at desc_at, avail ring right after it (2.7 layout
    the fuzz targets use), the chains `heads` published, `extra` = {gpa: bytes}."""
    ram = bytearray(size)
    avail = desc_at + 16 * qsize
    for i, d in enumerate(descs):
        ram[desc_at + 16 * i:desc_at + 16 * i + 16] = d
    ram[avail:avail + 4] = struct.pack("<HH", 0, len(heads))
    for i, h in enumerate(heads):
        ram[avail + 4 + 2 * i:avail + 6 + 2 * i] = struct.pack("<H", h)
    for gpa, data in extra.items():
        ram[gpa:gpa + len(data)] = data
    return ram


def blk_header(type_, sector):
    return struct.pack("<IIQ", type_, 0, sector)


# --- virtio_queue_fuzz: 4 header bytes + 64 KiB RAM image ----------------------------------
def queue_seeds():
    # Queue size 4 (byte 0 = 2), rings at 0; a 3-descriptor chain and an indirect one.
    descs = [
        desc(0x1000, 16, NEXT, 1),
        desc(0x1100, 512, WRITE | NEXT, 2),
        desc(0x1400, 1, WRITE, 0),
        desc(0x2000, 48, INDIRECT, 0),
    ]
    table = desc(0x1000, 16, NEXT, 1) + desc(0x1100, 512, WRITE | NEXT, 2) + desc(0x1400, 1, WRITE, 0)
    ram = ring_image(0x2100, 4, 0, descs, [0, 3], {0x2000: table})
    # byte 1: INDIRECT_DESC, placement 0; 8 pops, action seed 0
    write("virtio_queue_fuzz", "direct_and_indirect", bytes([2, 0x01, 8, 0]) + ram)
    # the same with EVENT_IDX and tame mode
    write("virtio_queue_fuzz", "event_idx_tame", bytes([2, 0x07, 8, 0x55]) + ram)
    # queue size 1, one single-descriptor chain
    ram = ring_image(0x1100, 1, 0, [desc(0x1000, 64, WRITE, 0)], [0], {})
    write("virtio_queue_fuzz", "size1", bytes([0, 0, 2, 1]) + ram)


# --- virtio_blk_fuzz -------------------------------------------------------------------------
def blk_hdr(mode, qexp, cap_sectors, max_discard=0, max_wz=0, segs=0, seed=0, high_base=False):
    return bytes([mode, qexp | (0x80 if high_base else 0), segs]) + struct.pack(
        "<III", cap_sectors, max_discard, max_wz) + bytes([seed])


IN, OUT, FLUSH, GETID, DISCARD, WZ = range(6)
M_INDIRECT, M_EVENT_IDX, M_RAW, M_RO, M_DISCARD, M_WZ = 1, 2, 4, 8, 16, 32


def blk_req(op, sector, sectors=0, ctl=0, getid_len=0, segments=(), rsplit=(), wsplit=(),
            prefix=None):
    """One structured request (no aliasing, no framing mistakes): the byte sequence
    run_structured() reads. rsplit/wsplit: cut points inside the readable/writable part."""
    b = bytearray([op, ctl])
    b += bytes([0, sector])                   # sector: "how" 0 -> one byte
    b += bytes([sectors])                      # data sectors (0..8)
    if op & 7 == GETID:
        b += bytes([getid_len])
    if op & 7 in (DISCARD, WZ):
        b += bytes([{0: 0, 1: 1, 2: 3}[len(segments)]])
        for sec, count, flags in segments:
            b += bytes([0, sec])               # sector, one byte
            b += bytes([0, count])             # count: "how" 0 -> one byte
            b += bytes([{0: 0, 1: 2}[flags]])  # flags 0 or UNMAP
    for cuts in (rsplit, wsplit):
        b += bytes([len(cuts)])
        for c in cuts:
            b += struct.pack("<H", c)
        b += bytes([0] * (len(cuts) + 1))      # gaps between the pieces
    if prefix is not None:
        b += bytes([prefix])
    if ctl & 0x02:
        b += bytes([1])                        # used_event = next used + 1
    return b


def blk_seeds():
    cap = 2048  # 1 MiB disk
    t = "virtio_blk_fuzz"
    # A read of 4 sectors and a write of 2, direct, one descriptor per piece.
    write(t, "read_write", blk_hdr(0, 4, cap) + blk_req(IN, 8, 4) + blk_req(OUT, 16, 2))
    # The header split across descriptors, data split too; EVENT_IDX; deferred completion.
    write(t, "split_event_idx", blk_hdr(M_EVENT_IDX, 4, cap)
          + blk_req(OUT, 3, 2, ctl=0x10, rsplit=(5, 16, 600))
          + blk_req(IN, 4, 3, ctl=0x12, wsplit=(512, 1536)) + blk_req(FLUSH, 0))
    # Flush and GET_ID, indirect with a direct prefix.
    write(t, "indirect_flush_getid", blk_hdr(M_INDIRECT, 3, cap)
          + blk_req(FLUSH | 0x08, 0, prefix=1) + blk_req(GETID | 0x08, 0, getid_len=20, prefix=0)
          + blk_req(IN | 0x08, 1, 8, prefix=2, wsplit=(100, 4000)))
    # DISCARD and WRITE_ZEROES (with UNMAP), negotiated, up to 64 sectors.
    write(t, "discard_write_zeroes", blk_hdr(M_DISCARD | M_WZ, 4, cap, 64, 64)
          + blk_req(DISCARD, 0, segments=[(10, 8, 0)])
          + blk_req(WZ, 0, segments=[(100, 64, 1)]) + blk_req(WZ, 0, segments=[(7, 1, 0)]))
    # A read-only disk: reads succeed, writes and discards fail; few segments allowed.
    write(t, "read_only_small_segments", blk_hdr(M_RO | M_DISCARD | 64, 2, cap, 8, 0, segs=1)
          + blk_req(IN, 0, 2, wsplit=(512,)) + blk_req(OUT, 0, 1) + blk_req(DISCARD, 0, segments=[(1, 1, 0)]))
    # Queue size 2: the rings wrap many times; guest RAM at 1 MiB.
    reqs = b"".join(blk_req(IN if i % 2 else OUT, i, 1 + i % 3, ctl=0x08 if i % 3 else 0x01)
                    for i in range(12))
    write(t, "wrap_high_base", blk_hdr(M_EVENT_IDX, 1, cap, high_base=True) + reqs)
    # A disk of almost 2^64 bytes: sectors near the end.
    huge = blk_hdr(0x80, 4, 0) + bytes([OUT, 0, 1, 3, 1]) + bytes([0, 0, 0, 0])
    write(t, "huge_disk_end", huge)

    # Raw mode: queue size 4, rings at 0 (placement byte 0), a read chain and a write chain.
    descs = [
        desc(0x200, 16, NEXT, 1),
        desc(0x400, 1024, WRITE | NEXT, 2),
        desc(0x800, 1, WRITE, 0),
        desc(0x900, 528, NEXT, 2),  # header + 1 sector, then (again) descriptor 2's status
    ]
    ram = ring_image(0xB20, 4, 0, descs, [0, 3], {
        0x200: blk_header(0, 2),
        0x900: blk_header(1, 5) + bytes(512),
    })
    write(t, "raw_read_write", blk_hdr(M_RAW, 2, cap) + bytes([0]) + ram)


# --- elf_loader_fuzz: a PVH kernel file -----------------------------------------------------
PT_LOAD, PT_NOTE = 1, 4


def elf(phdrs, body, entry):
    """ELF64 x86-64 ET_EXEC; program headers at 64; `body` placed right after them."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, 64, 0, 0, 64, 56,
                               len(phdrs), 64, 0, 0)
    ph = b"".join(struct.pack("<IIQQQQQQ", *p) for p in phdrs)
    return ehdr + ph + body


def xen_note(entry, descsz):
    return struct.pack("<III", 4, descsz, 18) + b"Xen\0" + (
        struct.pack("<I", entry) if descsz == 4 else struct.pack("<Q", entry))


def elf_seeds():
    t = "elf_loader_fuzz"
    code = bytes([0xF4] * 32)  # hlt
    # One PT_LOAD with .bss, one PT_NOTE with a 4-byte PVH entry.
    phoff_end = 64 + 2 * 56
    note = xen_note(0x100000, 4)
    code_off = phoff_end + len(note)
    write(t, "pvh_note4_bss", elf([
        (PT_LOAD, 5, code_off, 0x100000, 0x100000, len(code), 0x1000, 0x1000),
        (PT_NOTE, 4, phoff_end, 0, 0, len(note), len(note), 4),
    ], note + code, 0x100000))
    # Two PT_LOADs, an 8-byte descriptor note in an 8-aligned PT_NOTE, entry in the second.
    phoff_end = 64 + 3 * 56
    note = struct.pack("<III", 4, 4, 1) + b"GNU\0" + b"abcd" + bytes(4) + xen_note(0x200010, 8)
    off1 = phoff_end + len(note)
    off2 = off1 + len(code)
    write(t, "two_loads_note8", elf([
        (PT_LOAD, 5, off1, 0x100000, 0x100000, len(code), len(code), 0x1000),
        (PT_LOAD, 6, off2, 0x200000, 0x200000, len(code), 0x3000, 0x1000),
        (PT_NOTE, 4, phoff_end, 0, 0, len(note), len(note), 8),
    ], note + code + code, 0x200010))
    # No note at all (not PVH-bootable, but a valid ELF the loader accepts).
    write(t, "no_note", elf([(PT_LOAD, 5, 64 + 56, 0x180000, 0x180000, 32, 32, 0x1000)],
                            code, 0x180000))


# --- qcow2_image_fuzz: compressed clusters (mode byte + image, or 0x10 + decoder input) ------
def qcow2_compressed_seeds():
    """Small images `qemu-img convert -c` writes (deflate and zstd, 512 B and 4 KiB clusters),
    and raw payloads for the decoder mode. Needs qemu-img and zstd (Debian: qemu-utils, zstd);
    without them the other seeds are still written."""
    t = "qcow2_image_fuzz"
    rnd = random.Random(5)
    # 48 KiB compressible (3 random bits in every 4th byte) + 16 KiB of zeroes.
    raw = bytes(((i // 512 * 7) + (rnd.getrandbits(3) if i % 4 == 0 else 0)) & 255
                for i in range(48 * 1024)) + bytes(16 * 1024)
    # Decoder mode: byte 1 bit 0 = type, bits 1-3 = cluster bits - 9.
    deflate = zlib.compressobj(6, zlib.DEFLATED, -12)
    write(t, "z-deflate-512", bytes([0x10, 0]) + deflate.compress(raw[:512]) + deflate.flush())
    if not (shutil.which("qemu-img") and shutil.which("zstd")):
        print("make_seeds.py: qemu-img or zstd missing: no compressed qcow2 seeds")
        return
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "small.raw")
        with open(src, "wb") as f:
            f.write(raw)
        frame = subprocess.run(["zstd", "-q", "-c", "-"], input=raw[:4096], check=True,
                               capture_output=True).stdout
        write(t, "z-zstd-4096", bytes([0x10, 1 | (3 << 1)]) + frame)
        for ctype in ("zlib", "zstd"):
            for cs in (512, 4096):
                img = os.path.join(tmp, f"{ctype}-{cs}.qcow2")
                subprocess.run(["qemu-img", "convert", "-c", "-O", "qcow2", "-o",
                                f"compression_type={ctype},cluster_size={cs}", src, img],
                               check=True)
                with open(img, "rb") as f:
                    data = f.read()
                for mode in ((0, 1) if cs == 512 else (0,)):
                    write(t, f"compressed-{ctype}-{cs}-mode{mode}", bytes([mode]) + data)


if __name__ == "__main__":
    queue_seeds()
    blk_seeds()
    elf_seeds()
    qcow2_compressed_seeds()

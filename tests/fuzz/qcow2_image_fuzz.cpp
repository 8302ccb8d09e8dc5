// libFuzzer target: qcow2 images as an attacker would hand them to `hcctl image import` or a
// VM disk — header, extensions, L1/L2 tables, refcount table and blocks, all hostile.
//
// Input: byte 0 selects what to exercise (bit 0: open read-write and write, bit 1: a backing
// image of zeroes behind it, bits 2-3: small L2 cache, bit 4: decoder mode, below), the rest
// IS the image file. The image
// is parsed (parse_header must refuse or return a header whose tables lie where it says), then
// opened through the real format layer over an in-memory file (tests/fakes/memory_file.hpp);
// every cluster of the virtual disk is read, a few writes land in read-write mode, the queue is
// closed (metadata writeback), and check_image walks whatever remains. Any crash, leak,
// sanitizer report or hang is a finding; refused images and failed requests are fine.
// Compressed clusters (deflate and zstd, qcow2_compress.hpp) are reached through images whose
// L2 entries have bit 62 set: the seeds are small `qemu-img convert -c` images of both types,
// so mutations hit the descriptor's offset and sector-count bits and the compressed payload.
//
// Decoder mode (bit 4 set): byte 1 picks the compression type (bit 0) and the cluster size
// (512 << (bits 1-3 mod 13)), the rest is a compressed payload given straight to the
// Decompressor. The output buffer is exactly one cluster (ASan catches a byte more); the
// result must be 0 or -EIO, and a successful decode must be reproducible.
#include <algorithm>
#include <cstdint>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include <spdlog/spdlog.h>

#include "blockdev/qcow2/qcow2_backend.hpp"
#include "blockdev/qcow2/qcow2_check.hpp"
#include "blockdev/qcow2/qcow2_compress.hpp"
#include "blockdev/qcow2/qcow2_format.hpp"
#include "blockdev/sync_disk.hpp"
#include "tests/fakes/memory_file.hpp"

using namespace hcnode;
using namespace hcnode::blockdev;

namespace {

void fuzz_decoder(const uint8_t* data, size_t size) {
  if (size < 2) return;
  const uint8_t type = data[1] & 1;
  const uint32_t bits = 9 + ((data[1] >> 1) & 7) % 13;  // 9..21: every cluster size
  auto d = qcow2::Decompressor::create(type);
  if (!d) abort();
  std::vector<uint8_t> out(size_t{1} << bits);
  const std::span<const uint8_t> in(data + 2, size - 2);
  const int r = d->decompress(in, out);
  if (r != 0 && r != -EIO) abort();
  if (r == 0) {
    // The decoder keeps no state from one cluster to the next.
    std::vector<uint8_t> again(out.size());
    if (d->decompress(in, again) != 0 || again != out) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  if (size < 1 || size > (1 << 20)) return 0;
  const uint8_t mode = data[0];
  if (mode & 0x10) {
    fuzz_decoder(data, size);
    return 0;
  }
  std::vector<uint8_t> image(data + 1, data + size);

  auto header = qcow2::parse_header(image);
  if (!header) return 0;
  // The fuzzer should not spend its time on multi-terabyte virtual disks: reads are bounded
  // below, but keep the interesting part small.
  if (header->size > (64u << 20)) return 0;

  const bool write = mode & 1;
  std::shared_ptr<Backend> backing;
  if ((mode & 2) && !header->backing_file.empty()) {
    backing = std::make_shared<testing::MemoryFile>(std::vector<uint8_t>(1 << 20, 0), true);
  }
  if (!header->backing_file.empty() && !backing) return 0;
  auto file = std::make_shared<testing::MemoryFile>(image, !write);
  qcow2::Qcow2Options options;
  options.read_only = !write;
  options.l2_cache_tables = 2 + ((mode >> 2) & 3);
  auto opened = qcow2::Qcow2Backend::open(file, backing, options);
  if (!opened) return 0;
  {
    auto disk = SyncDisk::open(*opened, 8);
    if (!disk) return 0;
    const uint64_t vsize = (*opened)->info().size;
    const uint64_t cluster = header->cluster_size();
    std::vector<uint8_t> buf(std::max<uint64_t>(cluster, 4096));
    // Every cluster of the first 16 MiB (at most 4096 reads).
    uint64_t reads = 0;
    for (uint64_t off = 0; off < vsize && reads < 4096; off += cluster, ++reads) {
      const uint64_t n = std::min<uint64_t>(cluster, vsize - off);
      (void)disk->read(off, {buf.data(), n});
    }
    if (write && vsize >= 4096) {
      std::memset(buf.data(), 0xa5, buf.size());
      (void)disk->write(0, {buf.data(), 4096});
      (void)disk->write(vsize - 512, {buf.data(), 512});
      (void)disk->write_zeroes(0, std::min<uint64_t>(vsize, cluster), false);
      (void)disk->flush();
    }
  }
  // Whatever the file holds now (the input or what the writes made of it) must not crash the
  // checker either.
  auto after = std::make_shared<testing::MemoryFile>(file->bytes(), true);
  if (auto disk = SyncDisk::open(after, 4)) (void)qcow2::check_image(*disk);
  return 0;
}

#include "blockdev/qcow2/qcow2_compress.hpp"

#include <zlib.h>
#include <zstd.h>

#include <climits>

#include <spdlog/fmt/fmt.h>

namespace hcnode::blockdev::qcow2 {

CompressedExtent compressed_extent(uint64_t l2_entry, uint32_t cluster_bits) {
  // Spec, "Compressed Clusters Descriptor": x = 62 - (cluster_bits - 8).
  const uint32_t x = 62 - (cluster_bits - 8);
  const uint64_t offset = l2_entry & ((uint64_t{1} << x) - 1);
  const uint64_t sectors = (l2_entry >> x) & ((uint64_t{1} << (cluster_bits - 8)) - 1);
  CompressedExtent e;
  e.offset = offset;
  e.length = (sectors + 1) * 512 - (offset & 511);
  e.valid = (offset >> 56) == 0;  // bits beyond 55 must be 0
  return e;
}

struct Decompressor::Impl {
  uint8_t type = kCompressionDeflate;
  z_stream zs{};
  bool zs_ready = false;
  ZSTD_DCtx* zstd = nullptr;

  ~Impl() {
    if (zs_ready) inflateEnd(&zs);
    if (zstd) ZSTD_freeDCtx(zstd);
  }

  int inflate_cluster(std::span<const uint8_t> in, std::span<uint8_t> out) {
    if (in.size() > UINT_MAX || out.size() > UINT_MAX) return -EIO;
    if (inflateReset(&zs) != Z_OK) return -EIO;
    zs.next_in = const_cast<Bytef*>(in.data());  // zlib's API is not const-correct
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    // One call: all input and all output space are given. Z_STREAM_END (the stream ended) and
    // Z_BUF_ERROR / Z_OK (input or output ran out) are fine when the cluster is full; a short
    // cluster or a data error is not.
    const int r = ::inflate(&zs, Z_FINISH);
    if (r != Z_STREAM_END && r != Z_BUF_ERROR && r != Z_OK) return -EIO;
    return zs.avail_out == 0 ? 0 : -EIO;
  }

  int zstd_cluster(std::span<const uint8_t> in, std::span<uint8_t> out) {
    if (ZSTD_isError(ZSTD_DCtx_reset(zstd, ZSTD_reset_session_only))) return -EIO;
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    ZSTD_outBuffer output{out.data(), out.size(), 0};
    while (output.pos < output.size) {
      const size_t in_before = input.pos;
      const size_t out_before = output.pos;
      const size_t r = ZSTD_decompressStream(zstd, &output, &input);
      if (ZSTD_isError(r)) return -EIO;
      if (r == 0 && output.pos < output.size) return -EIO;  // the frame ended short of a cluster
      // No progress: the input ran out (the decoder wants more than the range holds).
      if (input.pos == in_before && output.pos == out_before) return -EIO;
    }
    return 0;
  }
};

Decompressor::Decompressor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Decompressor::Decompressor(Decompressor&&) noexcept = default;
Decompressor& Decompressor::operator=(Decompressor&&) noexcept = default;
Decompressor::~Decompressor() = default;

Result<Decompressor> Decompressor::create(uint8_t compression_type) {
  auto impl = std::make_unique<Impl>();
  impl->type = compression_type;
  switch (compression_type) {
    case kCompressionDeflate:
      // Raw deflate (negative windowBits: no zlib header or checksum), 4 KiB window.
      if (inflateInit2(&impl->zs, -12) != Z_OK) return fail(ENOMEM, "qcow2: inflateInit2 failed");
      impl->zs_ready = true;
      break;
    case kCompressionZstd:
      impl->zstd = ZSTD_createDCtx();
      if (!impl->zstd) return fail(ENOMEM, "qcow2: ZSTD_createDCtx failed");
      if (ZSTD_isError(ZSTD_DCtx_setParameter(impl->zstd, ZSTD_d_windowLogMax,
                                              kZstdWindowLogMax))) {
        return fail(ENOMEM, "qcow2: ZSTD_d_windowLogMax refused");
      }
      break;
    default:
      return fail(EINVAL, fmt::format("qcow2: compression type {} is not supported",
                                      compression_type));
  }
  return Decompressor(std::move(impl));
}

int Decompressor::decompress(std::span<const uint8_t> in, std::span<uint8_t> out) {
  if (!impl_) return -EIO;
  return impl_->type == kCompressionZstd ? impl_->zstd_cluster(in, out)
                                         : impl_->inflate_cluster(in, out);
}

}  // namespace hcnode::blockdev::qcow2

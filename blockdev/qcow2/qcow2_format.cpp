#include "blockdev/qcow2/qcow2_format.hpp"

#include <algorithm>
#include <cstring>

#include <spdlog/fmt/fmt.h>

namespace hcnode::blockdev::qcow2 {

uint64_t l1_entries_for(uint64_t virtual_size, uint32_t cluster_bits) {
  // One L2 table maps (cluster_size / 8) clusters.
  const uint64_t per_l2 = uint64_t{1} << (cluster_bits + cluster_bits - 3);
  return (virtual_size + per_l2 - 1) / per_l2;
}

namespace {

// Header extension types (spec: "Header extensions").
constexpr uint32_t kExtEnd = 0;
constexpr uint32_t kExtBackingFormat = 0xe2792aca;
constexpr uint32_t kExtFeatureNames = 0x6803f857;
constexpr uint32_t kExtEncryption = 0x0537be77;
constexpr uint32_t kExtExternalData = 0x44415441;

constexpr uint64_t kKnownIncompat = kIncompatDirty | kIncompatCorrupt | kIncompatExternalData |
                                    kIncompatCompression | kIncompatExtendedL2;
// The spec caps the backing file name at 1023 bytes.
constexpr uint32_t kMaxBackingName = 1023;

Error refuse(std::string why) { return make_error(EINVAL, "qcow2: " + std::move(why)); }

bool cluster_aligned(uint64_t offset, uint32_t bits) {
  return (offset & ((uint64_t{1} << bits) - 1)) == 0;
}

}  // namespace

Result<uint64_t> header_bytes_needed(std::span<const uint8_t> first_bytes) {
  if (first_bytes.size() < 24) return fail(refuse("file too short for a header"));
  if (load_be32(first_bytes.data()) != kMagic) return fail(refuse("not a qcow2 image (bad magic)"));
  const uint32_t bits = load_be32(first_bytes.data() + 20);
  if (bits < kMinClusterBits || bits > kMaxClusterBits) {
    return fail(refuse(fmt::format("cluster_bits {} outside {}..{}", bits, kMinClusterBits,
                                   kMaxClusterBits)));
  }
  // The header, its extensions and the backing file name all live in the first cluster.
  return uint64_t{1} << bits;
}

Result<Header> parse_header(std::span<const uint8_t> bytes) {
  const uint8_t* b = bytes.data();
  if (bytes.size() < 72) return fail(refuse("file too short for a header"));
  if (load_be32(b) != kMagic) return fail(refuse("not a qcow2 image (bad magic)"));
  Header h;
  h.version = load_be32(b + 4);
  if (h.version == 2) {
    return fail(make_error(EPROTONOSUPPORT,
                           "qcow2: version 2 images are not supported (convert with "
                           "'qemu-img amend -o compat=1.1')"));
  }
  if (h.version != 3) return fail(refuse(fmt::format("unknown version {}", h.version)));
  if (bytes.size() < kHeaderV3Length) return fail(refuse("file too short for a v3 header"));
  h.backing_file_offset = load_be64(b + 8);
  h.backing_file_size = load_be32(b + 16);
  h.cluster_bits = load_be32(b + 20);
  h.size = load_be64(b + 24);
  h.crypt_method = load_be32(b + 32);
  h.l1_size = load_be32(b + 36);
  h.l1_table_offset = load_be64(b + 40);
  h.refcount_table_offset = load_be64(b + 48);
  h.refcount_table_clusters = load_be32(b + 56);
  h.nb_snapshots = load_be32(b + 60);
  h.snapshots_offset = load_be64(b + 64);
  h.incompatible_features = load_be64(b + 72);
  h.compatible_features = load_be64(b + 80);
  h.autoclear_features = load_be64(b + 88);
  h.refcount_order = load_be32(b + 96);
  h.header_length = load_be32(b + 100);

  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
    return fail(refuse(fmt::format("cluster_bits {} outside {}..{}", h.cluster_bits,
                                   kMinClusterBits, kMaxClusterBits)));
  }
  const uint64_t cluster = h.cluster_size();
  if (h.header_length < kHeaderV3Length || h.header_length > cluster || h.header_length % 8 != 0) {
    return fail(refuse(fmt::format("header_length {} invalid", h.header_length)));
  }
  if (h.crypt_method != 0) return fail(refuse("encrypted images are not supported"));
  if (h.incompatible_features & ~kKnownIncompat) {
    return fail(refuse(fmt::format("unknown incompatible features 0x{:x}",
                                   h.incompatible_features & ~kKnownIncompat)));
  }
  if (h.incompatible_features & kIncompatCorrupt) {
    return fail(refuse("image is marked corrupt (repair with 'qemu-img check -r all')"));
  }
  if (h.incompatible_features & kIncompatExternalData) {
    return fail(refuse("images with an external data file are not supported"));
  }
  if (h.incompatible_features & kIncompatExtendedL2) {
    return fail(refuse("images with extended L2 entries (subclusters) are not supported"));
  }
  // Spec, header byte 104 "compression_type": 0 = deflate (zlib), 1 = zstd. With the
  // "compression type" incompatible bit set the field must be present and non-zero; without
  // it the field must be absent or zero (as QEMU, images breaking either rule are refused).
  if (h.header_length >= 105 && bytes.size() >= 105) h.compression_type = b[104];
  if (h.incompatible_features & kIncompatCompression) {
    if (h.header_length < 105 || bytes.size() < 105) return fail(refuse("compression type missing"));
    if (h.compression_type == 0) {
      return fail(refuse("compression type bit set with compression type 0 (zlib)"));
    }
    if (h.compression_type != 1) {
      return fail(refuse(fmt::format("compression type {} is not supported (0 zlib, 1 zstd)",
                                     h.compression_type)));
    }
  } else if (h.compression_type != 0) {
    return fail(refuse(fmt::format("compression type {} without the compression type bit",
                                   h.compression_type)));
  }
  if (h.refcount_order > 6) return fail(refuse(fmt::format("refcount_order {}", h.refcount_order)));
  if (h.size > kMaxVirtualSize) {
    return fail(refuse(fmt::format("virtual size {} above the limit {}", h.size, kMaxVirtualSize)));
  }
  if (h.size % 512 != 0) return fail(refuse(fmt::format("virtual size {} not a multiple of 512", h.size)));
  if (h.l1_size < l1_entries_for(h.size, h.cluster_bits)) {
    return fail(refuse(fmt::format("L1 table of {} entries cannot map {} bytes", h.l1_size, h.size)));
  }
  if (uint64_t{h.l1_size} > (uint64_t{32} << 20) / 8) {
    return fail(refuse(fmt::format("L1 table of {} entries too large", h.l1_size)));
  }
  if (h.l1_size > 0 && (h.l1_table_offset == 0 || !cluster_aligned(h.l1_table_offset, h.cluster_bits))) {
    return fail(refuse("L1 table offset not cluster-aligned"));
  }
  if (h.refcount_table_offset == 0 || !cluster_aligned(h.refcount_table_offset, h.cluster_bits)) {
    return fail(refuse("refcount table offset not cluster-aligned"));
  }
  if (h.refcount_table_clusters == 0 || h.refcount_table_clusters > (uint32_t{8} << 20) / (cluster / 512)) {
    return fail(refuse(fmt::format("refcount table of {} clusters", h.refcount_table_clusters)));
  }
  if (h.l1_table_offset > kOffsetMask || h.refcount_table_offset > kOffsetMask) {
    return fail(refuse("table offsets beyond the format's range"));
  }
  if (h.nb_snapshots > 0 && !cluster_aligned(h.snapshots_offset, h.cluster_bits)) {
    return fail(refuse("snapshot table offset not cluster-aligned"));
  }

  // Header extensions: from header_length up to the backing file name or the cluster's end.
  uint64_t end = std::min<uint64_t>(cluster, bytes.size());
  if (h.backing_file_offset != 0) {
    if (h.backing_file_size == 0 || h.backing_file_size > kMaxBackingName ||
        h.backing_file_offset < h.header_length ||
        h.backing_file_offset + h.backing_file_size > cluster) {
      return fail(refuse("backing file name outside the first cluster or too long"));
    }
    if (h.backing_file_offset + h.backing_file_size > bytes.size()) {
      return fail(make_error(EAGAIN, "qcow2: header needs more bytes"));
    }
    end = h.backing_file_offset;
    h.backing_file.assign(reinterpret_cast<const char*>(b + h.backing_file_offset),
                          h.backing_file_size);
    if (h.backing_file.find('\0') != std::string::npos) {
      return fail(refuse("backing file name contains NUL"));
    }
  }
  uint64_t pos = h.header_length;
  while (true) {
    if (pos + 8 > end) {
      if (end < cluster && end == bytes.size()) {
        return fail(make_error(EAGAIN, "qcow2: header needs more bytes"));
      }
      return fail(refuse("header extensions run past their space"));
    }
    const uint32_t type = load_be32(b + pos);
    const uint32_t len = load_be32(b + pos + 4);
    if (type == kExtEnd) break;
    const uint64_t padded = (uint64_t{len} + 7) & ~uint64_t{7};
    if (pos + 8 + padded > end) return fail(refuse("header extension runs past its space"));
    const auto* data = reinterpret_cast<const char*>(b + pos + 8);
    switch (type) {
      case kExtBackingFormat:
        h.backing_format.assign(data, strnlen(data, len));
        break;
      case kExtEncryption:
        h.has_encryption_header = true;
        break;
      case kExtExternalData:
        h.has_external_data_file = true;
        break;
      default:
        break;  // feature names, bitmaps, unknown: nothing hcnode needs
    }
    pos += 8 + padded;
  }
  if (h.has_encryption_header) return fail(refuse("encrypted images are not supported"));
  if (h.backing_file.empty() && !h.backing_format.empty()) h.backing_format.clear();
  return h;
}

Result<std::vector<uint8_t>> format_new_image(const NewImage& spec) {
  if (spec.cluster_bits < kMinClusterBits || spec.cluster_bits > kMaxClusterBits) {
    return fail(refuse(fmt::format("cluster_bits {} outside {}..{}", spec.cluster_bits,
                                   kMinClusterBits, kMaxClusterBits)));
  }
  if (spec.virtual_size == 0 || spec.virtual_size % 512 != 0 ||
      spec.virtual_size > kMaxVirtualSize) {
    return fail(refuse(fmt::format("virtual size {} must be a positive multiple of 512 up to {}",
                                   spec.virtual_size, kMaxVirtualSize)));
  }
  if (!spec.backing_file.empty()) {
    if (spec.backing_file.size() > kMaxBackingName ||
        spec.backing_file.find('\0') != std::string::npos) {
      return fail(refuse("backing file name too long or contains NUL"));
    }
    if (spec.backing_format != "raw" && spec.backing_format != "qcow2") {
      return fail(refuse("backing format must be raw or qcow2"));
    }
  }
  const uint64_t cluster = uint64_t{1} << spec.cluster_bits;
  const uint64_t l1_entries = l1_entries_for(spec.virtual_size, spec.cluster_bits);
  const uint64_t l1_clusters = std::max<uint64_t>(1, (l1_entries * 8 + cluster - 1) / cluster);
  const uint64_t clusters = 3 + l1_clusters;
  const uint64_t refcounts_per_block = cluster / 2;  // 16-bit refcounts
  if (clusters > refcounts_per_block) {
    return fail(refuse("virtual size too large for this cluster size"));
  }
  std::vector<uint8_t> img(clusters * cluster, 0);
  uint8_t* h = img.data();
  store_be32(h + 0, kMagic);
  store_be32(h + 4, 3);
  store_be32(h + 20, spec.cluster_bits);
  store_be64(h + 24, spec.virtual_size);
  store_be32(h + 36, static_cast<uint32_t>(l1_entries));
  store_be64(h + 40, 3 * cluster);          // L1 table
  store_be64(h + 48, 1 * cluster);          // refcount table
  store_be32(h + 56, 1);                    // refcount table clusters
  store_be32(h + 96, 4);                    // refcount_order: 16-bit
  store_be32(h + 100, kHeaderV3Length);

  uint64_t pos = kHeaderV3Length;
  auto extension = [&](uint32_t type, const void* data, uint32_t len) {
    store_be32(h + pos, type);
    store_be32(h + pos + 4, len);
    std::memcpy(h + pos + 8, data, len);
    pos += 8 + ((uint64_t{len} + 7) & ~uint64_t{7});
  };
  if (!spec.backing_file.empty()) {
    extension(kExtBackingFormat, spec.backing_format.data(),
              static_cast<uint32_t>(spec.backing_format.size()));
  }
  // Feature name table: lets `qemu-img info` name the bits (48 bytes per entry: type, bit, name).
  struct Name { uint8_t type, bit; const char* name; };
  static constexpr Name kNames[] = {{0, 0, "dirty bit"},        {0, 1, "corrupt bit"},
                                    {0, 2, "external data file"}, {0, 3, "compression type"},
                                    {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
                                    {2, 0, "bitmaps"},           {2, 1, "raw external data"}};
  uint8_t table[sizeof(kNames) / sizeof(kNames[0]) * 48] = {};
  for (size_t i = 0; i < sizeof(kNames) / sizeof(kNames[0]); ++i) {
    table[i * 48] = kNames[i].type;
    table[i * 48 + 1] = kNames[i].bit;
    std::memcpy(table + i * 48 + 2, kNames[i].name, std::strlen(kNames[i].name));
  }
  // (Optional: left out where it would not fit, in 512-byte and 1 KiB clusters.)
  if (pos + 8 + sizeof(table) + 8 + spec.backing_file.size() <= cluster) {
    extension(kExtFeatureNames, table, sizeof(table));
  }
  pos += 8;  // end-of-extensions marker (zeroes)
  if (!spec.backing_file.empty()) {
    if (pos + spec.backing_file.size() > cluster) {
      return fail(refuse("backing file name does not fit in the header cluster"));
    }
    store_be64(h + 8, pos);
    store_be32(h + 16, static_cast<uint32_t>(spec.backing_file.size()));
    std::memcpy(h + pos, spec.backing_file.data(), spec.backing_file.size());
  }
  // Refcount table -> the refcount block in cluster 2, which counts the metadata clusters.
  store_be64(img.data() + cluster, 2 * cluster);
  for (uint64_t c = 0; c < clusters; ++c) store_be16(img.data() + 2 * cluster + 2 * c, 1);
  return img;
}

}  // namespace hcnode::blockdev::qcow2

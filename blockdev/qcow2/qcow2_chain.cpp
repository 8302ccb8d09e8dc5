#include "blockdev/qcow2/qcow2_backend.hpp"

#include <spdlog/fmt/fmt.h>

#include "blockdev/sync_disk.hpp"

// Opening a qcow2 image with its backing chain through open_backend (kept apart from
// qcow2_backend.cpp so that the format layer itself links without the storage libraries: the
// fuzz target builds it alone).
namespace hcnode::blockdev::qcow2 {

namespace {

constexpr int kMaxChainDepth = 16;

}  // namespace

Result<DiskUri> resolve_backing(const DiskUri& image, const std::string& backing_file) {
  std::string name = backing_file;
  if (name.rfind("gluster+tcp://", 0) == 0) name = "gluster://" + name.substr(14);
  if (name.rfind("rbd:", 0) == 0 || name.rfind("gluster://", 0) == 0 ||
      name.rfind("file:", 0) == 0) {
    return parse_disk_uri(name);
  }
  if (name.empty()) return fail(EINVAL, "empty backing file name");
  if (name.find("://") != std::string::npos) {
    return fail(EINVAL, "backing file '" + backing_file + "': unsupported protocol");
  }
  if (name[0] == '/') return parse_disk_uri("file:" + name);  // QEMU: an absolute local path
  auto dir_of = [](const std::string& path) { return path.substr(0, path.rfind('/') + 1); };
  if (const auto* f = std::get_if<FileLocation>(&image.location)) {
    return parse_disk_uri("file:" + dir_of(f->path) + name);
  }
  if (const auto* g = std::get_if<GlusterLocation>(&image.location)) {
    GlusterLocation loc = *g;
    loc.path = dir_of(g->path) + name;
    return parse_disk_uri(DiskUri{loc}.to_string());
  }
  const auto& r = std::get<RbdLocation>(image.location);
  RbdLocation loc{r.pool, r.ns, name, std::nullopt};
  return parse_disk_uri(DiskUri{loc}.to_string());
}

Result<std::shared_ptr<Backend>> open_qcow2(const DiskUri& uri, const BackendOptions& options,
                                            StorageSessions& sessions, int depth) {
  if (depth >= kMaxChainDepth) {
    return fail(ELOOP, uri.to_string() + ": backing chain deeper than 16 images");
  }
  if (std::holds_alternative<RbdLocation>(uri.location) && !options.read_only) {
    return fail(EROFS, uri.to_string() + ": qcow2 images on RBD open read-only (an RBD image does "
                       "not grow; use RBD clones for writable disks)");
  }
  BackendOptions file_options = options;
  file_options.format = ImageFormat::kRaw;
  file_options.growable = !options.read_only;
  // The file ends where qemu-img stopped writing (qcow2 spec: after its last cluster or table;
  // a fresh `qemu-img create` overlay is 196616 bytes), not on a sector boundary.
  file_options.container = true;
  auto file = HCN_TRY(open_backend(uri, file_options, sessions));
  Header h;
  {
    auto disk = HCN_TRY(SyncDisk::open(file, 2));
    h = HCN_TRY(with_context(read_header(disk), uri.to_string()));
  }
  std::shared_ptr<Backend> backing;
  if (!h.backing_file.empty()) {
    auto where = with_context(resolve_backing(uri, h.backing_file), uri.to_string());
    if (!where) return fail(where.error());
    BackendOptions bo = options;
    bo.read_only = true;
    bo.growable = false;
    bo.container = false;  // a raw backing file is a disk; a qcow2 one opens its own file below
    if (h.backing_format == "qcow2") {
      bo.format = ImageFormat::kQcow2;
    } else if (h.backing_format == "raw") {
      bo.format = ImageFormat::kRaw;
    } else if (h.backing_format.empty()) {
      // No format recorded: look at the magic (a raw image starting with "QFI\xfb" would be
      // misread, which is why hcnode always records the format).
      // The probe opens the file as a container: a qcow2 backing file may end anywhere (a
      // raw one is then opened again, as a disk).
      bo.format = ImageFormat::kRaw;
      BackendOptions probe = bo;
      probe.container = true;
      auto raw = with_context(open_backend(*where, probe, sessions), uri.to_string() + ": backing");
      if (!raw) return fail(raw.error());
      auto disk = HCN_TRY(SyncDisk::open(*raw, 2));
      uint8_t magic[512] = {};
      HCN_TRY_STATUS(disk.read(0, magic));  // zeroes past the end of a short file
      if (load_be32(magic) == kMagic) bo.format = ImageFormat::kQcow2;
    } else {
      return fail(EINVAL, fmt::format("{}: backing format '{}' is not supported (raw, qcow2)",
                                      uri.to_string(), h.backing_format));
    }
    if (bo.format == ImageFormat::kQcow2) {
      backing = HCN_TRY(open_qcow2(*where, bo, sessions, depth + 1));
    } else {
      auto b = with_context(open_backend(*where, bo, sessions), uri.to_string() + ": backing");
      if (!b) return fail(b.error());
      backing = *b;
    }
  }
  Qcow2Options qo;
  qo.read_only = options.read_only;
  auto backend = HCN_TRY(Qcow2Backend::open(std::move(file), std::move(backing), qo));
  return std::shared_ptr<Backend>(std::move(backend));
}

}  // namespace hcnode::blockdev::qcow2

#include "cluster/cli/local_image_client.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "storage/image_service.hpp"

namespace hcnode::cli {

namespace {

Result<storage::StorageConfig> load_config(const std::optional<std::string>& path) {
  if (!path) {
    return storage::load_storage_config();
  }
  std::ifstream in(*path);
  if (!in) {
    return fail(ENOENT, "storage config " + *path + ": cannot be read");
  }
  std::stringstream text;
  text << in.rdbuf();
  return storage::parse_storage_config(text.str(), *path);
}

}  // namespace

LocalImageClient::LocalImageClient(std::optional<std::string> config_path)
    : config_path_(std::move(config_path)) {}

LocalImageClient::~LocalImageClient() {
  if (service_) {
    // Every call has returned: drop Gluster connections without glfs_fini (which costs ~10 s
    // per volume), as a process that is about to exit may.
    service_->sessions().prepare_process_exit();
  }
}

Result<storage::ImageService*> LocalImageClient::service() {
  if (!service_) {
    auto config = HCN_TRY(load_config(config_path_));
    service_ = HCN_TRY(storage::ImageService::create(std::move(config)));
  }
  return service_.get();
}

Result<std::vector<storage::PoolSummary>> LocalImageClient::pools() {
  return HCN_TRY(service())->pools();
}

Result<std::vector<std::string>> LocalImageClient::pool_names() {
  std::vector<std::string> names;
  for (const auto& p : HCN_TRY(service())->config().pools) {
    names.push_back(p.name);
  }
  return names;
}

Result<std::vector<storage::ImageSummary>> LocalImageClient::list(std::string_view pool,
                                                                  bool include_incomplete) {
  return HCN_TRY(service())->list(pool, {.include_incomplete = include_incomplete});
}

Result<storage::ImageInfo> LocalImageClient::info(const ImageRef& image) {
  return HCN_TRY(service())->info(image);
}

Result<storage::DuReport> LocalImageClient::du(std::string_view pool,
                                               std::optional<std::string> name) {
  return HCN_TRY(service())->du(pool, std::move(name));
}

Result<storage::ImageInfo> LocalImageClient::create(const ImageRef& image, uint64_t size) {
  return HCN_TRY(service())->create_image(image, {.size = size});
}

Result<storage::ImageInfo> LocalImageClient::import_image(const ImportRequest& request) {
  auto* svc = HCN_TRY(service());
  storage::ImportOptions options;
  options.source_format = request.source_format;
  options.keep_qcow2 = request.keep_qcow2;
  options.stream_size = request.stream_size;
  options.progress = request.progress;
  if (request.source == "-") {
    return svc->import_stream(STDIN_FILENO, request.image, options);
  }
  return svc->import_file(request.source, request.image, options);
}

Status LocalImageClient::export_image(const ExportRequest& request) {
  auto* svc = HCN_TRY(service());
  storage::ExportOptions options;
  options.overwrite = request.overwrite;
  options.sparse = request.sparse;
  options.progress = request.progress;
  if (request.destination == "-") {
    return svc->export_stream(request.image, STDOUT_FILENO, options);
  }
  return svc->export_file(request.image, request.destination, options);
}

Result<storage::ImageInfo> LocalImageClient::clone(const ImageRef& source, const ImageRef& clone) {
  return HCN_TRY(service())->clone(source, clone);
}

Status LocalImageClient::flatten(const ImageRef& image, const ProgressCallback& progress) {
  return HCN_TRY(service())->flatten(image, progress);
}

Status LocalImageClient::resize(const ImageRef& image, uint64_t size, bool allow_shrink,
                                const ProgressCallback& progress) {
  storage::ResizeOptions options;
  options.allow_shrink = allow_shrink;
  options.progress = progress;
  return HCN_TRY(service())->resize(image, size, options);
}

Status LocalImageClient::remove(const ImageRef& image, bool flatten_children,
                                const ProgressCallback& progress) {
  storage::RemoveOptions options;
  options.flatten_children = flatten_children;
  options.progress = progress;
  return HCN_TRY(service())->remove(image, options);
}

Status LocalImageClient::mark_golden(const ImageRef& image) {
  return HCN_TRY(service())->mark_golden(image);
}

Status LocalImageClient::unmark_golden(const ImageRef& image) {
  return HCN_TRY(service())->unmark_golden(image);
}

Result<storage::SnapshotInfo> LocalImageClient::snapshot_create(const ImageRef& image,
                                                                std::string_view snapshot) {
  return HCN_TRY(service())->snapshot_create(image, snapshot);
}

Result<std::vector<storage::SnapshotInfo>> LocalImageClient::snapshot_list(const ImageRef& image) {
  return HCN_TRY(service())->snapshot_list(image);
}

Status LocalImageClient::snapshot_remove(const ImageRef& image, std::string_view snapshot) {
  return HCN_TRY(service())->snapshot_remove(image, snapshot);
}

Status LocalImageClient::snapshot_rollback(const ImageRef& image, std::string_view snapshot,
                                           const ProgressCallback& progress) {
  return HCN_TRY(service())->snapshot_rollback(image, snapshot, progress);
}

Result<std::vector<std::string>> LocalImageClient::purge(std::string_view pool,
                                                        std::chrono::seconds min_age) {
  return HCN_TRY(service())->purge_incomplete(pool, min_age);
}

}  // namespace hcnode::cli

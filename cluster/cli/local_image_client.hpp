// ImageClient over the storage library in this process (no agent): what hcctl uses until the
// cluster agent's REST API exists. The storage config is loaded on the first call that needs
// it (so `hcctl --help` never touches a cluster): --config FILE if given, else
// load_storage_config() (HCNODE_STORAGE_CONFIG, /etc/hcnode/storage.json, the dev-cluster
// environment).
//
// Meant for a CLI process: destroying the client drops its Gluster connections without
// glfs_fini (StorageSessions::prepare_process_exit), so destroy it only when the process is
// about to exit.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cluster/cli/image_client.hpp"

namespace hcnode::storage {
class ImageService;
}

namespace hcnode::cli {

class LocalImageClient : public ImageClient {
 public:
  // config_path: an explicit storage config file (--config), or nullopt for the defaults.
  explicit LocalImageClient(std::optional<std::string> config_path);
  ~LocalImageClient() override;

  Result<std::vector<storage::PoolSummary>> pools() override;
  Result<std::vector<std::string>> pool_names() override;
  Result<std::vector<storage::ImageSummary>> list(std::string_view pool,
                                                  bool include_incomplete) override;
  Result<storage::ImageInfo> info(const ImageRef& image) override;
  Result<storage::DuReport> du(std::string_view pool, std::optional<std::string> name) override;
  Result<storage::ImageInfo> create(const ImageRef& image, uint64_t size) override;
  Result<storage::ImageInfo> import_image(const ImportRequest& request) override;
  Status export_image(const ExportRequest& request) override;
  Result<storage::ImageInfo> clone(const ImageRef& source, const ImageRef& clone) override;
  Status flatten(const ImageRef& image, const ProgressCallback& progress) override;
  Status resize(const ImageRef& image, uint64_t size, bool allow_shrink,
                const ProgressCallback& progress) override;
  Status remove(const ImageRef& image, bool flatten_children,
                const ProgressCallback& progress) override;
  Result<std::vector<std::string>> purge(std::string_view pool,
                                         std::chrono::seconds min_age) override;
  Status mark_golden(const ImageRef& image) override;
  Status unmark_golden(const ImageRef& image) override;
  Result<storage::SnapshotInfo> snapshot_create(const ImageRef& image,
                                                std::string_view snapshot) override;
  Result<std::vector<storage::SnapshotInfo>> snapshot_list(const ImageRef& image) override;
  Status snapshot_remove(const ImageRef& image, std::string_view snapshot) override;
  Status snapshot_rollback(const ImageRef& image, std::string_view snapshot,
                           const ProgressCallback& progress) override;

 private:
  // The service, created on first use.
  Result<storage::ImageService*> service();

  std::optional<std::string> config_path_;
  std::unique_ptr<storage::ImageService> service_;
};

}  // namespace hcnode::cli

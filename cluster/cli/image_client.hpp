// The seam between hcctl's commands and whatever carries them out.
//
// Commands (image_commands.cpp, pool_commands.cpp, …) parse arguments, call an ImageClient and
// render what it returns; they never include storage/image_service.hpp. Today the only
// implementation is LocalImageClient (the storage library in this process, with ceph.conf /
// keyring / the Gluster host from the storage config, like `rbd` does). The REST client to a
// cluster agent will implement the same interface, returning the same value types
// (storage/image_info.hpp: they already serialize to the JSON the agent will send).
//
// Errors: Result with an errno-style code and a one-line message (storage/image_service.hpp
// lists the codes). Progress callbacks run on the calling thread; returning false cancels.
#pragma once

#include <chrono>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "storage/image_info.hpp"
#include "storage/image_ref.hpp"
#include "storage/pool_config.hpp"

namespace hcnode::cli {

using storage::ImageRef;
using ProgressCallback = std::function<bool(uint64_t done, uint64_t total)>;

struct ImportRequest {
  std::string source;  // a local path, or "-" for stdin (raw only)
  ImageRef image;
  std::optional<storage::ImageFormat> source_format;  // nullopt: detect
  bool keep_qcow2 = false;                            // file pools: store qcow2 as qcow2
  std::optional<uint64_t> stream_size;                // stdin: bytes expected, if known
  ProgressCallback progress;
};

struct ExportRequest {
  ImageRef image;
  std::string destination;  // a local path, or "-" for stdout
  bool overwrite = false;
  bool sparse = true;
  ProgressCallback progress;
};

class ImageClient {
 public:
  virtual ~ImageClient() = default;

  // Pools and where their configuration came from ("environment" or a file path).
  virtual Result<std::vector<storage::PoolSummary>> pools() = 0;
  virtual Result<std::vector<std::string>> pool_names() = 0;

  virtual Result<std::vector<storage::ImageSummary>> list(std::string_view pool,
                                                          bool include_incomplete) = 0;
  virtual Result<storage::ImageInfo> info(const ImageRef& image) = 0;
  virtual Result<storage::DuReport> du(std::string_view pool,
                                       std::optional<std::string> name) = 0;

  virtual Result<storage::ImageInfo> create(const ImageRef& image, uint64_t size) = 0;
  virtual Result<storage::ImageInfo> import_image(const ImportRequest& request) = 0;
  virtual Status export_image(const ExportRequest& request) = 0;
  virtual Result<storage::ImageInfo> clone(const ImageRef& source, const ImageRef& clone) = 0;
  virtual Status flatten(const ImageRef& image, const ProgressCallback& progress) = 0;
  virtual Status resize(const ImageRef& image, uint64_t size, bool allow_shrink,
                        const ProgressCallback& progress) = 0;
  virtual Status remove(const ImageRef& image, bool flatten_children,
                        const ProgressCallback& progress) = 0;
  // Removes what interrupted operations left in a pool (older than min_age); their names.
  virtual Result<std::vector<std::string>> purge(std::string_view pool,
                                                 std::chrono::seconds min_age) = 0;

  virtual Status mark_golden(const ImageRef& image) = 0;
  virtual Status unmark_golden(const ImageRef& image) = 0;

  virtual Result<storage::SnapshotInfo> snapshot_create(const ImageRef& image,
                                                        std::string_view snapshot) = 0;
  virtual Result<std::vector<storage::SnapshotInfo>> snapshot_list(const ImageRef& image) = 0;
  virtual Status snapshot_remove(const ImageRef& image, std::string_view snapshot) = 0;
  virtual Status snapshot_rollback(const ImageRef& image, std::string_view snapshot,
                                   const ProgressCallback& progress) = 0;
};

}  // namespace hcnode::cli

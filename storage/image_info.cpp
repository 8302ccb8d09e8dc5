#include "storage/image_info.hpp"

namespace hcnode::storage {

namespace {

template <typename T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

void to_json(nlohmann::json& j, const SnapshotInfo& v) {
  j = {{"name", v.name}, {"id", v.id},         {"size", v.size},
       {"created", v.created}, {"children", v.children}};
}

void to_json(nlohmann::json& j, const BackingLayer& v) {
  j = {{"backing_file", v.backing_file},
       {"uri", v.uri},
       {"format", v.format},
       {"image", optional_json(v.image)}};
}

void to_json(nlohmann::json& j, const ImageSummary& v) {
  j = {{"pool", v.pool},
       {"name", v.name},
       {"size", v.size},
       {"format", blockdev::to_string(v.format)},
       {"parent", optional_json(v.parent)},
       {"golden", v.golden},
       {"incomplete", optional_json(v.incomplete)}};
}

void to_json(nlohmann::json& j, const ImageInfo& v) {
  j = {{"pool", v.pool},
       {"name", v.name},
       {"pool_kind", to_string(v.pool_kind)},
       {"uri", v.uri},
       {"format", blockdev::to_string(v.format)},
       {"size", v.size},
       {"used", v.used},
       {"parent", optional_json(v.parent)},
       {"children", v.children},
       {"snapshots", v.snapshots},
       {"golden", v.golden},
       {"read_only", v.read_only},
       {"features", v.features},
       {"backing_chain", v.backing_chain},
       {"incomplete", optional_json(v.incomplete)}};
}

void to_json(nlohmann::json& j, const DuEntry& v) {
  j = {{"name", v.name}, {"provisioned", v.provisioned}, {"used", v.used}};
}

void to_json(nlohmann::json& j, const PoolSpace& v) {
  j = {{"total", v.total}, {"free", v.free}};
}

void to_json(nlohmann::json& j, const DuReport& v) {
  j = {{"pool", v.pool},
       {"images", v.images},
       {"total_provisioned", v.total_provisioned},
       {"total_used", v.total_used},
       {"space", optional_json(v.space)}};
}

void to_json(nlohmann::json& j, const PoolSummary& v) {
  j = {{"name", v.name},
       {"kind", to_string(v.kind)},
       {"location", v.location},
       {"space", optional_json(v.space)},
       {"reachable", v.reachable},
       {"error", v.error}};
}

}  // namespace hcnode::storage

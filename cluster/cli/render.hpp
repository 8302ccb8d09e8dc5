// How hcctl shows storage results: human text (tables, key/value lists, sizes like "10 GiB")
// or JSON. The JSON of each value is the storage type's own (storage/image_info.hpp: keys are
// the field names, sizes in bytes, times in Unix seconds) — the same document the agent's REST
// API will return, so scripts keep working when hcctl switches transport.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/image_info.hpp"

namespace hcnode::cli {

// Prints a JSON document on stdout (indented, one trailing newline).
void print_json(const nlohmann::json& j);
// Prints human text on stdout as is.
void print_text(const std::string& text);

std::string render_pools(const std::vector<storage::PoolSummary>& pools);
// with_pool: the NAME column shows POOL/NAME (listing several pools).
std::string render_images(const std::vector<storage::ImageSummary>& images, bool with_pool);
std::string render_info(const storage::ImageInfo& info);
std::string render_du(const storage::DuReport& report);
std::string render_snapshots(const std::vector<storage::SnapshotInfo>& snapshots);

// "2026-11-22 07:33:12 UTC", or "" for 0 (unknown).
std::string format_time(int64_t unix_seconds);

}  // namespace hcnode::cli

#include "cluster/cli/render.hpp"

#include <algorithm>
#include <ctime>
#include <cstdio>

#include <spdlog/fmt/fmt.h>

#include "base/size.hpp"
#include "cluster/cli/table.hpp"

namespace hcnode::cli {

namespace {

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) {
      out += sep;
    }
    out += s;
  }
  return out;
}

std::string size_with_bytes(uint64_t bytes) {
  return fmt::format("{} ({} bytes)", format_size(bytes), bytes);
}

std::string space_text(const std::optional<storage::PoolSpace>& space) {
  if (!space) {
    return "";
  }
  return fmt::format("{} free of {}", format_size(space->free), format_size(space->total));
}

}  // namespace

void print_json(const nlohmann::json& j) {
  std::string text = j.dump(2) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
}

void print_text(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

std::string format_time(int64_t unix_seconds) {
  if (unix_seconds == 0) {
    return "";
  }
  const std::time_t t = unix_seconds;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string render_pools(const std::vector<storage::PoolSummary>& pools) {
  Table t({{"NAME"}, {"KIND"}, {"LOCATION"}, {"SIZE", Align::kRight}, {"FREE", Align::kRight},
           {"STATUS"}});
  for (const auto& p : pools) {
    t.add_row({p.name, storage::to_string(p.kind), p.location,
               p.space ? format_size(p.space->total) : "", p.space ? format_size(p.space->free) : "",
               p.reachable ? "ok" : "unreachable: " + p.error});
  }
  return t.render();
}

std::string render_images(const std::vector<storage::ImageSummary>& images, bool with_pool) {
  // STATE only when some image is incomplete (ls --all).
  const bool with_state = std::any_of(images.begin(), images.end(),
                                      [](const auto& i) { return i.incomplete.has_value(); });
  std::vector<Column> columns = {{"NAME"}, {"SIZE", Align::kRight}, {"FORMAT"}, {"GOLDEN"},
                                 {"PARENT"}};
  if (with_state) columns.push_back({"STATE"});
  Table t(columns);
  for (const auto& i : images) {
    std::vector<std::string> row = {with_pool ? i.pool + "/" + i.name : i.name,
                                    format_size(i.size), blockdev::to_string(i.format),
                                    i.golden ? "yes" : "", i.parent.value_or("")};
    if (with_state) row.push_back(i.incomplete ? "incomplete" : "");
    t.add_row(row);
  }
  return t.render();
}

std::string render_info(const storage::ImageInfo& info) {
  KeyValueList kv;
  kv.add("image", info.pool + "/" + info.name);
  kv.add("uri", info.uri);
  kv.add("pool kind", storage::to_string(info.pool_kind));
  kv.add("format", blockdev::to_string(info.format));
  kv.add("size", size_with_bytes(info.size));
  kv.add("used", size_with_bytes(info.used));
  kv.add("golden", info.golden ? "yes" : "no");
  if (info.incomplete) {
    kv.add("incomplete", *info.incomplete + " (remove it and clone again)");
  }
  if (info.read_only) {
    kv.add("read-only", "yes");
  }
  kv.add("parent", info.parent.value_or(""));
  kv.add("children", join(info.children));
  if (!info.features.empty()) {
    kv.add("features", join(info.features));
  }
  for (size_t i = 0; i < info.backing_chain.size(); ++i) {
    const auto& layer = info.backing_chain[i];
    std::string text = layer.image ? *layer.image : layer.backing_file;
    if (!layer.format.empty()) {
      text += " (" + layer.format + ")";
    }
    if (!layer.uri.empty()) {
      text += " " + layer.uri;
    }
    kv.add(i == 0 ? "backing chain" : "", text);
  }
  std::string out = kv.render();
  if (!info.snapshots.empty()) {
    out += "snapshots:\n";
    std::string table = render_snapshots(info.snapshots);
    size_t pos = 0;
    while (pos < table.size()) {
      size_t end = table.find('\n', pos);
      out += "  " + table.substr(pos, end - pos + 1);
      pos = end + 1;
    }
  }
  return out;
}

std::string render_du(const storage::DuReport& report) {
  Table t({{"NAME"}, {"PROVISIONED", Align::kRight}, {"USED", Align::kRight}});
  for (const auto& e : report.images) {
    t.add_row({e.name, format_size(e.provisioned), format_size(e.used)});
  }
  t.add_row({"<total>", format_size(report.total_provisioned), format_size(report.total_used)});
  std::string out = t.render();
  if (report.space) {
    out += fmt::format("pool {}: {}\n", report.pool, space_text(report.space));
  }
  return out;
}

std::string render_snapshots(const std::vector<storage::SnapshotInfo>& snapshots) {
  Table t({{"NAME"}, {"ID", Align::kRight}, {"SIZE", Align::kRight}, {"CREATED"}, {"CHILDREN"}});
  for (const auto& s : snapshots) {
    t.add_row({s.name, std::to_string(s.id), format_size(s.size), format_time(s.created),
               join(s.children)});
  }
  return t.render();
}

}  // namespace hcnode::cli

#include "compute/disk_config.hpp"

#include <bit>
#include <charconv>

#include <nlohmann/json.hpp>

#include "blockdev/disk_uri.hpp"
#include "blockdev/open_backend.hpp"

namespace hcnode::compute {
namespace {

constexpr uint16_t kMaxDiskQueues = 64;
constexpr size_t kMaxSerial = 20;  // VIRTIO_BLK_ID_BYTES

Result<bool> parse_bool(std::string_view key, std::string_view v) {
  if (v == "on" || v == "true" || v == "yes" || v == "1") return true;
  if (v == "off" || v == "false" || v == "no" || v == "0") return false;
  return fail(EINVAL, "disk " + std::string(key) + " '" + std::string(v) + "' (expected on or off)");
}

Result<uint16_t> parse_u16(std::string_view key, std::string_view v) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
  if (ec != std::errc() || end != v.data() + v.size() || value > 0xFFFF) {
    return fail(EINVAL, "disk " + std::string(key) + " '" + std::string(v) + "' is not a number");
  }
  return static_cast<uint16_t>(value);
}

// Applies one key; shared by the flag and the JSON form (JSON values arrive as text).
Status apply_key(DiskConfig& d, std::string_view key, std::string_view value) {
  if (key == "uri") {
    d.uri = value;
  } else if (key == "format") {
    d.format = value;
  } else if (key == "readonly") {
    d.read_only = HCN_TRY(parse_bool(key, value));
  } else if (key == "serial") {
    d.serial = value;
  } else if (key == "queues") {
    d.queues = HCN_TRY(parse_u16(key, value));
  } else if (key == "queue_size") {
    d.queue_size = HCN_TRY(parse_u16(key, value));
  } else if (key == "cache") {
    d.cache = value;
  } else {
    return fail(EINVAL, "disk: unknown key '" + std::string(key) +
                            "' (known: uri, format, readonly, serial, queues, queue_size, cache)");
  }
  return {};
}

}  // namespace

nlohmann::json DiskConfig::to_json() const {
  return {{"uri", uri},       {"format", format},         {"readonly", read_only},
          {"serial", serial}, {"queues", queues},         {"queue_size", queue_size},
          {"cache", cache}};
}

Result<DiskConfig> parse_disk_spec(std::string_view text) {
  DiskConfig d;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view item = text.substr(pos, comma - pos);
    if (item.empty()) {
      return fail(EINVAL, "disk '" + std::string(text) + "': empty item");
    }
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return fail(EINVAL, "disk '" + std::string(text) + "': '" + std::string(item) +
                              "' is not key=value");
    }
    HCN_TRY_STATUS(apply_key(d, item.substr(0, eq), item.substr(eq + 1)));
    pos = comma + 1;
  }
  return d;
}

Result<DiskConfig> disk_from_json(const nlohmann::json& json) {
  if (!json.is_object()) return fail(EINVAL, "config: each entry of 'disks' must be an object");
  DiskConfig d;
  for (const auto& [key, value] : json.items()) {
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_boolean()) {
      text = value.get<bool>() ? "on" : "off";
    } else if (value.is_number_unsigned()) {
      text = std::to_string(value.get<uint64_t>());
    } else {
      return fail(EINVAL, "config: disk key '" + key + "' has an unsupported value type");
    }
    HCN_TRY_STATUS(apply_key(d, key, text));
  }
  return d;
}

Status validate_disk(const DiskConfig& d) {
  if (d.uri.empty()) return fail(EINVAL, "disk: no uri given (uri=rbd:POOL/IMAGE, gluster://..., file:/PATH)");
  HCN_TRY_STATUS(with_context(blockdev::parse_disk_uri(d.uri), "disk uri"));
  HCN_TRY_STATUS(with_context(blockdev::parse_image_format(d.format), "disk " + d.uri));
  if (d.serial.size() > kMaxSerial) {
    return fail(EINVAL, "disk " + d.uri + ": serial longer than 20 characters");
  }
  for (char c : d.serial) {
    if (c < 0x21 || c > 0x7E) {
      return fail(EINVAL, "disk " + d.uri + ": serial must be printable ASCII without spaces");
    }
  }
  if (d.queues > kMaxDiskQueues) {
    return fail(EINVAL, "disk " + d.uri + ": queues " + std::to_string(d.queues) + " is more than 64");
  }
  if (d.queue_size < 16 || d.queue_size > 1024 || !std::has_single_bit(d.queue_size)) {
    return fail(EINVAL, "disk " + d.uri + ": queue_size must be a power of two in 16..1024");
  }
  HCN_TRY_STATUS(with_context(blockdev::parse_cache_policy(d.cache), "disk " + d.uri));
  return {};
}

}  // namespace hcnode::compute

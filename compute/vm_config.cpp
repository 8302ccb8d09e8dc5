#include "compute/vm_config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "base/log.hpp"
#include "base/size.hpp"

namespace hcnode::compute {
namespace {

Status check_readable_file(const std::string& field, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fail(from_errno(field + " " + path));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(EINVAL, field + " " + path + " is not a regular file");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return fail(from_errno(field + " " + path));
  }
  return {};
}

const char* pv_name(PvHypercalls v) {
  switch (v) {
    case PvHypercalls::kOn: return "on";
    case PvHypercalls::kOff: return "off";
    default: return "auto";
  }
}

nlohmann::json disks_json(const std::vector<DiskConfig>& disks) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : disks) out.push_back(d.to_json());
  return out;
}

}  // namespace

Result<PvHypercalls> parse_pv_hypercalls(const std::string& text) {
  if (text == "auto") return PvHypercalls::kAuto;
  if (text == "on") return PvHypercalls::kOn;
  if (text == "off") return PvHypercalls::kOff;
  return fail(EINVAL, "pv_hypercalls '" + text + "' (expected auto, on or off)");
}

nlohmann::json VmConfig::to_json() const {
  return nlohmann::json{{"memory", memory_bytes}, {"vcpus", vcpus},       {"kernel", kernel},
                        {"initrd", initrd},       {"cmdline", cmdline},   {"serial", serial},
                        {"control_socket", control_socket},               {"log_level", log_level},
                        {"log_file", log_file},   {"rng", rng},           {"pv_hypercalls", pv_name(pv_hypercalls)},
                        {"debug_exit", debug_exit}, {"disks", disks_json(disks)}};
}

Status apply_json(const nlohmann::json& json, VmConfig& config) {
  if (!json.is_object()) {
    return fail(EINVAL, "config: expected a JSON object");
  }
  auto want_string = [&](const std::string& key, const nlohmann::json& v) -> Result<std::string> {
    if (!v.is_string()) {
      return fail(EINVAL, "config: '" + key + "' must be a string");
    }
    return v.get<std::string>();
  };
  for (const auto& [key, value] : json.items()) {
    if (key == "memory") {
      if (value.is_number_unsigned()) {
        config.memory_bytes = value.get<uint64_t>();
      } else if (value.is_string()) {
        config.memory_bytes = HCN_TRY(with_context(parse_size(value.get<std::string>()), "config: memory"));
      } else {
        return fail(EINVAL, "config: 'memory' must be a size like \"128M\" or a number of bytes");
      }
    } else if (key == "vcpus") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 0xFFFF) {
        return fail(EINVAL, "config: 'vcpus' must be a small positive integer");
      }
      config.vcpus = value.get<uint32_t>();
    } else if (key == "kernel") {
      config.kernel = HCN_TRY(want_string(key, value));
    } else if (key == "initrd") {
      config.initrd = HCN_TRY(want_string(key, value));
    } else if (key == "cmdline") {
      config.cmdline = HCN_TRY(want_string(key, value));
    } else if (key == "serial") {
      config.serial = HCN_TRY(want_string(key, value));
    } else if (key == "control_socket") {
      config.control_socket = HCN_TRY(want_string(key, value));
    } else if (key == "log_level") {
      config.log_level = HCN_TRY(want_string(key, value));
    } else if (key == "log_file") {
      config.log_file = HCN_TRY(want_string(key, value));
    } else if (key == "rng") {
      if (!value.is_boolean()) {
        return fail(EINVAL, "config: 'rng' must be true or false");
      }
      config.rng = value.get<bool>();
    } else if (key == "debug_exit") {
      if (!value.is_boolean()) {
        return fail(EINVAL, "config: 'debug_exit' must be true or false");
      }
      config.debug_exit = value.get<bool>();
    } else if (key == "pv_hypercalls") {
      std::string text = HCN_TRY(want_string(key, value));
      config.pv_hypercalls = HCN_TRY(parse_pv_hypercalls(text));
    } else if (key == "disks") {
      if (!value.is_array()) {
        return fail(EINVAL, "config: 'disks' must be an array of disk objects");
      }
      config.disks.clear();
      for (const auto& d : value) {
        config.disks.push_back(HCN_TRY(disk_from_json(d)));
      }
    } else {
      return fail(EINVAL, "config: unknown key '" + key + "'");
    }
  }
  return {};
}

Status apply_json_file(const std::string& path, VmConfig& config) {
  std::ifstream in(path);
  if (!in) {
    return fail(from_errno("config file " + path));
  }
  nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return fail(EINVAL, "config file " + path + ": not valid JSON");
  }
  return with_context(apply_json(json, config), path);
}

Status validate_settings(const VmConfig& config) {
  if (config.memory_bytes % 4096 != 0) {
    return fail(EINVAL, "memory " + std::to_string(config.memory_bytes) + " bytes is not a multiple of 4 KiB");
  }
  if (config.memory_bytes < kMinMemory) {
    return fail(EINVAL, "memory " + format_size(config.memory_bytes) + " is below the minimum of " + format_size(kMinMemory));
  }
  if (config.vcpus == 0 || config.vcpus > kMaxVcpus) {
    return fail(EINVAL, "vcpus " + std::to_string(config.vcpus) + " is outside 1.." + std::to_string(kMaxVcpus));
  }
  if (config.kernel.empty()) {
    return fail(EINVAL, "no kernel given (--kernel PATH)");
  }
  HCN_TRY_STATUS(parse_log_level(config.log_level));
  const std::string& s = config.serial;
  if (!(s == "stdout" || s == "none" || (s.starts_with("file:") && s.size() > 5) ||
        (s.starts_with("unix:") && s.size() > 5))) {
    return fail(EINVAL, "serial '" + s + "' (expected stdout, file:PATH, unix:PATH or none)");
  }
  if (config.disks.size() > kMaxDisks) {
    return fail(EINVAL, std::to_string(config.disks.size()) + " disks (at most " + std::to_string(kMaxDisks) + ")");
  }
  for (const auto& d : config.disks) {
    HCN_TRY_STATUS(validate_disk(d));
  }
  return {};
}

Status validate_boot_files(const VmConfig& config) {
  HCN_TRY_STATUS(check_readable_file("kernel", config.kernel));
  if (!config.initrd.empty()) {
    HCN_TRY_STATUS(check_readable_file("initrd", config.initrd));
  }
  return {};
}

Status validate(const VmConfig& config) {
  HCN_TRY_STATUS(validate_settings(config));
  return validate_boot_files(config);
}

}  // namespace hcnode::compute

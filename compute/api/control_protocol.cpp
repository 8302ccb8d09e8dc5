#include "compute/api/control_protocol.hpp"

namespace hcnode::compute::api {
namespace {

struct CommandName {
  const char* name;
  Command command;
};
constexpr CommandName kCommands[] = {
    {"describe", Command::kDescribe}, {"stats", Command::kStats},       {"pause", Command::kPause},
    {"resume", Command::kResume},     {"shutdown", Command::kShutdown}, {"console", Command::kConsole},
    {"vcpu_state", Command::kVcpuState},
};

Result<uint32_t> bounded_uint(const nlohmann::json& v, const char* key, uint32_t max) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max) {
    return fail(EINVAL, std::string("'") + key + "' must be an integer in 0.." + std::to_string(max));
  }
  return v.get<uint32_t>();
}

}  // namespace

Result<Request> parse_request(std::string_view line) {
  if (line.size() > kMaxLine) {
    return fail(E2BIG, "request longer than " + std::to_string(kMaxLine) + " bytes");
  }
  nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return fail(EINVAL, "request is not valid JSON");
  }
  if (!json.is_object()) {
    return fail(EINVAL, "request must be a JSON object like {\"cmd\": \"describe\"}");
  }
  Request request{};
  if (auto it = json.find("id"); it != json.end()) {
    if (!it->is_number_integer() && !it->is_string()) {
      return fail(EINVAL, "'id' must be a number or a string");
    }
    request.id = *it;
  }
  auto cmd = json.find("cmd");
  if (cmd == json.end() || !cmd->is_string()) {
    return fail(EINVAL, "missing \"cmd\" (a string)");
  }
  const std::string name = cmd->get<std::string>();
  bool found = false;
  for (const auto& c : kCommands) {
    if (name == c.name) {
      request.command = c.command;
      found = true;
    }
  }
  if (!found) {
    std::string names;
    for (const auto& c : kCommands) {
      names += names.empty() ? c.name : std::string(", ") + c.name;
    }
    // The name is echoed truncated: a hostile client must not make replies huge.
    return fail(EINVAL, "unknown command '" + name.substr(0, 64) + "' (expected " + names + ")");
  }
  for (const auto& [key, value] : json.items()) {
    if (key == "id" || key == "cmd") {
      continue;
    }
    if (key == "timeout_ms" && request.command == Command::kShutdown) {
      request.timeout_ms = HCN_TRY(bounded_uint(value, "timeout_ms", 600000));
    } else if (key == "bytes" && request.command == Command::kConsole) {
      request.console_bytes = HCN_TRY(bounded_uint(value, "bytes", 65536));
    } else {
      return fail(EINVAL, "unexpected field '" + key.substr(0, 64) + "' for " + name);
    }
  }
  return request;
}

std::string ok_reply(const nlohmann::json& id, const nlohmann::json& result) {
  nlohmann::json reply = {{"ok", true}, {"result", result}};
  if (!id.is_null()) {
    reply["id"] = id;
  }
  return reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string error_reply(const nlohmann::json& id, const std::string& message) {
  nlohmann::json reply = {{"ok", false}, {"error", message}};
  if (!id.is_null()) {
    reply["id"] = id;
  }
  return reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace hcnode::compute::api

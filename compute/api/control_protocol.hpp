// The VMM control protocol: one JSON object per line each way over a unix stream socket.
//
//   request:  {"cmd": "describe"}                      {"id": 7, "cmd": "pause"}
//             {"cmd": "shutdown", "timeout_ms": 5000}
//   reply:    {"ok": true, "result": {...}}            {"id": 7, "ok": true, "result": {}}
//             {"ok": false, "error": "unknown command 'pasue' (expected ...)"}
//
// Commands: describe, stats, pause, resume, shutdown [timeout_ms], console [bytes] (the last
// bytes of serial output), vcpu_state (every vCPU's KVM state; the VM must be paused). An "id" (number or string) is echoed back. Malformed or unknown
// requests get an error reply; the connection and the VM go on. Lines longer than kMaxLine
// are refused and the connection is closed (a client that sends them is broken or hostile).
// This is the interface the cluster agent drives; new commands are added, none changes meaning.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace hcnode::compute::api {

inline constexpr size_t kMaxLine = 64 * 1024;

enum class Command { kDescribe, kStats, kPause, kResume, kShutdown, kConsole, kVcpuState };

struct Request {
  Command command;
  nlohmann::json id;             // null when the client sent none
  uint32_t timeout_ms = 10000;   // shutdown: how long the graceful stop may take
  uint32_t console_bytes = 4096; // console: how much history
};

// Parses one request line (without the newline). The error message is what the client sees.
Result<Request> parse_request(std::string_view line);

// Reply lines (with the trailing newline).
std::string ok_reply(const nlohmann::json& id, const nlohmann::json& result);
std::string error_reply(const nlohmann::json& id, const std::string& message);

}  // namespace hcnode::compute::api

// Logging set-up for every hcnode binary (spdlog).
//
// On a terminal: short, coloured, human lines. Into a file (or when stderr is not a TTY): one
// line per event with an ISO-8601 timestamp, level, thread name and message, so logs can be
// grepped and shipped line by line:
//   2026-11-22T01:02:03.456789+00:00 level=info thread=vcpu0 vm started
#pragma once

#include <optional>
#include <string>

#include <spdlog/common.h>

#include "base/result.hpp"

namespace hcnode {

struct LogOptions {
  spdlog::level::level_enum level = spdlog::level::info;
  // Log into this file instead of stderr (appends).
  std::optional<std::string> file;
  // Force the one-line-per-event format on stderr even on a TTY.
  bool plain = false;
};

// Installs the default logger. Call once, early in main().
Status setup_logging(const LogOptions& options);

// Parses "trace|debug|info|warn|error|critical|off".
Result<spdlog::level::level_enum> parse_log_level(const std::string& text);

}  // namespace hcnode

#include "base/log.hpp"

#include <unistd.h>

#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "base/thread.hpp"

namespace hcnode {
namespace {

// %N in a pattern: the kernel name of the logging thread (vcpu0, blk0-q1, ...).
class ThreadNameFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    thread_local const std::string name = current_thread_name();
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ThreadNameFlag>();
  }
};

std::unique_ptr<spdlog::formatter> make_formatter(bool human) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<ThreadNameFlag>('N');
  if (human) {
    formatter->set_pattern("%H:%M:%S.%e %^%-5l%$ [%N] %v");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%f%z level=%l thread=%N %v");
  }
  return formatter;
}

}  // namespace

Result<spdlog::level::level_enum> parse_log_level(const std::string& text) {
  static const std::pair<const char*, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off},
  };
  for (const auto& [name, level] : kLevels) {
    if (text == name) {
      return level;
    }
  }
  return fail(EINVAL, "unknown log level '" + text +
                          "' (expected trace, debug, info, warn, error, critical or off)");
}

Status setup_logging(const LogOptions& options) {
  std::shared_ptr<spdlog::logger> logger;
  bool human = false;
  try {
    if (options.file) {
      auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(*options.file, /*truncate=*/false);
      logger = std::make_shared<spdlog::logger>("hcnode", sink);
    } else {
      human = !options.plain && ::isatty(STDERR_FILENO) == 1;
      auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
          human ? spdlog::color_mode::automatic : spdlog::color_mode::never);
      logger = std::make_shared<spdlog::logger>("hcnode", sink);
    }
  } catch (const spdlog::spdlog_ex& e) {
    // spdlog reports file-open failures by exception; convert at this boundary.
    return fail(EIO, std::string("log set-up: ") + e.what());
  }
  logger->set_formatter(make_formatter(human));
  logger->set_level(options.level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  return {};
}

}  // namespace hcnode

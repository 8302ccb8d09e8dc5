#include "base/log.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include "base/thread.hpp"

using namespace hcnode;

TEST_CASE("parse_log_level accepts the documented names and rejects others", "[base][log]") {
  CHECK(parse_log_level("debug").value() == spdlog::level::debug);
  CHECK(parse_log_level("error").value() == spdlog::level::err);
  auto bad = parse_log_level("loud");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code() == EINVAL);
  CHECK(bad.error().message().find("'loud'") != std::string::npos);
}

TEST_CASE("file logging writes one line per event with level and thread name", "[base][log]") {
  auto path = std::filesystem::temp_directory_path() / ("hcnode-log-test-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  LogOptions options;
  options.file = path.string();
  options.level = spdlog::level::debug;
  REQUIRE(setup_logging(options).has_value());
  auto t = spawn_named_thread("vcpu3", [](std::stop_token) { spdlog::info("vm {} started", "a"); });
  t.join();
  spdlog::debug("second\nline");  // a newline inside a message is the caller's business
  spdlog::default_logger()->flush();

  std::ifstream in(path);
  std::string first;
  std::getline(in, first);
  std::regex line(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:?\d\d level=info thread=vcpu3 vm a started$)");
  CHECK(std::regex_match(first, line));
  std::string second;
  std::getline(in, second);
  CHECK(second.find("level=debug") != std::string::npos);
  std::filesystem::remove(path);
  REQUIRE(setup_logging(LogOptions{}).has_value());
}

TEST_CASE("setup_logging reports an unwritable log file", "[base][log]") {
  LogOptions options;
  // spdlog creates missing parent directories, so use a parent that is not a directory.
  options.file = "/dev/null/y.log";
  auto r = setup_logging(options);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message().find("y.log") != std::string::npos);
}

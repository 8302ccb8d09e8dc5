#include "compute/api/control_protocol.hpp"

#include <catch2/catch.hpp>

using namespace hcnode::compute::api;

TEST_CASE("control protocol: well-formed requests parse with their options", "[compute][control]") {
  auto d = parse_request(R"({"cmd":"describe"})");
  REQUIRE(d.has_value());
  CHECK(d->command == Command::kDescribe);
  CHECK(d->id.is_null());

  auto s = parse_request(R"({"id":"a-1","cmd":"shutdown","timeout_ms":2500})");
  REQUIRE(s.has_value());
  CHECK(s->command == Command::kShutdown);
  CHECK(s->id == "a-1");
  CHECK(s->timeout_ms == 2500);

  auto c = parse_request(R"({"id":9,"cmd":"console","bytes":100})");
  REQUIRE(c.has_value());
  CHECK(c->console_bytes == 100);
  CHECK(c->id == 9);

  for (const char* name : {"stats", "pause", "resume"}) {
    CHECK(parse_request(std::string(R"({"cmd":")") + name + "\"}").has_value());
  }
}

TEST_CASE("control protocol: malformed and hostile requests are refused with a reason",
          "[compute][control]") {
  struct Case {
    std::string line;
    const char* reason;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {"{", "not valid JSON"},
      {"[]", "JSON object"},
      {"\"describe\"", "JSON object"},
      {"{}", "missing \"cmd\""},
      {R"({"cmd":1})", "missing \"cmd\""},
      {R"({"cmd":"destroy"})", "unknown command 'destroy'"},
      {R"({"cmd":"pause","id":{"a":1}})", "'id' must be"},
      {R"({"cmd":"pause","id":1.5})", "'id' must be"},
      {R"({"cmd":"pause","timeout_ms":10})", "unexpected field 'timeout_ms'"},
      {R"({"cmd":"shutdown","timeout_ms":-5})", "timeout_ms"},
      {R"({"cmd":"shutdown","timeout_ms":"soon"})", "timeout_ms"},
      {R"({"cmd":"shutdown","timeout_ms":99999999999})", "timeout_ms"},
      {R"({"cmd":"console","bytes":1000000})", "bytes"},
  };
  for (const auto& c : cases) {
    INFO(c.line);
    auto r = parse_request(c.line);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().context().find(c.reason) != std::string::npos);
  }
}

TEST_CASE("control protocol: oversized lines and huge command names stay bounded", "[compute][control]") {
  std::string big = R"({"cmd":"describe","pad":")" + std::string(kMaxLine, 'x') + "\"}";
  auto r = parse_request(big);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == E2BIG);
  auto name = parse_request(R"({"cmd":")" + std::string(10000, 'z') + "\"}");
  REQUIRE_FALSE(name.has_value());
  CHECK(name.error().context().size() < 300);  // the echoed name is truncated
}

TEST_CASE("control protocol: replies are one JSON line and echo the id", "[compute][control]") {
  const std::string ok = ok_reply(7, {{"state", "running"}});
  CHECK(ok.back() == '\n');
  CHECK(ok.find('\n') == ok.size() - 1);
  auto parsed = nlohmann::json::parse(ok);
  CHECK(parsed["ok"] == true);
  CHECK(parsed["id"] == 7);
  CHECK(parsed["result"]["state"] == "running");

  auto err = nlohmann::json::parse(error_reply(nullptr, "nope\nwith newline"));
  CHECK(err["ok"] == false);
  CHECK(err["error"] == "nope\nwith newline");  // escaped inside the line, not a second line
  CHECK_FALSE(err.contains("id"));
  // Invalid UTF-8 from a hostile client cannot break the reply.
  CHECK(error_reply(nullptr, std::string("bad \xff byte")).back() == '\n');
}

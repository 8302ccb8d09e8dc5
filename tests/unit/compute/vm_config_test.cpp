#include "compute/vm_config.hpp"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "base/size.hpp"

using namespace hcnode;
using namespace hcnode::compute;

namespace {
// A readable regular file to act as a kernel (validate() only checks it can be read).
std::string temp_kernel() {
  auto path = std::filesystem::temp_directory_path() / ("hcnode-cfg-kernel-" + std::to_string(::getpid()));
  std::ofstream(path) << "x";
  return path.string();
}
}  // namespace

TEST_CASE("sizes: binary units, bounds and junk", "[compute][config]") {
  CHECK(parse_size("4096").value() == 4096);
  CHECK(parse_size("128M").value() == (128ull << 20));
  CHECK(parse_size("2g").value() == (2ull << 30));
  CHECK(parse_size("512KiB").value() == (512ull << 10));
  CHECK(parse_size("1TB").value() == (1ull << 40));
  CHECK(parse_size("").error().code() == EINVAL);
  CHECK(parse_size("M").error().code() == EINVAL);
  CHECK(parse_size("12X").error().code() == EINVAL);
  CHECK(parse_size("1MX").error().code() == EINVAL);
  CHECK(parse_size("-1").error().code() == EINVAL);
  CHECK(parse_size("99999999999999999999").error().code() == EINVAL);
  CHECK(parse_size("17179869184T").error().code() == EINVAL);  // overflows 64 bits
  CHECK(format_size(128ull << 20) == "128 MiB");
  CHECK(format_size(1536ull << 20) == "1.5 GiB");
}

TEST_CASE("config JSON: every key applies, unknown keys and wrong types are refused", "[compute][config]") {
  VmConfig c;
  auto json = nlohmann::json::parse(R"({"memory":"256M","vcpus":4,"kernel":"/k","initrd":"/i",
      "cmdline":"console=ttyS0","serial":"unix:/tmp/s","control_socket":"/tmp/c","log_level":"debug",
      "log_file":"/tmp/l","rng":false,"pv_hypercalls":"off","debug_exit":true})");
  REQUIRE(apply_json(json, c).has_value());
  CHECK(c.memory_bytes == (256ull << 20));
  CHECK(c.vcpus == 4);
  CHECK(c.kernel == "/k");
  CHECK(c.initrd == "/i");
  CHECK(c.cmdline == "console=ttyS0");
  CHECK(c.serial == "unix:/tmp/s");
  CHECK(c.control_socket == "/tmp/c");
  CHECK(c.log_level == "debug");
  CHECK(c.log_file == "/tmp/l");
  CHECK_FALSE(c.rng);
  CHECK(c.pv_hypercalls == PvHypercalls::kOff);
  CHECK(c.debug_exit);
  // to_json round-trips through apply_json.
  VmConfig back;
  REQUIRE(apply_json(c.to_json(), back).has_value());
  CHECK(back.to_json() == c.to_json());

  const std::pair<const char*, const char*> bad[] = {
      {R"({"memroy":"1G"})", "unknown key 'memroy'"},
      {R"({"memory":true})", "'memory' must be"},
      {R"({"memory":"lots"})", "memory"},
      {R"({"vcpus":-1})", "'vcpus'"},
      {R"({"vcpus":"2"})", "'vcpus'"},
      {R"({"kernel":5})", "'kernel' must be a string"},
      {R"({"rng":"yes"})", "'rng'"},
      {R"({"pv_hypercalls":"maybe"})", "pv_hypercalls"},
      {R"({"debug_exit":1})", "'debug_exit' must be true or false"},
      {R"([1])", "JSON object"},
  };
  for (const auto& [text, reason] : bad) {
    INFO(text);
    VmConfig v;
    auto r = apply_json(nlohmann::json::parse(text), v);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().context().find(reason) != std::string::npos);
  }
}

TEST_CASE("config: the debug-exit port is off unless asked for", "[compute][config]") {
  // A guest must not choose the VMM's exit status unless the operator turned the port on.
  VmConfig c;
  CHECK_FALSE(c.debug_exit);
  CHECK(c.to_json()["debug_exit"] == false);
  REQUIRE(apply_json(nlohmann::json::parse(R"({"kernel":"/k"})"), c).has_value());
  CHECK_FALSE(c.debug_exit);
  REQUIRE(apply_json(nlohmann::json::parse(R"({"debug_exit":true})"), c).has_value());
  CHECK(c.debug_exit);
  CHECK(c.to_json()["debug_exit"] == true);
  REQUIRE(apply_json(nlohmann::json::parse(R"({"debug_exit":false})"), c).has_value());
  CHECK_FALSE(c.debug_exit);
}

TEST_CASE("config validation names the field and what is expected", "[compute][config]") {
  const std::string kernel = temp_kernel();
  VmConfig good;
  good.kernel = kernel;
  CHECK(validate(good).has_value());

  auto expect = [&](VmConfig c, const char* reason) {
    auto r = validate(c);
    INFO(reason);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message().find(reason) != std::string::npos);
  };
  VmConfig c = good;
  c.memory_bytes = (128ull << 20) + 1;
  expect(c, "not a multiple of 4 KiB");
  c = good;
  c.memory_bytes = 4096;
  expect(c, "below the minimum");
  c = good;
  c.vcpus = 0;
  expect(c, "vcpus 0");
  c.vcpus = 255;
  expect(c, "vcpus 255");
  c = good;
  c.kernel.clear();
  expect(c, "no kernel");
  c.kernel = "/nonexistent/vmlinux";
  expect(c, "/nonexistent/vmlinux");
  c.kernel = "/tmp";
  expect(c, "not a regular file");
  c = good;
  c.initrd = "/nonexistent/initrd";
  expect(c, "initrd /nonexistent/initrd");
  c = good;
  c.log_level = "loud";
  expect(c, "unknown log level");
  c = good;
  c.serial = "file:";
  expect(c, "serial 'file:'");
  std::filesystem::remove(kernel);
}

TEST_CASE("config file: unreadable or invalid JSON is reported with the path", "[compute][config]") {
  VmConfig c;
  auto missing = apply_json_file("/nonexistent/vm.json", c);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message().find("/nonexistent/vm.json") != std::string::npos);
  auto path = std::filesystem::temp_directory_path() / ("hcnode-cfg-" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << "{ not json";
  auto broken = apply_json_file(path.string(), c);
  REQUIRE_FALSE(broken.has_value());
  CHECK(broken.error().message().find("not valid JSON") != std::string::npos);
  std::ofstream(path) << R"({"vcpus": 3})";
  REQUIRE(apply_json_file(path.string(), c).has_value());
  CHECK(c.vcpus == 3);
  std::filesystem::remove(path);
}

#include "compute/vcpu/vcpu_state.hpp"

TEST_CASE("vcpu state: JSON form round-trips exactly and refuses damaged input", "[compute][state]") {
  VcpuState s;
  s.regs.rip = 0x1234'5678'9abcull;
  s.regs.rflags = 0x202;
  s.sregs.cs.selector = 0x33;
  s.sregs.cs.dpl = 3;
  s.sregs.efer = 0x500;
  s.fpu.fcw = 0x37f;
  s.lapic.regs[0x20] = 0x01;
  s.mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
  s.msrs.push_back(kvm_msr_entry{0xC0000082, 0, 0xffffffff81000000ull});
  nlohmann::json json = s.to_json();
  CHECK(json["rip"] == s.regs.rip);
  CHECK(json["cpl"] == 3);
  auto back = VcpuState::from_json(nlohmann::json::parse(json.dump()));
  REQUIRE(back.has_value());
  CHECK(std::memcmp(&back->regs, &s.regs, sizeof s.regs) == 0);
  CHECK(std::memcmp(&back->sregs, &s.sregs, sizeof s.sregs) == 0);
  CHECK(std::memcmp(&back->fpu, &s.fpu, sizeof s.fpu) == 0);
  CHECK(std::memcmp(&back->lapic, &s.lapic, sizeof s.lapic) == 0);
  CHECK(back->mp_state.mp_state == KVM_MP_STATE_RUNNABLE);
  REQUIRE(back->msrs.size() == 1);
  CHECK(back->msrs[0].data == 0xffffffff81000000ull);

  auto damaged = json;
  damaged["regs"] = json["regs"].get<std::string>().substr(2);
  CHECK(VcpuState::from_json(damaged).error().code() == EINVAL);
  damaged = json;
  damaged["sregs"] = std::string(json["sregs"].get<std::string>().size(), 'z');
  CHECK(VcpuState::from_json(damaged).error().code() == EINVAL);
  damaged = json;
  damaged["version"] = 99;
  CHECK(VcpuState::from_json(damaged).error().code() == EINVAL);
  damaged = json;
  damaged["msrs"] = nlohmann::json::array({nlohmann::json::array({1})});
  CHECK(VcpuState::from_json(damaged).error().code() == EINVAL);
}

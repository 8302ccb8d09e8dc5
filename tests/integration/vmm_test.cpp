// hcnode-vmm on real KVM with the probe guest: boot, exit paths, the control socket, signals,
// and the documented errors for bad input.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sys/socket.h>

#include <sstream>
#include <thread>

#include <linux/kvm.h>

#include <catch2/catch.hpp>

#include "base/unix_socket.hpp"
#include "compute/exit_status.hpp"
#include "tests/integration/requirements.hpp"
#include "tests/integration/vmm_process.hpp"

using namespace hcnode;
using namespace hcnode::testing;
using namespace std::chrono_literals;

namespace {

std::string socket_path() {
  return (std::filesystem::temp_directory_path() / (unique_name("hcnode-vmm") + ".sock")).string();
}

// With --debug-exit: the probe's status comes back as the VMM's exit status (0 or 64+status).
std::vector<std::string> probe_args(const std::string& cmdline, const std::string& vcpus = "2") {
  return {"--kernel", probe_elf(), "--memory", "128M", "--vcpus", vcpus, "--serial", "stdout",
          "--cmdline", cmdline, "--debug-exit"};
}

uint64_t serial_bytes(const std::string& sock) {
  auto reply = control_request(sock, R"({"cmd":"stats"})");
  REQUIRE(reply.is_object());
  REQUIRE(reply["ok"] == true);
  return reply["result"]["serial_bytes_out"].get<uint64_t>();
}

}  // namespace

TEST_CASE("hcnode-vmm boots the probe guest on 2 vCPUs and exits 0 through the debug-exit port",
          "[kvm][vmm]") {
  require_kvm();
  VmmProcess vmm(probe_args("mode=print n=3"));
  auto status = vmm.wait(60s);
  INFO(vmm.stdout_text() << vmm.stderr_text());
  REQUIRE(status.has_value());
  CHECK(*status == compute::kExitGuestEnded);
  const std::string out = vmm.stdout_text();
  CHECK(out.find("hcnode-probe: banner v1") != std::string::npos);
  CHECK(out.find("probe: print i=3 n=3") != std::string::npos);
  CHECK(out.find("probe: done mode=print") != std::string::npos);
  CHECK(out.find("probe: exit status=0") != std::string::npos);
  // The vCPU stops at the exit write: the guest never reaches its fallback exit methods.
  CHECK(out.find("exit_fallback") == std::string::npos);
  CHECK(vmm.stderr_text().find("debug-exit") != std::string::npos);
}

TEST_CASE("hcnode-vmm reports a failing guest's debug-exit status as 64 + status", "[kvm][vmm]") {
  require_kvm();
  VmmProcess vmm(probe_args("mode=fault kind=ud", "1"));
  auto status = vmm.wait(60s);
  INFO(vmm.stdout_text() << vmm.stderr_text());
  REQUIRE(status.has_value());
  CHECK(vmm.stdout_text().find("probe: fault vector=6 name=UD") != std::string::npos);
  CHECK(*status == compute::kExitDebugBase + 3);  // the probe's status 3: CPU exception
}

// (No ';' in test names: CTest takes the discovered name as a CMake list.)
TEST_CASE("hcnode-vmm's debug-exit port is opt-in: a guest's write to it sets the exit status "
          "only with --debug-exit or debug_exit in the JSON config",
          "[kvm][vmm][debug_exit]") {
  require_kvm();
  // The probe fails on purpose (a #UD at CPL3: status 3) and, with exit=debug, ends the VM by
  // writing 3 to port 0xf4; if that write has no effect it says so on the console
  // ("exit_fallback method=triple") and triple-faults, which any VMM reports as a crash.
  auto without_flag = [](const std::string& cmdline) {
    auto a = probe_args(cmdline, "1");
    a.erase(std::find(a.begin(), a.end(), "--debug-exit"));
    return a;
  };
  auto args = without_flag("mode=fault kind=ud exit=debug");

  SECTION("without the flag: the write is ignored and the VM ends as a crash, not 64+3") {
    const std::string sock = socket_path();
    auto spin = without_flag("mode=spin ms=600000");
    spin.insert(spin.end(), {"--control-socket", sock});
    {
      // The port is not on the bus at all.
      VmmProcess running(spin);
      REQUIRE(wait_for_socket(sock, 20s));
      auto describe = control_request(sock, R"({"cmd":"describe"})");
      INFO(describe.dump());
      REQUIRE(describe["ok"] == true);
      CHECK(describe["result"]["config"]["debug_exit"] == false);
      for (const auto& d : describe["result"]["devices"]) {
        CHECK(d["name"] != "debug-exit");
      }
      running.signal(SIGTERM);
      REQUIRE(running.wait(30s).has_value());
    }
    VmmProcess vmm(args);
    auto status = vmm.wait(60s);
    const std::string out = vmm.stdout_text();
    INFO(out << vmm.stderr_text());
    REQUIRE(status.has_value());
    CHECK(out.find("probe: exit status=3 method=debug") != std::string::npos);
    // The guest's own report that its write did not end the VM.
    CHECK(out.find("probe: exit_fallback method=triple") != std::string::npos);
    CHECK(*status == compute::kExitGuestCrashed);
    CHECK(vmm.stderr_text().find("debug-exit") == std::string::npos);
  }
  SECTION("with --debug-exit: the write ends the VM with 64 + 3") {
    args.push_back("--debug-exit");
    VmmProcess vmm(args);
    auto status = vmm.wait(60s);
    const std::string out = vmm.stdout_text();
    INFO(out << vmm.stderr_text());
    REQUIRE(status.has_value());
    CHECK(*status == compute::kExitDebugBase + 3);
    CHECK(out.find("probe: exit status=3 method=debug") != std::string::npos);
    CHECK(out.find("exit_fallback") == std::string::npos);
  }
  SECTION("with \"debug_exit\": true in the JSON config: the same") {
    const std::string config = socket_path() + ".json";
    std::ofstream(config) << R"({"debug_exit": true})";
    args.insert(args.end(), {"--config", config});
    VmmProcess vmm(args);
    auto status = vmm.wait(60s);
    INFO(vmm.stdout_text() << vmm.stderr_text());
    std::filesystem::remove(config);
    REQUIRE(status.has_value());
    CHECK(*status == compute::kExitDebugBase + 3);
    CHECK(vmm.stdout_text().find("exit_fallback") == std::string::npos);
  }
}

TEST_CASE("hcnode-vmm ends the VM on the guest's i8042 reset", "[kvm][vmm]") {
  require_kvm();
  VmmProcess vmm(probe_args("exit=i8042", "1"));
  auto status = vmm.wait(60s);
  INFO(vmm.stdout_text() << vmm.stderr_text());
  REQUIRE(status.has_value());
  CHECK(*status == compute::kExitGuestEnded);
  CHECK(vmm.stderr_text().find("i8042") != std::string::npos);
}

TEST_CASE("control socket: describe, stats, pause, resume, console, errors and shutdown",
          "[kvm][vmm][control]") {
  require_kvm();
  const std::string sock = socket_path();
  auto args = probe_args("mode=print n=1000000");
  args.insert(args.end(), {"--control-socket", sock});
  VmmProcess vmm(args);
  REQUIRE(wait_for_socket(sock, 20s));

  auto describe = control_request(sock, R"({"id":1,"cmd":"describe"})");
  INFO(describe.dump());
  REQUIRE(describe["ok"] == true);
  CHECK(describe["id"] == 1);
  CHECK(describe["result"]["state"] == "running");
  CHECK(describe["result"]["pid"] == vmm.pid());
  REQUIRE(describe["result"]["vcpus"].size() == 2);
  CHECK(describe["result"]["vcpus"][0]["tid"].get<int>() > 0);
  CHECK(describe["result"]["config"]["memory"] == 128 << 20);
  CHECK(describe["result"]["boot"]["format"] == "PVH ELF");
  // One named thread per vCPU ("vcpu0", "vcpu1"), as the kernel reports them.
  for (const auto& v : describe["result"]["vcpus"]) {
    std::ifstream comm("/proc/" + std::to_string(vmm.pid()) + "/task/" + std::to_string(v["tid"].get<int>()) + "/comm");
    std::string name;
    std::getline(comm, name);
    CHECK(name == "vcpu" + std::to_string(v["index"].get<int>()));
  }
  bool has_serial = false;
  for (const auto& d : describe["result"]["devices"]) {
    has_serial |= d["name"] == "serial-com1";
  }
  CHECK(has_serial);

  // The guest prints continuously; wait until it has started.
  for (int i = 0; i < 3000 && serial_bytes(sock) == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(serial_bytes(sock) > 0);

  auto paused = control_request(sock, R"({"cmd":"pause"})");
  REQUIRE(paused["ok"] == true);
  CHECK(paused["result"]["state"] == "paused");
  const uint64_t at_pause = serial_bytes(sock);
  std::this_thread::sleep_for(300ms);
  CHECK(serial_bytes(sock) == at_pause);  // a paused guest prints nothing
  auto during = control_request(sock, R"({"cmd":"describe"})");
  CHECK(during["result"]["state"] == "paused");
  // Paused: every vCPU's KVM state can be read. The probe runs at CPL3 after its boot code
  // (vCPU 0); the second vCPU was never started by the guest (no INIT/SIPI yet).
  auto states = control_request(sock, R"({"cmd":"vcpu_state"})");
  INFO(states.dump().substr(0, 400));
  REQUIRE(states["ok"] == true);
  REQUIRE(states["result"]["vcpus"].size() == 2);
  CHECK(states["result"]["vcpus"][0]["cpl"] == 3);
  CHECK(states["result"]["vcpus"][0]["rip"].get<uint64_t>() >= 0x100000);
  CHECK(states["result"]["vcpus"][1]["mp_state"] == KVM_MP_STATE_UNINITIALIZED);

  auto resumed = control_request(sock, R"({"cmd":"resume"})");
  REQUIRE(resumed["ok"] == true);
  // Printing again after the resume (polled: a loaded CI machine may take a while to run it).
  uint64_t after_resume = serial_bytes(sock);
  for (int i = 0; i < 2000 && after_resume == at_pause; ++i) {
    std::this_thread::sleep_for(10ms);
    after_resume = serial_bytes(sock);
  }
  CHECK(after_resume > at_pause);

  auto running_state = control_request(sock, R"({"cmd":"vcpu_state"})");
  CHECK(running_state["ok"] == false);  // refused while the vCPUs run
  auto stats = control_request(sock, R"({"cmd":"stats"})");
  REQUIRE(stats["ok"] == true);
  CHECK(stats["result"]["vcpus"][0]["exits"]["io"].get<uint64_t>() > 0);
  CHECK(stats["result"]["rss_bytes"].get<uint64_t>() > 0);
  CHECK(stats["result"]["uptime_s"].get<double>() > 0);

  // The console's last 200 bytes hold the guest's print lines (polled: the guest may not have
  // printed a whole line yet since the resume on a loaded machine).
  std::string tail;
  for (int i = 0; i < 1000 && tail.find("probe: print") == std::string::npos; ++i) {
    if (i > 0) std::this_thread::sleep_for(10ms);
    auto console = control_request(sock, R"({"cmd":"console","bytes":200})");
    REQUIRE(console["ok"] == true);
    tail = console["result"]["output"].get<std::string>();
  }
  INFO("console tail: " << tail);
  CHECK(tail.find("probe: print") != std::string::npos);

  // Hostile and malformed requests: an error reply each, and the VM keeps running.
  for (const char* bad : {"not json", "[1,2]", R"({"cmd":42})", R"({"cmd":"reboot-the-host"})",
                          R"({"cmd":"pause","extra":true})", R"({"cmd":"shutdown","timeout_ms":-1})"}) {
    auto reply = control_request(sock, bad);
    INFO(bad << " -> " << reply.dump());
    REQUIRE(reply.is_object());
    CHECK(reply["ok"] == false);
    CHECK(!reply["error"].get<std::string>().empty());
  }
  CHECK(control_request(sock, R"({"cmd":"describe"})")["result"]["state"] == "running");

  auto shutdown = control_request(sock, R"({"cmd":"shutdown","timeout_ms":5000})");
  CHECK(shutdown["ok"] == true);
  auto status = vmm.wait(30s);
  REQUIRE(status.has_value());
  CHECK(*status == compute::kExitShutdownRequest);
  CHECK_FALSE(std::filesystem::exists(sock));  // the socket file is removed on exit
}

TEST_CASE("serial console: a unix-socket client sees the boot and a file target gets the output",
          "[kvm][vmm][console]") {
  require_kvm();
  const std::string sock = socket_path();
  const std::string console = sock + ".console";
  VmmProcess vmm({"--kernel", probe_elf(), "--memory", "128M", "--serial", "unix:" + console,
                  "--control-socket", sock, "--cmdline", "mode=spin ms=600000"});
  REQUIRE(wait_for_socket(console, 20s));
  REQUIRE(wait_for_socket(sock, 20s));
  // Wait until the guest has reached its spin (its banner is in the history by then).
  std::string text;
  for (int i = 0; i < 3000 && text.find("probe: mode name=spin") == std::string::npos; ++i) {
    text = control_request(sock, R"({"cmd":"console"})")["result"]["output"].get<std::string>();
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(text.find("probe: mode name=spin") != std::string::npos);
  // A client attaching late still gets the boot output (history replay).
  auto client = connect_unix(console);
  REQUIRE(client.has_value());
  std::string seen;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (seen.find("hcnode-probe: banner v1") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::recv(client->get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      seen.append(buf, static_cast<size_t>(n));
    } else {
      std::this_thread::sleep_for(10ms);
    }
  }
  CHECK(seen.find("hcnode-probe: banner v1") != std::string::npos);
  CHECK(control_request(sock, R"({"cmd":"describe"})")["result"]["console"]["clients"] == 1);
  vmm.signal(SIGTERM);
  REQUIRE(vmm.wait(30s).has_value());
  CHECK_FALSE(std::filesystem::exists(console));  // the console socket is removed on exit

  const std::string file = sock + ".log";
  VmmProcess to_file({"--kernel", probe_elf(), "--serial", "file:" + file, "--cmdline", "mode=print n=2",
                      "--debug-exit"});
  REQUIRE(to_file.wait(60s) == compute::kExitGuestEnded);
  std::ifstream in(file);
  std::stringstream content;
  content << in.rdbuf();
  CHECK(content.str().find("probe: print i=2 n=2") != std::string::npos);
  CHECK(to_file.stdout_text().empty());  // nothing went to stdout
  std::filesystem::remove(file);
}

TEST_CASE("SIGTERM stops a running VM cleanly with the signal exit status", "[kvm][vmm]") {
  require_kvm();
  const std::string sock = socket_path();
  auto args = probe_args("mode=spin ms=600000");
  args.insert(args.end(), {"--control-socket", sock});
  VmmProcess vmm(args);
  REQUIRE(wait_for_socket(sock, 20s));
  vmm.signal(SIGTERM);
  auto status = vmm.wait(30s);
  INFO(vmm.stderr_text());
  REQUIRE(status.has_value());
  CHECK(*status == compute::kExitSignal);
  CHECK(vmm.stderr_text().find("stopped by Terminated") != std::string::npos);
}

TEST_CASE("hcnode-vmm refuses bad input with precise messages and distinct exit codes", "[kvm][vmm]") {
  require_kvm();
  struct Case {
    std::vector<std::string> args;
    int status;
    const char* message;
  };
  const std::string dir = std::filesystem::temp_directory_path() / unique_name("hcnode-bad");
  std::filesystem::create_directories(dir);
  const std::string truncated = dir + "/truncated.elf";
  {
    // The probe ELF cut in the middle of its program headers: a hostile or broken kernel file.
    std::ifstream in(probe_elf(), std::ios::binary);
    std::vector<char> bytes(100);
    in.read(bytes.data(), 100);
    std::ofstream(truncated, std::ios::binary).write(bytes.data(), 100);
  }
  const std::string big_initrd = dir + "/big.initrd";
  std::ofstream(big_initrd).close();
  std::filesystem::resize_file(big_initrd, 20 << 20);  // larger than the 16 MiB guest
  const std::string garbage = dir + "/garbage.bin";
  std::ofstream(garbage) << "this is not a kernel at all, just text\n";
  const Case cases[] = {
      {{"--kernel", "/nonexistent/kernel"}, compute::kExitBadKernel, "/nonexistent/kernel"},
      {{"--kernel", truncated}, compute::kExitBadKernel, "ELF"},
      {{"--kernel", garbage}, compute::kExitBadKernel, "not a bzImage or ELF"},
      {{"--kernel", probe_elf(), "--memory", "100000"}, compute::kExitBadConfig, "multiple of 4 KiB"},
      {{"--kernel", probe_elf(), "--memory", "12X"}, compute::kExitBadConfig, "unknown unit"},
      {{"--kernel", probe_elf(), "--vcpus", "300"}, compute::kExitBadConfig, "vcpus 300"},
      {{"--kernel", probe_elf(), "--memory", "16M", "--initrd", big_initrd}, compute::kExitBadKernel, "initrd"},
      {{"--kernel", probe_elf(), "--serial", "tcp:1.2.3.4"}, compute::kExitBadConfig, "serial"},
      {{"--kernel", probe_elf(), "--no-such-flag"}, compute::kExitBadConfig, "no-such-flag"},
      {{"--kernel", probe_elf(), "--config", "/nonexistent.json"}, compute::kExitBadConfig, "/nonexistent.json"},
  };
  for (const auto& c : cases) {
    VmmProcess vmm(c.args);
    auto status = vmm.wait(20s);
    INFO(c.args[1] << " -> " << vmm.stderr_text());
    REQUIRE(status.has_value());
    CHECK(*status == c.status);
    CHECK(vmm.stderr_text().find(c.message) != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

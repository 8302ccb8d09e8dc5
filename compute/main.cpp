// hcnode-vmm: one KVM virtual machine per process.
//
//   hcnode-vmm --kernel probe.elf --memory 128M --vcpus 2 --serial stdout --debug-exit
//   hcnode-vmm --config vm.json --control-socket /run/hcnode/vm1.sock
//
// The main thread is the control thread ("vmm"): it builds the VM, then runs an event loop
// over SIGTERM/SIGINT (signalfd), the VM's exit event and the control socket. The exit status
// says why the VM ended (compute/exit_status.hpp).
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "base/event_loop.hpp"
#include "base/log.hpp"
#include "base/size.hpp"
#include "base/thread.hpp"
#include "compute/api/control_server.hpp"
#include "compute/exit_status.hpp"
#include "compute/vm.hpp"

using namespace hcnode;
using namespace hcnode::compute;

namespace {

int usage_error(const std::string& message) {
  std::fprintf(stderr, "hcnode-vmm: error: %s\n", message.c_str());
  return kExitBadConfig;
}

// Parses flags into config; flags given on the command line override the --config file.
// Returns an exit code to stop with, or -1 to continue.
int parse_command_line(int argc, char** argv, VmConfig& config) {
  CLI::App app{"hcnode-vmm: runs one KVM virtual machine (exit status: see compute/exit_status.hpp)"};
  std::string config_file, memory, kernel, initrd, cmdline, serial, control_socket, log_level, log_file, pv;
  uint32_t vcpus = 0;
  bool no_rng = false;
  bool debug_exit = false;
  std::vector<std::string> disks;
  app.add_option("--config", config_file, "JSON config file (flags override its values)");
  app.add_option("--memory,-m", memory, "guest RAM, e.g. 128M or 2G (multiple of 4 KiB)");
  app.add_option("--vcpus", vcpus, "number of vCPUs");
  app.add_option("--kernel", kernel, "bzImage, or ELF with a Xen PVH entry note");
  app.add_option("--initrd", initrd, "initial ramdisk");
  app.add_option("--cmdline", cmdline, "kernel command line");
  app.add_option("--serial", serial, "console: stdout, file:PATH, unix:PATH or none");
  app.add_option("--control-socket", control_socket, "unix socket for control requests (JSON lines)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off");
  app.add_option("--log-file", log_file, "log into this file instead of stderr");
  app.add_flag("--no-rng", no_rng, "no virtio-rng device");
  app.add_flag("--debug-exit", debug_exit,
               "debug-exit port 0xf4: the guest's write of v ends the VM with status 0 (v = 0) or "
               "64+v (test and benchmark guests; off: the guest cannot choose the exit status)");
  app.add_option("--disk", disks,
                 "virtio-blk disk, repeatable: uri=rbd:POOL/IMG|gluster://HOST/VOL/PATH|file:/PATH"
                 "[,readonly=on][,serial=S][,queues=N][,queue_size=N][,cache=writeback|none]")
      ->take_all();
  app.add_option("--pv-hypercalls", pv, "offer KVM PV features that use hypercalls: auto, on or off");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitBadConfig;
  }
  if (!config_file.empty()) {
    if (auto r = apply_json_file(config_file, config); !r) {
      return usage_error(r.error().message());
    }
  }
  if (!memory.empty()) {
    auto bytes = parse_size(memory);
    if (!bytes) {
      return usage_error("--memory: " + bytes.error().context());
    }
    config.memory_bytes = *bytes;
  }
  if (vcpus != 0) config.vcpus = vcpus;
  if (app.count("--vcpus") > 0 && vcpus == 0) return usage_error("--vcpus must be at least 1");
  if (!kernel.empty()) config.kernel = kernel;
  if (!initrd.empty()) config.initrd = initrd;
  if (app.count("--cmdline") > 0) config.cmdline = cmdline;
  if (!serial.empty()) config.serial = serial;
  if (!control_socket.empty()) config.control_socket = control_socket;
  if (!log_level.empty()) config.log_level = log_level;
  if (!log_file.empty()) config.log_file = log_file;
  if (no_rng) config.rng = false;
  if (debug_exit) config.debug_exit = true;
  if (!disks.empty()) {
    config.disks.clear();
    for (const auto& spec : disks) {
      auto disk = parse_disk_spec(spec);
      if (!disk) return usage_error("--disk: " + disk.error().context());
      config.disks.push_back(std::move(*disk));
    }
  }
  if (!pv.empty()) {
    auto v = parse_pv_hypercalls(pv);
    if (!v) return usage_error(v.error().context());
    config.pv_hypercalls = *v;
  }
  return -1;
}

std::string handle_request(Vm& vm, const api::Request& request, int& shutdown_timeout_ms) {
  switch (request.command) {
    case api::Command::kDescribe:
      return api::ok_reply(request.id, vm.describe());
    case api::Command::kStats:
      return api::ok_reply(request.id, vm.stats());
    case api::Command::kPause:
      if (auto r = vm.pause(); !r) return api::error_reply(request.id, r.error().context());
      return api::ok_reply(request.id, {{"state", vm_state_name(vm.state())}});
    case api::Command::kResume:
      if (auto r = vm.resume(); !r) return api::error_reply(request.id, r.error().context());
      return api::ok_reply(request.id, {{"state", vm_state_name(vm.state())}});
    case api::Command::kShutdown:
      shutdown_timeout_ms = static_cast<int>(request.timeout_ms);
      vm.request_exit(kExitShutdownRequest, "shutdown requested on the control socket");
      return api::ok_reply(request.id, {{"state", "stopping"}});
    case api::Command::kVcpuState: {
      auto states = vm.vcpu_states();
      if (!states) return api::error_reply(request.id, states.error().context());
      return api::ok_reply(request.id, {{"vcpus", *states}});
    }
    case api::Command::kConsole: {
      std::string history = vm.console_history();
      if (history.size() > request.console_bytes) {
        history.erase(0, history.size() - request.console_bytes);
      }
      return api::ok_reply(request.id, {{"output", history}});
    }
  }
  return api::error_reply(request.id, "unhandled command");
}

}  // namespace

int main(int argc, char** argv) {
  set_current_thread_name("vmm");
  VmConfig config;
  if (int rc = parse_command_line(argc, argv, config); rc >= 0) {
    return rc;
  }
  LogOptions log;
  auto level = parse_log_level(config.log_level);
  if (!level) {
    return usage_error(level.error().context());
  }
  log.level = *level;
  if (!config.log_file.empty()) {
    log.file = config.log_file;
  }
  if (auto r = setup_logging(log); !r) {
    return usage_error(r.error().message());
  }

  // SIGTERM/SIGINT arrive through a signalfd on the control loop; block them before any thread
  // starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  sigdelset(&signals, SIGPIPE);
  Fd sigfd(::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!sigfd) {
    std::fprintf(stderr, "hcnode-vmm: error: signalfd: %s\n", std::strerror(errno));
    return kExitVmmFailure;
  }

  auto vm = Vm::create(config);
  if (!vm) {
    std::fprintf(stderr, "hcnode-vmm: error: %s\n", vm.error().error.message().c_str());
    return vm.error().exit_status;
  }
  auto loop = EventLoop::create("vmm");
  if (!loop) {
    std::fprintf(stderr, "hcnode-vmm: error: %s\n", loop.error().message().c_str());
    return kExitVmmFailure;
  }
  int shutdown_timeout_ms = 10000;
  std::unique_ptr<api::ControlServer> control;
  if (!config.control_socket.empty()) {
    auto server = api::ControlServer::create(**loop, config.control_socket, [&](const api::Request& r) {
      return handle_request(**vm, r, shutdown_timeout_ms);
    });
    if (!server) {
      std::fprintf(stderr, "hcnode-vmm: error: %s\n", server.error().message().c_str());
      return kExitBadConfig;
    }
    control = std::move(*server);
  }
  // Without these two watches the VM could not be stopped by a signal, or would never be seen
  // to end: refuse to start it at all.
  auto watched = (*loop)->add(sigfd.get(), EPOLLIN, [&](uint32_t) {
    signalfd_siginfo info{};
    while (::read(sigfd.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      (*vm)->request_exit(kExitSignal, std::string("stopped by ") + strsignal(static_cast<int>(info.ssi_signo)));
    }
  });
  if (!watched) {
    std::fprintf(stderr, "hcnode-vmm: error: cannot watch SIGTERM/SIGINT: %s\n", watched.error().message().c_str());
    return kExitVmmFailure;
  }
  watched = (*loop)->add((*vm)->exit_fd(), EPOLLIN, [&](uint32_t) { (*loop)->stop(); });
  if (!watched) {
    std::fprintf(stderr, "hcnode-vmm: error: cannot watch the VM's exit event: %s\n",
                 watched.error().message().c_str());
    return kExitVmmFailure;
  }

  if (auto r = (*vm)->start(); !r) {
    std::fprintf(stderr, "hcnode-vmm: error: %s\n", r.error().message().c_str());
    return kExitVmmFailure;
  }
  if (auto r = (*loop)->run(); !r) {
    spdlog::error("control loop: {}", r.error().message());
    (*vm)->request_exit(kExitVmmFailure, r.error().message());
  }

  // Graceful stop: vCPUs out of KVM_RUN, devices drained. If that takes longer than the
  // timeout (a wedged device or storage), exit anyway: the forced path.
  const int status = (*vm)->exit_status();
  std::jthread watchdog([status, timeout = shutdown_timeout_ms](std::stop_token stop) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
    while (!stop.stop_requested()) {
      if (std::chrono::steady_clock::now() >= deadline) {
        spdlog::error("graceful stop took longer than {} ms; exiting forcibly", timeout);
        std::_Exit(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  (*vm)->stop();
  (*vm)->prepare_process_exit();
  watchdog.request_stop();
  spdlog::info("vm ended: {} (exit status {})", (*vm)->exit_reason(), status);
  return status;
}

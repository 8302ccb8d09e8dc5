// The test harness's own child-process owner (vmm_process.hpp): it signals only its live
// child. kill(2) with pid -1 reaches every process the caller may signal — as root, the whole
// machine — and pid 0 the caller's process group, so a failed fork() must not leave a -1 (or 0)
// behind for signal() or the destructor to use. Needs neither KVM nor the cluster.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include <catch2/catch.hpp>

#include "compute/exit_status.hpp"
#include "tests/integration/vmm_process.hpp"

using namespace hcnode::testing;
using namespace std::chrono_literals;

TEST_CASE("signal_pid refuses pid 0 and negative pids (process groups, every process)",
          "[harness]") {
  // Signal 0 only checks permission: kill(0, 0) and, as root, kill(-1, 0) succeed, so a
  // missing guard shows as `true` here without harming anything.
  errno = 0;
  CHECK_FALSE(signal_pid(0, 0));
  CHECK(errno == EINVAL);
  errno = 0;
  CHECK_FALSE(signal_pid(-1, 0));
  CHECK(errno == EINVAL);
  CHECK_FALSE(signal_pid(-::getpgrp(), 0));
  CHECK(signal_pid(::getpid(), 0));  // an existing single process is still signalled
}

TEST_CASE("VmmProcess throws when fork fails instead of keeping pid -1", "[harness]") {
  // A child drops to an unprivileged user with RLIMIT_NPROC 0, so that its fork() fails with
  // EAGAIN (root is exempt from the limit), and reports what the constructor did.
  const pid_t helper = ::fork();
  REQUIRE(helper >= 0);
  if (helper == 0) {
    const rlimit none{0, 0};
    if (::setgid(65534) != 0 || ::setuid(65534) != 0 || ::setrlimit(RLIMIT_NPROC, &none) != 0) {
      ::_exit(10);  // cannot set the stage
    }
    try {
      VmmProcess vmm({"--vcpus", "0"});
      ::_exit(vmm.pid() <= 0 ? 1 : 2);  // constructed: with a pid <= 0 (the old bug) or forked
    } catch (const std::system_error& e) {
      ::_exit(e.code().value() == EAGAIN ? 0 : 3);
    } catch (...) {
      ::_exit(4);
    }
  }
  int raw = 0;
  REQUIRE(::waitpid(helper, &raw, 0) == helper);
  REQUIRE(WIFEXITED(raw));
  INFO("helper exit " << WEXITSTATUS(raw)
                      << " (0 threw EAGAIN, 1 kept pid <= 0, 2 fork succeeded, 10 no setuid/rlimit)");
  CHECK(WEXITSTATUS(raw) == 0);
}

TEST_CASE("VmmProcess does not signal its child after reaping it (the pid may be reused)",
          "[harness]") {
  // --vcpus 0 is refused before /dev/kvm is opened: the VMM exits at once with status 2.
  VmmProcess vmm({"--vcpus", "0"});
  REQUIRE(vmm.pid() > 0);
  REQUIRE(vmm.wait(60s) == hcnode::compute::kExitBadConfig);
  CHECK_FALSE(vmm.signal(0));
  CHECK_FALSE(vmm.signal(SIGKILL));
}

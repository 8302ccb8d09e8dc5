// What an integration test does when a real component (Ceph, Gluster, /dev/kvm, QEMU) is missing.
//
// On a developer machine: print why and exit 77, which CTest reports as "Skipped" (never as
// passed). With CI=true: fail the test. A missing component in CI is a broken CI, not a skip.
#pragma once

#include <string>

#include "base/result.hpp"
#include "blockdev/gluster/glfs_handles.hpp"
#include "blockdev/rbd/ceph_client_config.hpp"

namespace hcnode::testing {

// Exit code CTest maps to "Skipped" (SKIP_RETURN_CODE in tests/integration/CMakeLists.txt).
inline constexpr int kSkipExitCode = 77;

bool running_in_ci();

// Skips (developer machine) or fails (CI) the current test case with `why`.
[[noreturn]] void missing_component(const std::string& why);

// The Ceph client config from the dev cluster's environment, or missing_component().
blockdev::CephClientConfig require_ceph();
// The Gluster server from the dev cluster's environment, or missing_component().
blockdev::GlusterServer require_gluster();
// /dev/kvm must be openable read-write, or missing_component().
void require_kvm();
// An environment variable naming a file that must exist (e.g. HCNODE_PROBE_ELF).
std::string require_file_env(const char* name);

// A name unique to this test process, for images and objects: "<prefix>-<pid>-<random>".
std::string unique_name(const std::string& prefix);

}  // namespace hcnode::testing

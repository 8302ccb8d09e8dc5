// Checking a qcow2 image held in memory with hcnode's own checker (blockdev/qcow2/qcow2_check),
// for the qcow2 unit tests. Catch2 assertions inside: the image must open and the check must run;
// its problems are attached to the test's output.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "blockdev/qcow2/qcow2_check.hpp"
#include "blockdev/sync_disk.hpp"
#include "tests/fakes/memory_file.hpp"

namespace hcnode::testing {

inline blockdev::qcow2::CheckReport check_bytes(const std::vector<uint8_t>& bytes) {
  auto disk = blockdev::SyncDisk::open(std::make_shared<MemoryFile>(bytes, true));
  REQUIRE(disk.has_value());
  auto report = blockdev::qcow2::check_image(*disk);
  INFO((report ? "" : report.error().message()));
  REQUIRE(report.has_value());
  for (const auto& p : report->problems) UNSCOPED_INFO(p);
  return *report;
}

}  // namespace hcnode::testing

// The probe's virtio-blk modes (README.md "virtio-blk modes"): write-verify,
// records, io, zeroes, ro-check, hostile. Each parses its own key=value
// parameters, initializes the driver (virtio_blk.hpp), prints the
// "probe: blk ..." line and its result lines, and returns the exit status
// (0 ok, 1 check/device failure, 2 bad parameter).
#pragma once

#include <cstdint>

#include "tests/guest/cmdline.hpp"

namespace probe::blk {

uint8_t mode_write_verify(const Cmdline& cmdline, uint64_t tsc_khz);
uint8_t mode_records(const Cmdline& cmdline, uint64_t tsc_khz);
uint8_t mode_io(const Cmdline& cmdline, uint64_t tsc_khz);
uint8_t mode_zeroes(const Cmdline& cmdline, uint64_t tsc_khz);
uint8_t mode_ro_check(const Cmdline& cmdline, uint64_t tsc_khz);
uint8_t mode_hostile(const Cmdline& cmdline, uint64_t tsc_khz);

}  // namespace probe::blk

// mode=rng: drives a virtio entropy device (virtio 1.2 §5.4, PCI id
// 0x1AF4:0x1044, or transitional 0x1005) through the probe's virtio-pci core (virtio_pci.hpp).
//
// Initializes the device (no device-specific features), then makes two
// requests for `bytes` random bytes on the requestq (queue 0, §5.4.2):
//   1. one device-writable buffer of `bytes` bytes;
//   2. the same amount split over a chain of two device-writable
//      descriptors (bytes/2 and the rest, in separate buffers).
// Each must come back with 0 < used_len <= bytes (§5.4.6.1: the device
// writes one or more bytes) and not all zero (buffers are zeroed before).
//
// Report lines:
//   probe: virtio device=rng features=0x<offered> queue_size=Q accepted=0x.. bdf=..
//          pci_id=0x1044|0x1005 common=0x<common cfg address> bars_assigned=N
//   (bars_assigned: BARs the probe placed itself because firmware left them 0)
//   probe: rng bytes=N used_len=M nonzero=K first8=0x<bytes 0..7 in order> descs=1|2 us=T
//   probe: virtio_cost init_us=.. find_map_us=.. handshake_us=.. init_mmio_reads=..
//          init_mmio_writes=.. init_cfg=..
//          req_mmio=.. notifies=.. suppressed=.. total_us=.. tsc_done=..
//   (init_cfg: PCI configuration accesses, two port exits each; us from the
//   TSC; total_us and the raw tsc_done include the report lines' serial I/O)
// Failures: `probe: error reason=<why> device=rng`, status 1. Reasons:
// device-missing, a virtio_pci.hpp step reason (features-refused, ...),
// queue-full, timeout, bad-used-id, used-len-zero, used-len-too-big,
// all-zero, chain-second-buffer-zero.
#pragma once

#include <cstdint>

namespace probe::rng {

inline constexpr uint64_t kDefaultBytes = 64;
// Lower bound: the all-zero check must not fail by chance (2^-128 at 16).
inline constexpr uint64_t kMinBytes = 16;
inline constexpr uint64_t kMaxBytes = 4096;

struct Options {
    uint64_t bytes = kDefaultBytes;  // kMinBytes..kMaxBytes
    uint64_t force_features = 0;     // test hook: accept these even if not offered
    uint64_t tsc_khz = 0;
};

// Returns the probe exit status (kStatusOk or kStatusFailure).
uint8_t run(const Options& options);

}  // namespace probe::rng

// Numbers from the virtio 1.2 specification that several virtio files share: device status bits
// (2.1), reserved feature bits (6), device type ids (5), split-ring flags (2.7).
#pragma once

#include <cstdint>

namespace hcnode::compute::virtio {

// Device status field (2.1).
inline constexpr uint8_t kStatusAcknowledge = 1;
inline constexpr uint8_t kStatusDriver = 2;
inline constexpr uint8_t kStatusDriverOk = 4;
inline constexpr uint8_t kStatusFeaturesOk = 8;
inline constexpr uint8_t kStatusDeviceNeedsReset = 0x40;
inline constexpr uint8_t kStatusFailed = 0x80;

// Reserved feature bits (6 "Reserved Feature Bits"), as masks.
inline constexpr uint64_t kFeatureIndirectDesc = 1ull << 28;  // VIRTIO_F_INDIRECT_DESC
inline constexpr uint64_t kFeatureEventIdx = 1ull << 29;      // VIRTIO_F_EVENT_IDX
inline constexpr uint64_t kFeatureVersion1 = 1ull << 32;      // VIRTIO_F_VERSION_1
inline constexpr uint64_t kFeatureAccessPlatform = 1ull << 33;
inline constexpr uint64_t kFeatureRingPacked = 1ull << 34;
// The ring features SplitQueue implements for every device; a device may offer them.
inline constexpr uint64_t kRingFeatures = kFeatureIndirectDesc | kFeatureEventIdx;

// Device types (5 "Device Types").
inline constexpr uint32_t kDeviceTypeNet = 1;
inline constexpr uint32_t kDeviceTypeBlock = 2;
inline constexpr uint32_t kDeviceTypeConsole = 3;
inline constexpr uint32_t kDeviceTypeEntropy = 4;
inline constexpr uint32_t kDeviceTypeBalloon = 5;

// "No MSI-X vector" for config_msix_vector / queue_msix_vector (4.1.5.1.2).
inline constexpr uint16_t kNoVector = 0xFFFF;

// Split virtqueue flags (2.7.5, 2.7.6, 2.7.8).
inline constexpr uint16_t kDescFlagNext = 1;
inline constexpr uint16_t kDescFlagWrite = 2;
inline constexpr uint16_t kDescFlagIndirect = 4;
inline constexpr uint16_t kAvailFlagNoInterrupt = 1;
inline constexpr uint16_t kUsedFlagNoNotify = 1;

inline constexpr uint16_t kMaxQueueSize = 32768;  // 2.7: "Queue Size ... maximum 32768"

}  // namespace hcnode::compute::virtio

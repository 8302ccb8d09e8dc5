#include "tests/guest/virtio_pci.hpp"

#include "tests/guest/cpuid.hpp"
#include "tests/guest/mmio.hpp"

namespace probe::virtio {
namespace {

// PCI configuration header (PCI Local Bus 3.0, 6.1-6.2, 6.7).
constexpr uint8_t kRegCommand = 0x04;
constexpr uint8_t kRegStatus = 0x06;
constexpr uint8_t kRegBar0 = 0x10;
constexpr uint8_t kRegCapPointer = 0x34;
constexpr uint16_t kCommandIo = 1u << 0;
constexpr uint16_t kCommandMemory = 1u << 1;
constexpr uint16_t kCommandBusMaster = 1u << 2;
constexpr uint16_t kStatusCapList = 1u << 4;
constexpr uint8_t kCapIdVendor = 0x09;
constexpr unsigned kMaxCaps = 48;  // (256 - 64) / 4: bounds a looping list

// struct virtio_pci_cap cfg_type (§4.1.4).
constexpr uint8_t kCapCommon = 1;
constexpr uint8_t kCapNotify = 2;
constexpr uint8_t kCapIsr = 3;
constexpr uint8_t kCapDevice = 4;

// struct virtio_pci_common_cfg offsets (§4.1.4.3).
constexpr uintptr_t kDeviceFeatureSelect = 0x00;  // le32
constexpr uintptr_t kDeviceFeature = 0x04;        // le32, RO
constexpr uintptr_t kDriverFeatureSelect = 0x08;  // le32
constexpr uintptr_t kDriverFeature = 0x0C;        // le32
constexpr uintptr_t kConfigMsixVector = 0x10;     // le16
constexpr uintptr_t kNumQueues = 0x12;            // le16, RO
constexpr uintptr_t kDeviceStatus = 0x14;         // u8
constexpr uintptr_t kConfigGeneration = 0x15;     // u8, RO
constexpr uintptr_t kQueueSelect = 0x16;          // le16
constexpr uintptr_t kQueueSize = 0x18;            // le16
constexpr uintptr_t kQueueMsixVector = 0x1A;      // le16
constexpr uintptr_t kQueueEnable = 0x1C;          // le16
constexpr uintptr_t kQueueNotifyOff = 0x1E;       // le16, RO
constexpr uintptr_t kQueueDesc = 0x20;            // le64
constexpr uintptr_t kQueueDriver = 0x28;          // le64
constexpr uintptr_t kQueueDevice = 0x30;          // le64
constexpr uint32_t kCommonCfgMinLength = 0x38;    // through queue_device

// BARs the probe assigns itself (only those firmware left at 0; hcnode and
// QEMU+SeaBIOS assign all): a bump allocator over the 32-bit MMIO hole,
// which the probe maps uncached (cpu_tables.S). It does not know about
// BARs of other devices, so it assumes none of them is placed there.
constexpr uint64_t kBarWindowStart = 0xC000'0000;
constexpr uint64_t kBarWindowEnd = 0xFEC0'0000;  // IOAPIC, HPET, LAPIC above
constinit uint64_t g_next_bar = kBarWindowStart;

// 64-bit fields of the common configuration are written as two 32-bit
// halves, low first (§4.1.3.1 allows it; every device must accept it).
void write64(uintptr_t addr, uint64_t value) {
    mmio::write32(addr, static_cast<uint32_t>(value));
    mmio::write32(addr + 4, static_cast<uint32_t>(value >> 32));
}

}  // namespace

bool Device::find(uint16_t device_id, uint16_t transitional_id) {
    const uint16_t ids[2] = {device_id, transitional_id};
    for (const uint16_t id : ids) {
        if (id != 0 && pci::find(kVendorId, id, &fn_)) {
            device_id_ = id;
            return true;
        }
    }
    return false;
}

bool Device::find_nth(uint16_t device_id, uint16_t transitional_id, uint32_t index) {
    return pci::find_nth(kVendorId, device_id, transitional_id, index, &fn_, &device_id_);
}

// Returns the address BAR `bar` decodes at; if it is 0 (unassigned),
// sizes it (PCI 3.0, 6.2.5.1) and places it in the MMIO hole.
const char* Device::bar_address(uint8_t bar, uint64_t* out) {
    const uint8_t reg = static_cast<uint8_t>(kRegBar0 + 4 * bar);
    const uint32_t lo = pci::config_read32(fn_.dev, fn_.fn, reg);
    if ((lo & 1) != 0) {
        return "bar-is-io";  // virtio structures live in memory BARs here
    }
    const bool is64 = ((lo >> 1) & 3) == 2;
    if (is64 && bar == 5) {
        return "bar-invalid";
    }
    const uint32_t hi = is64 ? pci::config_read32(fn_.dev, fn_.fn, reg + 4) : 0;
    uint64_t addr = (uint64_t{hi} << 32) | (lo & ~0xFu);
    if (addr == 0) {
        // Size with decoding off (6.2.5.1 implementation note), then place.
        const uint16_t cmd = pci::config_read16(fn_.dev, fn_.fn, kRegCommand);
        pci::config_write16(fn_.dev, fn_.fn, kRegCommand,
                            static_cast<uint16_t>(cmd & ~(kCommandIo | kCommandMemory)));
        pci::config_write32(fn_.dev, fn_.fn, reg, 0xFFFF'FFFFu);
        const uint32_t mask_lo = pci::config_read32(fn_.dev, fn_.fn, reg) & ~0xFu;
        uint32_t mask_hi = 0xFFFF'FFFFu;
        if (is64) {
            pci::config_write32(fn_.dev, fn_.fn, reg + 4, 0xFFFF'FFFFu);
            mask_hi = pci::config_read32(fn_.dev, fn_.fn, reg + 4);
        }
        const uint64_t size = ~((uint64_t{mask_hi} << 32) | mask_lo) + 1;
        const uint64_t base = (g_next_bar + size - 1) & ~(size - 1);
        const bool fits = mask_lo != 0 && base + size <= kBarWindowEnd;
        pci::config_write32(fn_.dev, fn_.fn, reg, fits ? static_cast<uint32_t>(base) : 0);
        if (is64) {
            pci::config_write32(fn_.dev, fn_.fn, reg + 4, 0);
        }
        pci::config_write16(fn_.dev, fn_.fn, kRegCommand, cmd);
        if (!fits) {
            return mask_lo == 0 ? "bar-unimplemented" : "bar-window-full";
        }
        g_next_bar = base + size;
        addr = base;
        ++bars_assigned_;
    }
    if (addr >= (4ull << 30)) {
        return "bar-above-4g";  // outside the probe's identity map
    }
    *out = addr;
    return nullptr;
}

const char* Device::map() {
    if ((pci::config_read16(fn_.dev, fn_.fn, kRegStatus) & kStatusCapList) == 0) {
        return "no-capabilities";
    }
    uint64_t bar_addr[6] = {};
    bool bar_known[6] = {};
    bool seen[5] = {};  // by cfg_type: the first of each type is used (§4.1.4)
    uint8_t ptr = static_cast<uint8_t>(pci::config_read32(fn_.dev, fn_.fn, kRegCapPointer) & 0xFC);
    for (unsigned n = 0; n < kMaxCaps && ptr >= 0x40; ++n) {
        // struct virtio_pci_cap: cap_vndr, cap_next, cap_len, cfg_type | bar, id,
        // padding[2] | offset | length [| notify_off_multiplier] (§4.1.4, §4.1.4.4).
        const uint32_t head = pci::config_read32(fn_.dev, fn_.fn, ptr);
        const uint8_t id = static_cast<uint8_t>(head);
        const uint8_t next = static_cast<uint8_t>((head >> 8) & 0xFC);
        const uint8_t cap_len = static_cast<uint8_t>(head >> 16);
        const uint8_t type = static_cast<uint8_t>(head >> 24);
        if (id == kCapIdVendor && cap_len >= 16 && type >= kCapCommon && type <= kCapDevice &&
            !seen[type] && (type != kCapNotify || cap_len >= 20)) {
            const uint8_t bar = static_cast<uint8_t>(pci::config_read32(fn_.dev, fn_.fn, ptr + 4));
            // §4.1.4.1: ignore a capability naming a reserved BAR.
            if (bar <= 5) {
                if (!bar_known[bar]) {
                    if (const char* err = bar_address(bar, &bar_addr[bar])) {
                        return err;
                    }
                    bar_known[bar] = true;
                }
                const uint32_t offset = pci::config_read32(fn_.dev, fn_.fn, ptr + 8);
                const uint32_t length = pci::config_read32(fn_.dev, fn_.fn, ptr + 12);
                const uintptr_t addr = bar_addr[bar] + offset;
                seen[type] = true;
                if (type == kCapCommon) {
                    common_ = addr;
                    if (length < kCommonCfgMinLength) {
                        return "common-cfg-too-short";
                    }
                } else if (type == kCapNotify) {
                    notify_ = addr;
                    notify_len_ = length;
                    notify_multiplier_ = pci::config_read32(fn_.dev, fn_.fn, ptr + 16);
                } else if (type == kCapIsr) {
                    isr_ = addr;
                } else {
                    device_cfg_ = addr;
                    device_cfg_len_ = length;
                }
            }
        }
        ptr = next;
    }
    if (!seen[kCapCommon]) {
        return "no-common-cfg";
    }
    if (!seen[kCapNotify]) {
        return "no-notify-cfg";
    }
    if (!seen[kCapIsr]) {
        return "no-isr-cfg";  // unused when polling, but §4.1.4 requires it
    }
    // Decode our BARs and let the device read and write guest memory (PCI
    // 3.0, 6.2.2). Measured: neither hcnode nor QEMU (without
    // ACCESS_PLATFORM) gates virtio DMA on Bus Master, but hardware and
    // IOMMU-backed devices do.
    const uint16_t cmd = pci::config_read16(fn_.dev, fn_.fn, kRegCommand);
    const uint16_t want = static_cast<uint16_t>(cmd | kCommandMemory | kCommandBusMaster);
    if (want != cmd) {
        pci::config_write16(fn_.dev, fn_.fn, kRegCommand, want);
    }
    return nullptr;
}

void Device::write_status(uint8_t value) {
    status_ = value;
    mmio::write8(common_ + kDeviceStatus, value);
}

uint8_t Device::status() { return mmio::read8(common_ + kDeviceStatus); }

void Device::set_failed() { write_status(static_cast<uint8_t>(status_ | kStatusFailed)); }

const char* Device::negotiate(uint64_t wanted, uint64_t force) {
    // 1. Reset; §4.1.4.3.2: wait until device_status reads back 0.
    write_status(0);
    const uint64_t deadline = cpu::rdtsc() + timeout_ticks_;
    while (status() != 0) {
        if (cpu::rdtsc() >= deadline) {
            return "reset-timeout";
        }
        cpu::pause();
    }
    // 2-3. We noticed the device, and we can drive it.
    write_status(kStatusAcknowledge);
    write_status(kStatusAcknowledge | kStatusDriver);
    // 4. Device features, 32 bits per select (§4.1.4.3).
    mmio::write32(common_ + kDeviceFeatureSelect, 0);
    uint64_t offered = mmio::read32(common_ + kDeviceFeature);
    mmio::write32(common_ + kDeviceFeatureSelect, 1);
    offered |= uint64_t{mmio::read32(common_ + kDeviceFeature)} << 32;
    device_features_ = offered;
    if ((offered & kFeatureVersion1) == 0 && (force & kFeatureVersion1) == 0) {
        set_failed();
        return "no-version-1";  // §6.1: a modern device offers VERSION_1
    }
    // VERSION_1 is mandatory for a modern driver (§6.1). ACCESS_PLATFORM
    // costs nothing with no IOMMU (identity DMA) and a device may refuse a
    // driver that declines it (§6.1), so take it when offered.
    const uint64_t accepted =
        (offered & (wanted | kFeatureVersion1 | kFeatureAccessPlatform)) | force;
    driver_features_ = accepted;
    mmio::write32(common_ + kDriverFeatureSelect, 0);
    mmio::write32(common_ + kDriverFeature, static_cast<uint32_t>(accepted));
    mmio::write32(common_ + kDriverFeatureSelect, 1);
    mmio::write32(common_ + kDriverFeature, static_cast<uint32_t>(accepted >> 32));
    // 5-6. FEATURES_OK, and re-read it: a device that does not accept our
    // subset leaves it clear.
    write_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    if ((status() & kStatusFeaturesOk) == 0) {
        set_failed();
        return "features-refused";
    }
    // No MSI-X for configuration changes: we poll (§4.1.5.1.2).
    mmio::write16(common_ + kConfigMsixVector, kNoVector);
    return nullptr;
}

uint16_t Device::num_queues() { return mmio::read16(common_ + kNumQueues); }

uint16_t Device::queue_max_size(uint16_t index) {
    mmio::write16(common_ + kQueueSelect, index);
    return mmio::read16(common_ + kQueueSize);
}

const char* Device::setup_queue(uint16_t index, Virtqueue& vq) {
    // §4.1.5.1.3: select, read the size (0 = no such queue), optionally
    // shrink it, program addresses, read queue_notify_off, enable.
    const uint16_t max = queue_max_size(index);
    if (max == 0) {
        return "queue-unavailable";
    }
    uint16_t size = Virtqueue::kMaxSize;
    while (size > max) {
        size = static_cast<uint16_t>(size >> 1);  // largest power of two <= both
    }
    if (!vq.init(size)) {
        return "queue-size";
    }
    if (size != max) {
        mmio::write16(common_ + kQueueSize, size);
    }
    mmio::write16(common_ + kQueueMsixVector, kNoVector);
    const uint16_t notify_off = mmio::read16(common_ + kQueueNotifyOff);
    // §4.1.4.4: the notify address must lie inside the notify structure.
    const uint64_t notify_at = uint64_t{notify_off} * notify_multiplier_;
    if (notify_at + 2 > notify_len_) {
        return "notify-out-of-range";
    }
    write64(common_ + kQueueDesc, vq.desc_paddr());
    write64(common_ + kQueueDriver, vq.avail_paddr());
    write64(common_ + kQueueDevice, vq.used_paddr());
    mmio::write16(common_ + kQueueEnable, 1);
    vq.set_notify(notify_ + notify_at, index);
    return nullptr;
}

const char* Device::driver_ok() {
    write_status(static_cast<uint8_t>(status_ | kStatusDriverOk));
    const uint8_t now = status();
    if ((now & kStatusNeedsReset) != 0) {
        set_failed();
        return "device-needs-reset";  // §2.1.2, e.g. the device rejected a queue
    }
    if ((now & kStatusDriverOk) == 0) {
        set_failed();
        return "driver-ok-refused";
    }
    return nullptr;
}

uint64_t Device::read_config(uint32_t offset, unsigned width) {
    if (width != 1 && width != 2 && width != 4 && width != 8) {
        return 0;
    }
    const unsigned align = width == 8 ? 4 : width;  // 64-bit fields: two aligned dwords
    if (device_cfg_ == 0 || offset + width > device_cfg_len_ || offset % align != 0) {
        return 0;
    }
    const uintptr_t at = device_cfg_ + offset;
    uint64_t value = 0;
    // §2.5.1 / §4.1.4.3.1: retry while config_generation changes under us.
    for (unsigned attempt = 0; attempt < 16; ++attempt) {
        const uint8_t before = mmio::read8(common_ + kConfigGeneration);
        switch (width) {
            case 1: value = mmio::read8(at); break;
            case 2: value = mmio::read16(at); break;
            case 4: value = mmio::read32(at); break;
            case 8:
                value = mmio::read32(at) | (uint64_t{mmio::read32(at + 4)} << 32);
                break;
            default: break;  // excluded above
        }
        if (mmio::read8(common_ + kConfigGeneration) == before) {
            break;
        }
    }
    return value;
}

}  // namespace probe::virtio

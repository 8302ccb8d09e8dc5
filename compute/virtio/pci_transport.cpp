#include "compute/virtio/pci_transport.hpp"

#include <sys/eventfd.h>

#include <algorithm>
#include <bit>

#include <spdlog/spdlog.h>

#include "base/endian.hpp"
#include "compute/devices/pci/registers.hpp"
#include "compute/virtio/constants.hpp"

namespace hcnode::compute::virtio {

namespace {

constexpr uint8_t kIsrQueue = 1;   // 4.1.4.5: bit 0 queue interrupt
constexpr uint8_t kIsrConfig = 2;  //          bit 1 device configuration interrupt

constexpr uint16_t kVirtioVendorId = 0x1AF4;
constexpr uint16_t kModernDeviceIdBase = 0x1040;

// Reserved feature bits (24..41) this transport and SplitQueue implement; other reserved bits a
// device might claim (packed ring, in-order, notification data, ring reset, ...) are not offered.
constexpr uint64_t kTransportFeatures = kFeatureIndirectDesc | kFeatureEventIdx | kFeatureVersion1;
constexpr uint64_t kReservedFeatureBits = ((1ull << 42) - 1) & ~((1ull << 24) - 1);

uint32_t class_code_for(uint32_t device_type) {
  switch (device_type) {
    case kDeviceTypeNet:
      return 0x02'00'00;  // network controller, Ethernet
    case kDeviceTypeBlock:
      return 0x01'80'00;  // mass storage controller, other
    case kDeviceTypeConsole:
      return 0x07'80'00;  // communication controller, other
    default:
      return 0xFF'00'00;  // "device does not fit any defined class"
  }
}

pci::PciIds ids_for(const VirtioDevice& device) {
  const uint32_t type = device.device_type();
  return pci::PciIds{
      .vendor_id = kVirtioVendorId,
      .device_id = static_cast<uint16_t>(kModernDeviceIdBase + type),
      .revision = 1,  // 4.1.2.1: non-transitional devices SHOULD have revision >= 1
      .class_code = class_code_for(type),
      .subsystem_vendor_id = kVirtioVendorId,
      .subsystem_id = static_cast<uint16_t>(0x40 + type),
  };
}

// struct virtio_pci_cap (4.1.4): vndr, next, len, cfg_type, bar, id, padding[2], offset, length.
std::vector<uint8_t> virtio_cap(uint8_t cfg_type, uint32_t offset, uint32_t length,
                                size_t extra_bytes) {
  std::vector<uint8_t> cap(16 + extra_bytes, 0);
  cap[0] = pci::kCapIdVendorSpecific;
  cap[2] = static_cast<uint8_t>(cap.size());
  cap[3] = cfg_type;
  cap[4] = 0;  // BAR0
  store_le32(cap.data() + 8, offset);
  store_le32(cap.data() + 12, length);
  return cap;
}

}  // namespace

// Registers shared between the transport (vCPU threads) and the device's workers (through
// Interrupt). Atomics only: a worker never takes the transport's mutex.
struct VirtioPciTransport::Signals {
  explicit Signals(uint16_t queues) : queue_vectors(queues) {
    for (auto& v : queue_vectors) {
      v.store(kNoVector, std::memory_order_relaxed);
    }
  }
  std::atomic<uint8_t> isr{0};     // set by interrupts, cleared by a guest read of ISR
  std::atomic<uint8_t> status{0};  // device_status; workers may only OR in NEEDS_RESET
  std::atomic<uint8_t> config_generation{0};
  std::atomic<uint16_t> config_vector{kNoVector};
  std::vector<std::atomic<uint16_t>> queue_vectors;
  std::shared_ptr<pci::MsixTable> msix;
};

class VirtioPciTransport::Interrupt final : public VirtioInterrupt {
 public:
  explicit Interrupt(std::shared_ptr<Signals> signals) : s_(std::move(signals)) {}

  void notify_queue(uint16_t index) override {
    if (index >= s_->queue_vectors.size()) {
      return;
    }
    s_->isr.fetch_or(kIsrQueue, std::memory_order_relaxed);
    s_->msix->notify(s_->queue_vectors[index].load(std::memory_order_relaxed));
  }

  void notify_config() override {
    // Incremented on every change; 4.1.4.3.1's wrap concern needs 256 changes between two
    // reads of the driver, which no device here produces.
    s_->config_generation.fetch_add(1, std::memory_order_relaxed);
    send_config();
  }

  void set_needs_reset() override {
    s_->status.fetch_or(kStatusDeviceNeedsReset, std::memory_order_relaxed);
    send_config();  // 2.1.2: "SHOULD send a device configuration change notification"
  }

 private:
  void send_config() {
    s_->isr.fetch_or(kIsrConfig, std::memory_order_relaxed);
    s_->msix->notify(s_->config_vector.load(std::memory_order_relaxed));
  }

  std::shared_ptr<Signals> s_;
};

Result<std::shared_ptr<VirtioPciTransport>> VirtioPciTransport::create(
    std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
    InterruptController& interrupts, IoEventRegistrar* ioevents) {
  if (!device) {
    return fail(EINVAL, "virtio-pci: null device");
  }
  const auto sizes = device->queue_max_sizes();
  if (sizes.empty() || sizes.size() > kPciMaxQueues) {
    return fail(EINVAL, "virtio-pci: " + device->name() + ": bad number of queues");
  }
  for (uint16_t size : sizes) {
    if (size == 0 || size > kMaxQueueSize || !std::has_single_bit(size)) {
      return fail(EINVAL, "virtio-pci: " + device->name() + ": queue size not a power of two");
    }
  }
  if (device->config_size() > kPciDeviceCfgMax) {
    return fail(EINVAL, "virtio-pci: " + device->name() + ": device config too large");
  }
  const auto queues = static_cast<uint16_t>(sizes.size());

  std::vector<std::unique_ptr<MsiVector>> vectors;
  for (unsigned i = 0; i < queues + 1u; ++i) {  // one per queue plus the config vector
    vectors.push_back(HCN_TRY(interrupts.allocate_msi()));
  }
  auto msix = std::make_shared<pci::MsixTable>(std::move(vectors));
  auto signals = std::make_shared<Signals>(queues);
  signals->msix = msix;

  std::vector<std::shared_ptr<EventFd>> notifiers;
  for (unsigned i = 0; i < queues; ++i) {
    notifiers.push_back(std::make_shared<EventFd>(HCN_TRY(EventFd::create(EFD_NONBLOCK))));
  }

  auto transport = std::make_shared<VirtioPciTransport>(Token(), std::move(device), memory,
                                                        ioevents, std::move(signals),
                                                        std::move(msix), std::move(notifiers));
  HCN_TRY_STATUS(transport->build_config_space());
  return transport;
}

VirtioPciTransport::VirtioPciTransport(Token, std::shared_ptr<VirtioDevice> device,
                                       const GuestMemory& memory, IoEventRegistrar* ioevents,
                                       std::shared_ptr<Signals> signals,
                                       std::shared_ptr<pci::MsixTable> msix,
                                       std::vector<std::shared_ptr<EventFd>> notifiers)
    : device_(std::move(device)),
      memory_(&memory),
      ioevents_(ioevents),
      signals_(std::move(signals)),
      msix_(std::move(msix)),
      notifiers_(std::move(notifiers)),
      num_queues_(static_cast<uint16_t>(notifiers_.size())),
      device_features_(device_->device_features()),
      config_(ids_for(*device_)) {
  for (uint16_t size : device_->queue_max_sizes()) {
    queues_.push_back(QueueRegs{size, QueueConfig{.size = size}});
  }
}

VirtioPciTransport::~VirtioPciTransport() {
  std::lock_guard lock(mu_);
  if (active_) {
    device_->reset();
    active_ = false;
  }
  unregister_ioevents_locked();
}

Status VirtioPciTransport::build_config_space() {
  std::lock_guard lock(mu_);
  HCN_TRY_STATUS(config_.add_bar(pci::BarDescription{0, kPciBarSize, pci::BarType::kMemory64,
                                                     /*prefetchable=*/false}));
  const auto vectors = msix_->size();
  const pci::MsixLayout layout{vectors, 0, static_cast<uint32_t>(kPciMsixTableOffset), 0,
                               static_cast<uint32_t>(kPciMsixPbaOffset)};
  msix_cap_ = HCN_TRY(
      config_.add_capability(pci::msix_capability(layout), pci::msix_capability_writable()));

  HCN_TRY(config_.add_capability(virtio_cap(kPciCapCommonCfg, kPciCommonCfgOffset,
                                            kPciCommonCfgLength, 0)));
  auto notify = virtio_cap(kPciCapNotifyCfg, kPciNotifyOffset,
                           static_cast<uint32_t>(num_queues_) * kPciNotifyOffMultiplier, 4);
  store_le32(notify.data() + 16, kPciNotifyOffMultiplier);  // notify_off_multiplier (4.1.4.4)
  HCN_TRY(config_.add_capability(notify));
  HCN_TRY(config_.add_capability(virtio_cap(kPciCapIsrCfg, kPciIsrOffset, 1, 0)));
  if (device_->config_size() > 0) {
    HCN_TRY(config_.add_capability(
        virtio_cap(kPciCapDeviceCfg, kPciDeviceCfgOffset, device_->config_size(), 0)));
  }
  // PCI_CFG: cap.bar, cap.offset, cap.length and pci_cfg_data are read-write (4.1.4, "PCI
  // configuration access capability").
  auto pci_cfg = virtio_cap(kPciCapPciCfg, 0, 0, 4);
  std::vector<uint8_t> writable(pci_cfg.size(), 0);
  writable[4] = 0xFF;
  std::fill(writable.begin() + 8, writable.end(), 0xFF);
  pci_cfg_cap_ = HCN_TRY(config_.add_capability(pci_cfg, writable));
  return {};
}

std::string VirtioPciTransport::name() const { return "virtio-" + device_->name(); }

std::vector<pci::BarDescription> VirtioPciTransport::bars() const {
  std::lock_guard lock(mu_);
  return config_.bars();
}

std::shared_ptr<BusDevice> VirtioPciTransport::bar_handler(uint8_t index) {
  if (index != 0) {
    return nullptr;
  }
  return shared_from_this();
}

bool VirtioPciTransport::touches(uint16_t offset, size_t len, uint16_t field,
                                 size_t field_len) const {
  return offset < field + field_len && field < offset + len;
}

bool VirtioPciTransport::pci_cfg_window_locked(uint64_t* offset, size_t* length) const {
  const uint8_t bar = config_.read_byte(pci_cfg_cap_ + 4);
  const uint32_t off = config_.read_dword(pci_cfg_cap_ + 8);
  const uint32_t len = config_.read_dword(pci_cfg_cap_ + 12);
  // The capability's driver requirements: accesses are 1, 2 or 4 bytes, aligned, inside the BAR.
  // Anything else is ignored.
  if (bar != 0 || (len != 1 && len != 2 && len != 4) || off % len != 0 ||
      off + uint64_t{len} > kPciBarSize) {
    return false;
  }
  *offset = off;
  *length = len;
  return true;
}

uint32_t VirtioPciTransport::config_read(uint16_t offset) {
  std::lock_guard lock(mu_);
  const auto aligned = static_cast<uint16_t>(offset & ~3u);
  if (aligned == pci_cfg_cap_ + 16u) {
    uint64_t bar_offset = 0;
    size_t len = 0;
    if (pci_cfg_window_locked(&bar_offset, &len)) {
      std::array<uint8_t, 4> window{};
      bar_read_locked(bar_offset, std::span<uint8_t>(window.data(), len));
      config_.set_bytes(aligned, window);
    }
  }
  return config_.read(offset);
}

std::vector<pci::BarChange> VirtioPciTransport::config_write(uint16_t offset,
                                                             std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  auto changes = config_.write(offset, data);
  if (touches(offset, data.size(), msix_cap_ + pci::kMsixCapControlOffset, 2)) {
    msix_->set_control(config_.read_word(msix_cap_ + pci::kMsixCapControlOffset));
  }
  if (touches(offset, data.size(), pci_cfg_cap_ + 16, 4)) {
    uint64_t bar_offset = 0;
    size_t len = 0;
    if (pci_cfg_window_locked(&bar_offset, &len)) {
      std::array<uint8_t, 4> window{};
      for (size_t i = 0; i < 4; ++i) {
        window[i] = config_.read_byte(static_cast<uint16_t>(pci_cfg_cap_ + 16 + i));
      }
      bar_write_locked(bar_offset, std::span<const uint8_t>(window.data(), len));
    }
  }
  for (const auto& change : changes) {
    if (change.index == 0) {
      // The notify addresses moved with the BAR: move the ioeventfds too.
      unregister_ioevents_locked();
      bar_base_ = change.base;
      if (active_) {
        register_ioevents_locked();
      }
    }
  }
  return changes;
}

void VirtioPciTransport::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  // The MSI-X table has its own lock; don't serialize it behind configuration accesses.
  if (offset >= kPciMsixTableOffset && offset < kPciBarSize) {
    if (offset < kPciMsixPbaOffset) {
      msix_->read_table(offset - kPciMsixTableOffset, data);
    } else {
      msix_->read_pba(offset - kPciMsixPbaOffset, data);
    }
    return;
  }
  std::lock_guard lock(mu_);
  bar_read_locked(offset, data);
}

void VirtioPciTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= kPciNotifyOffset && offset < kPciMsixTableOffset) {
    notify_from_guest(offset - kPciNotifyOffset);
    return;
  }
  if (offset >= kPciMsixTableOffset && offset < kPciMsixPbaOffset) {
    msix_->write_table(offset - kPciMsixTableOffset, data);
    return;
  }
  std::lock_guard lock(mu_);
  bar_write_locked(offset, data);
}

void VirtioPciTransport::notify_from_guest(uint64_t notify_offset) {
  // Reached only when no ioeventfd took the write (none registered, or another access width).
  // Signalling the same eventfd the ioeventfd would have keeps one path into the device.
  if (notify_offset % kPciNotifyOffMultiplier != 0) {
    return;
  }
  const uint64_t index = notify_offset / kPciNotifyOffMultiplier;
  if (index < notifiers_.size()) {
    (void)notifiers_[index]->signal();
  }
}

void VirtioPciTransport::bar_read_locked(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (data.empty() || offset >= kPciBarSize || data.size() > kPciBarSize - offset) {
    return;
  }
  const uint64_t end = offset + data.size();
  if (offset < kPciCommonCfgOffset + kPciCommonCfgLength) {
    read_common_locked(offset - kPciCommonCfgOffset, data);
  } else if (offset == kPciIsrOffset) {
    // 4.1.4.5: reading ISR status resets it to 0.
    data[0] = signals_->isr.exchange(0, std::memory_order_relaxed);
  } else if (offset >= kPciDeviceCfgOffset &&
             end <= kPciDeviceCfgOffset + uint64_t{device_->config_size()}) {
    device_->read_config(offset - kPciDeviceCfgOffset, data);
  } else if (offset >= kPciMsixTableOffset && offset < kPciMsixPbaOffset) {
    msix_->read_table(offset - kPciMsixTableOffset, data);
  } else if (offset >= kPciMsixPbaOffset) {
    msix_->read_pba(offset - kPciMsixPbaOffset, data);
  }
  // Notify area and gaps read as zero.
}

void VirtioPciTransport::bar_write_locked(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty() || offset >= kPciBarSize || data.size() > kPciBarSize - offset) {
    return;
  }
  const uint64_t end = offset + data.size();
  if (offset < kPciCommonCfgOffset + kPciCommonCfgLength) {
    write_common_locked(offset - kPciCommonCfgOffset, data);
  } else if (offset >= kPciDeviceCfgOffset &&
             end <= kPciDeviceCfgOffset + uint64_t{device_->config_size()}) {
    device_->write_config(offset - kPciDeviceCfgOffset, data);
  } else if (offset >= kPciNotifyOffset && offset < kPciMsixTableOffset) {
    notify_from_guest(offset - kPciNotifyOffset);
  } else if (offset >= kPciMsixTableOffset && offset < kPciMsixPbaOffset) {
    msix_->write_table(offset - kPciMsixTableOffset, data);
  }
  // ISR, the PBA and gaps are read-only.
}

uint64_t VirtioPciTransport::offered_features() const {
  return (device_features_ & ~kReservedFeatureBits) |
         (device_features_ & kTransportFeatures) | kFeatureVersion1;
}

VirtioPciTransport::QueueRegs* VirtioPciTransport::selected_queue_locked() {
  return queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
}

const VirtioPciTransport::QueueRegs* VirtioPciTransport::selected_queue_locked() const {
  return queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
}

bool VirtioPciTransport::queue_writable_locked() const {
  // 4.1.4.3.2: the driver configures a queue before enabling it; after queue_enable or
  // DRIVER_OK the device is using it, so later writes are ignored.
  const QueueRegs* q = selected_queue_locked();
  return q != nullptr && !q->config.ready &&
         (signals_->status.load(std::memory_order_relaxed) & kStatusDriverOk) == 0;
}

void VirtioPciTransport::read_common_locked(uint64_t offset, std::span<uint8_t> data) const {
  using namespace common_cfg;
  std::array<uint8_t, kPciCommonCfgLength> image{};
  // Every field lies inside the structure (the offsets are 4.1.4.3's layout; queue_notify_data
  // is the last field written here).
  static_assert(kQueueNotifyData + 2 <= kPciCommonCfgLength);
  auto put_le = [&image](size_t at, uint64_t value, size_t width) {
    store_le(std::span(image).subspan(at, width), value);
  };
  const uint64_t offered = offered_features();
  put_le(kDeviceFeatureSelect, device_feature_select_, 4);
  put_le(kDeviceFeature,
         device_feature_select_ < 2 ? offered >> (32 * device_feature_select_) : 0, 4);
  put_le(kDriverFeatureSelect, driver_feature_select_, 4);
  put_le(kDriverFeature,
         driver_feature_select_ < 2 ? driver_features_ >> (32 * driver_feature_select_) : 0, 4);
  put_le(kConfigMsixVector, signals_->config_vector.load(std::memory_order_relaxed), 2);
  put_le(kNumQueues, num_queues_, 2);
  put_le(kDeviceStatus, signals_->status.load(std::memory_order_relaxed), 1);
  put_le(kConfigGeneration, signals_->config_generation.load(std::memory_order_relaxed),
         1);
  put_le(kQueueSelect, queue_select_, 2);
  if (const QueueRegs* q = selected_queue_locked()) {
    put_le(kQueueSize, q->config.size, 2);
    put_le(kQueueMsixVector,
           signals_->queue_vectors[queue_select_].load(std::memory_order_relaxed), 2);
    put_le(kQueueEnable, q->config.ready ? 1 : 0, 2);
    put_le(kQueueNotifyOff, queue_select_, 2);  // times the multiplier 4 = byte offset
    put_le(kQueueDesc, q->config.desc_table, 8);
    put_le(kQueueDriver, q->config.avail_ring, 8);
    put_le(kQueueDevice, q->config.used_ring, 8);
    put_le(kQueueNotifyData, queue_select_, 2);
  }
  // queue_size reads 0 for a queue that does not exist (4.1.4.3.1); queue_reset stays 0: the
  // RING_RESET feature is not offered.
  for (size_t i = 0; i < data.size() && offset + i < image.size(); ++i) {
    data[i] = image[offset + i];
  }
}

void VirtioPciTransport::write_common_locked(uint64_t offset, std::span<const uint8_t> data) {
  using namespace common_cfg;
  const size_t len = data.size();
  const uint64_t value = load_le(data);
  auto is = [&](uint16_t reg, size_t width) { return offset == reg && len == width; };
  const uint8_t status = signals_->status.load(std::memory_order_relaxed);

  // Fields are written with their natural width (4.1.3.1); 64-bit queue addresses as two
  // 32-bit halves or one 64-bit access. Other widths and read-only fields are ignored.
  if (is(kDeviceFeatureSelect, 4)) {
    device_feature_select_ = static_cast<uint32_t>(value);
  } else if (is(kDriverFeatureSelect, 4)) {
    driver_feature_select_ = static_cast<uint32_t>(value);
  } else if (is(kDriverFeature, 4)) {
    if ((status & kStatusFeaturesOk) != 0 || driver_feature_select_ >= 2) {
      return;  // features are frozen once FEATURES_OK is set (3.1.1)
    }
    const unsigned shift = 32 * driver_feature_select_;
    driver_features_ = (driver_features_ & ~(0xFFFF'FFFFull << shift)) | (value << shift);
  } else if (is(kConfigMsixVector, 2)) {
    // 4.1.5.1.2.1: a vector the device cannot map reads back as NO_VECTOR.
    const auto v = static_cast<uint16_t>(value);
    signals_->config_vector.store(v < msix_->size() ? v : kNoVector, std::memory_order_relaxed);
  } else if (is(kDeviceStatus, 1)) {
    write_status_locked(static_cast<uint8_t>(value));
  } else if (is(kQueueSelect, 2)) {
    queue_select_ = static_cast<uint16_t>(value);
  } else if (is(kQueueSize, 2)) {
    const auto size = static_cast<uint16_t>(value);
    QueueRegs* q = selected_queue_locked();
    // Only a power of two up to the maximum: the device MUST present 0 or a power of two.
    if (queue_writable_locked() && size != 0 && std::has_single_bit(size) &&
        size <= q->max_size) {
      q->config.size = size;
    }
  } else if (is(kQueueMsixVector, 2)) {
    if (queue_select_ < num_queues_) {
      const auto v = static_cast<uint16_t>(value);
      signals_->queue_vectors[queue_select_].store(v < msix_->size() ? v : kNoVector,
                                                   std::memory_order_relaxed);
    }
  } else if (is(kQueueEnable, 2)) {
    // Writing 0 is forbidden to the driver (4.1.4.3.2) and means nothing without RING_RESET.
    if (value == 1 && queue_writable_locked()) {
      selected_queue_locked()->config.ready = true;
    }
  } else if (offset >= kQueueDesc && offset + len <= kQueueNotifyData &&
             (len == 4 || (len == 8 && offset % 8 == 0))) {
    if (!queue_writable_locked() || offset % 4 != 0) {
      return;
    }
    QueueConfig& cfg = selected_queue_locked()->config;
    const uint64_t field = (offset - kQueueDesc) / 8;
    uint64_t& address = field == 0 ? cfg.desc_table : (field == 1 ? cfg.avail_ring : cfg.used_ring);
    if (len == 8) {
      address = value;
    } else if (offset % 8 == 0) {
      address = (address & 0xFFFF'FFFF'0000'0000ull) | value;
    } else {
      address = (address & 0xFFFF'FFFFull) | (value << 32);
    }
  }
}

void VirtioPciTransport::write_status_locked(uint8_t value) {
  if (value == 0) {
    reset_locked();
    return;
  }
  const uint8_t old = signals_->status.load(std::memory_order_relaxed);
  // NEEDS_RESET is the device's bit; the driver cannot set or clear it.
  uint8_t want = value & static_cast<uint8_t>(~kStatusDeviceNeedsReset);
  const uint8_t old_driver_bits = old & static_cast<uint8_t>(~kStatusDeviceNeedsReset);
  if ((old_driver_bits & ~want) != 0) {
    return;  // 2.1.1: the driver MUST NOT clear a status bit; only a reset does
  }
  const uint8_t added = want & ~old;
  if ((added & kStatusFeaturesOk) != 0) {
    // 3.1.1 step 5/6: we refuse FEATURES_OK (leave it clear) if the driver accepted a feature
    // we did not offer, or is not a virtio 1.x driver (VERSION_1 missing).
    const bool acceptable = (driver_features_ & ~offered_features()) == 0 &&
                            (driver_features_ & kFeatureVersion1) != 0;
    if (!acceptable) {
      want &= static_cast<uint8_t>(~kStatusFeaturesOk);
    }
  }
  if ((added & kStatusDriverOk) != 0 && (want & kStatusFeaturesOk) == 0) {
    want &= static_cast<uint8_t>(~kStatusDriverOk);  // no DRIVER_OK without FEATURES_OK
  }
  signals_->status.fetch_or(want, std::memory_order_relaxed);
  if ((want & ~old & kStatusDriverOk) != 0) {
    if (Status activated = activate_locked(); !activated) {
      spdlog::warn("{}: activation failed, device needs reset: {}", name(),
                   activated.error().message());
      Interrupt(signals_).set_needs_reset();
    }
  }
}

Status VirtioPciTransport::activate_locked() {
  ActivationContext context;
  context.memory = memory_;
  context.features = driver_features_;
  context.interrupt = std::make_shared<Interrupt>(signals_);
  for (uint16_t i = 0; i < num_queues_; ++i) {
    const QueueConfig& cfg = queues_[i].config;
    if (!cfg.ready) {
      continue;
    }
    auto queue = SplitQueue::create(*memory_, cfg, driver_features_);
    if (!queue) {
      return fail(queue.error().wrap("queue " + std::to_string(i)));
    }
    context.queues.push_back(ActiveQueue{i, std::move(*queue), notifiers_[i]});
  }
  register_ioevents_locked();
  if (Status started = device_->activate(std::move(context)); !started) {
    unregister_ioevents_locked();
    return started;
  }
  active_ = true;
  return {};
}

void VirtioPciTransport::reset_locked() {
  // The device stops its workers first (VirtioDevice::reset contract), so nothing below races
  // with a worker.
  device_->reset();
  active_ = false;
  unregister_ioevents_locked();
  for (const auto& notifier : notifiers_) {
    (void)notifier->consume();  // drop kicks from before the reset
  }
  for (auto& q : queues_) {
    q.config = QueueConfig{.size = q.max_size};
  }
  for (auto& v : signals_->queue_vectors) {
    v.store(kNoVector, std::memory_order_relaxed);
  }
  signals_->config_vector.store(kNoVector, std::memory_order_relaxed);
  driver_features_ = 0;
  device_feature_select_ = 0;
  driver_feature_select_ = 0;
  queue_select_ = 0;
  signals_->isr.store(0, std::memory_order_relaxed);
  signals_->status.store(0, std::memory_order_relaxed);
}

void VirtioPciTransport::register_ioevents_locked() {
  if (ioevents_ == nullptr || !bar_base_) {
    return;
  }
  for (uint16_t i = 0; i < num_queues_; ++i) {
    if (!queues_[i].config.ready) {
      continue;
    }
    const uint64_t addr = *bar_base_ + kPciNotifyOffset + uint64_t{i} * kPciNotifyOffMultiplier;
    const int fd = notifiers_[i]->fd();
    if (Status st = ioevents_->register_mmio_ioevent(addr, kPciNotifyWidth, fd); st) {
      registered_ioevents_.push_back(IoEvent{addr, fd});
    } else if (!ioevent_failure_logged_) {
      // Still correct, only slower: the write exits to the VMM and notify_from_guest() runs.
      ioevent_failure_logged_ = true;
      spdlog::warn("{}: ioeventfd for queue {} failed, using MMIO exits: {}", name(), i,
                   st.error().message());
    }
  }
}

void VirtioPciTransport::unregister_ioevents_locked() {
  for (const auto& ev : registered_ioevents_) {
    (void)ioevents_->unregister_mmio_ioevent(ev.addr, kPciNotifyWidth, ev.fd);
  }
  registered_ioevents_.clear();
}

uint8_t VirtioPciTransport::device_status() const {
  return signals_->status.load(std::memory_order_relaxed);
}

bool VirtioPciTransport::device_active() const {
  std::lock_guard lock(mu_);
  return active_;
}

uint64_t VirtioPciTransport::driver_features() const {
  std::lock_guard lock(mu_);
  return driver_features_;
}

std::optional<uint64_t> VirtioPciTransport::bar_base() const {
  std::lock_guard lock(mu_);
  return bar_base_;
}

}  // namespace hcnode::compute::virtio

#include "compute/vm.hpp"

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include <spdlog/spdlog.h>

#include "base/size.hpp"
#include "compute/arch/x86/boot_cpu_state.hpp"
#include "compute/arch/x86/kernel_loader.hpp"
#include "compute/devices/legacy/cmos_rtc.hpp"
#include "compute/devices/legacy/debug_exit.hpp"
#include "compute/devices/legacy/i8042.hpp"
#include "compute/devices/legacy/serial_8250.hpp"
#include "compute/devices/pci/pci_root.hpp"
#include "compute/devices/virtio_blk/virtio_blk.hpp"
#include "compute/devices/virtio_rng/virtio_rng.hpp"
#include "compute/virtio/pci_transport.hpp"
#include "compute/exit_status.hpp"
#include "compute/vcpu/cpu_setup.hpp"

namespace hcnode::compute {
namespace {

// Addresses Intel VMX needs below 4 GiB for real-mode emulation (KVM API: KVM_SET_TSS_ADDR,
// KVM_SET_IDENTITY_MAP_ADDR); inside the MMIO hole's top, away from LAPIC/IOAPIC/BARs.
constexpr uint64_t kIdentityMapAddr = 0xFFFB'C000;
constexpr uint64_t kTssAddr = 0xFFFB'D000;
constexpr uint64_t kMaxKernelFile = 1ull << 30;

std::unexpected<VmBuildError> build_fail(int status, Error e) {
  return std::unexpected(VmBuildError{status, std::move(e)});
}

Result<std::vector<uint8_t>> read_file(const std::string& what, const std::string& path, uint64_t limit) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    return fail(from_errno(what + " " + path));
  }
  const auto size = static_cast<uint64_t>(in.tellg());
  if (size > limit) {
    return fail(EFBIG, what + " " + path + " is " + format_size(size) + ", more than " + format_size(limit));
  }
  std::vector<uint8_t> data(size);
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(size))) {
    return fail(EIO, "reading " + what + " " + path);
  }
  return data;
}

uint64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages_total = 0;
  uint64_t pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

const char* vm_state_name(VmState state) {
  switch (state) {
    case VmState::kCreated: return "created";
    case VmState::kRunning: return "running";
    case VmState::kPaused: return "paused";
    default: return "stopped";
  }
}

std::expected<std::unique_ptr<Vm>, VmBuildError> Vm::create(const VmConfig& config) {
  if (auto r = validate_settings(config); !r) {
    return build_fail(kExitBadConfig, r.error());
  }
  if (auto r = validate_boot_files(config); !r) {
    return build_fail(kExitBadKernel, r.error());
  }
  auto kvm = kvm::KvmSystem::open();
  if (!kvm) {
    return build_fail(kExitNoKvm, kvm.error());
  }
  for (int cap : {KVM_CAP_IRQCHIP, KVM_CAP_IRQFD, KVM_CAP_IOEVENTFD, KVM_CAP_IRQ_ROUTING,
                  KVM_CAP_USER_MEMORY, KVM_CAP_PIT2, KVM_CAP_IMMEDIATE_EXIT}) {
    if (kvm->check_extension(cap) <= 0) {
      return build_fail(kExitNoKvm, make_error(ENOTSUP, "KVM lacks capability " + std::to_string(cap)));
    }
  }
  int max_vcpus = kvm->check_extension(KVM_CAP_MAX_VCPUS);
  if (max_vcpus <= 0) {
    max_vcpus = kvm->check_extension(KVM_CAP_NR_VCPUS);
  }
  if (max_vcpus > 0 && config.vcpus > static_cast<uint32_t>(max_vcpus)) {
    return build_fail(kExitBadConfig, make_error(EINVAL, "vcpus " + std::to_string(config.vcpus) +
                                                             " is more than KVM allows here (" +
                                                             std::to_string(max_vcpus) + ")"));
  }
  auto vm = kvm->create_vm();
  if (!vm) {
    return build_fail(kExitNoKvm, vm.error());
  }
  auto ram = GuestRam::create(config.memory_bytes);
  if (!ram) {
    return build_fail(kExitBadConfig, ram.error());
  }
  auto exit_event = EventFd::create(EFD_NONBLOCK);
  if (!exit_event) {
    return build_fail(kExitVmmFailure, exit_event.error());
  }
  std::unique_ptr<Vm> self(new Vm(config, std::move(*kvm), std::move(*vm), std::move(*ram), std::move(*exit_event)));
  if (auto r = self->build(); !r) {
    return std::unexpected(r.error());
  }
  return self;
}

Vm::Vm(VmConfig config, kvm::KvmSystem kvm, kvm::KvmVm vm, GuestRam ram, EventFd exit_event)
    : config_(std::move(config)), kvm_(std::move(kvm)), vm_(std::move(vm)), ram_(std::move(ram)),
      exit_event_(std::move(exit_event)) {}

Vm::~Vm() { stop(); }

Status Vm::add_pio_device(std::string name, uint64_t base, uint64_t len, std::shared_ptr<BusDevice> dev) {
  HCN_TRY_STATUS(pio_.insert(base, len, std::move(dev)));
  devices_.push_back(DeviceInfo{std::move(name), "pio", base, len});
  return {};
}

std::expected<void, VmBuildError> Vm::build() {
  auto vmm_fail = [](const Error& e) { return build_fail(kExitVmmFailure, e); };
  // Platform: x86 needs these before vCPUs exist.
  if (auto r = vm_.set_tss_addr(kTssAddr); !r) return vmm_fail(r.error());
  if (auto r = vm_.set_identity_map_addr(kIdentityMapAddr); !r) return vmm_fail(r.error());
  if (auto r = vm_.create_irqchip(); !r) return vmm_fail(r.error());
  if (auto r = vm_.create_pit2(); !r) return vmm_fail(r.error());

  uint32_t slot = 0;
  for (const auto& region : ram_.regions()) {
    if (auto r = vm_.set_user_memory_region(slot++, region.gpa, region.host.size(), region.host.data()); !r) {
      return vmm_fail(r.error());
    }
  }
  auto interrupts = kvm::KvmInterrupts::create(vm_);
  if (!interrupts) return vmm_fail(interrupts.error());
  interrupts_ = std::move(*interrupts);

  // Console and legacy devices.
  auto console = Console::create(config_.serial);
  if (!console) return build_fail(kExitBadConfig, console.error());
  console_ = std::move(*console);
  auto com1_irq = interrupts_->legacy_line(Serial8250::kCom1Gsi);
  if (!com1_irq) return vmm_fail(com1_irq.error());
  Console* console_ptr = console_.get();
  serial_ = std::make_shared<Serial8250>(std::move(*com1_irq),
                                         [console_ptr](std::span<const uint8_t> b) { console_ptr->write(b); });
  if (auto r = add_pio_device("serial-com1", Serial8250::kCom1Base, 8, serial_); !r) return vmm_fail(r.error());
  auto kbc = std::make_shared<I8042>([this] { request_exit(kExitGuestEnded, "guest reset (i8042)"); });
  if (auto r = add_pio_device("i8042", I8042::kBase, I8042::kLength, kbc); !r) return vmm_fail(r.error());
  if (config_.debug_exit) {
    // Opt-in (--debug-exit): with the port a guest chooses the VMM's exit status, which only
    // test and benchmark guests may. Without it port 0xF4 is unclaimed: a write there is
    // counted as unhandled_io and dropped, a read returns 0xFF (Bus), and the VM runs on.
    auto debug_exit = std::make_shared<DebugExit>([this](uint8_t v) {
      request_exit(debug_exit_status(v), "guest wrote " + std::to_string(v) + " to the debug-exit port");
    });
    if (auto r = add_pio_device("debug-exit", DebugExit::kPort, 1, debug_exit); !r) return vmm_fail(r.error());
  }
  if (auto r = add_pio_device("cmos-rtc", CmosRtc::kBase, 2, std::make_shared<CmosRtc>()); !r) return vmm_fail(r.error());

  // PCI bus 0 (host bridge in slot 0) behind configuration mechanism #1; devices' BARs go in
  // the 32-bit MMIO hole.
  pci_ = std::make_shared<pci::PciRoot>();
  if (auto r = add_pio_device("pci-config", pci::PciRoot::kConfigPorts, pci::PciRoot::kConfigPortsLen, pci_); !r) {
    return vmm_fail(r.error());
  }
  if (config_.rng) {
    auto rng = virtio::VirtioPciTransport::create(std::make_shared<virtio::VirtioRng>("rng0"), ram_, *interrupts_,
                                                  interrupts_.get());
    if (!rng) return vmm_fail(rng.error());
    auto pci_slot = pci_->add_device(*rng);
    if (!pci_slot) return vmm_fail(pci_slot.error());
    pci_devices_.push_back(PciDeviceInfo{"virtio-rng", *pci_slot, *rng});
  }
  if (auto r = add_disks(); !r) return r;
  if (auto r = pci_->attach_bars(mmio_); !r) return vmm_fail(r.error());

  // vCPUs.
  auto mmap_size = kvm_.vcpu_mmap_size();
  if (!mmap_size) return vmm_fail(mmap_size.error());
  auto supported = kvm_.supported_cpuid();
  if (!supported) return vmm_fail(supported.error());
  pv_hypercalls_ = config_.pv_hypercalls == PvHypercalls::kOn ||
                   (config_.pv_hypercalls == PvHypercalls::kAuto && !host_is_pvm());
  Vcpu::install_kick_handler();
  for (uint32_t i = 0; i < config_.vcpus; ++i) {
    auto vcpu = vm_.create_vcpu(i, *mmap_size);
    if (!vcpu) return vmm_fail(vcpu.error());
    uint32_t tsc_khz = vcpu->tsc_khz().value_or(0);
    auto cpuid = filter_cpuid(*supported, CpuidOptions{.vcpu_index = i, .vcpu_count = config_.vcpus,
                                                       .pv_hypercalls = pv_hypercalls_, .tsc_khz = tsc_khz});
    if (auto r = vcpu->set_cpuid(cpuid); !r) return vmm_fail(r.error());
    if (auto r = vcpu->set_msrs(boot_msrs()); !r) return vmm_fail(r.error());
    if (auto r = vcpu->set_fpu(boot_fpu()); !r) return vmm_fail(r.error());
    auto lapic = vcpu->get_lapic();
    if (!lapic) return vmm_fail(lapic.error());
    configure_lapic_lints(*lapic);
    if (auto r = vcpu->set_lapic(*lapic); !r) return vmm_fail(r.error());
    vcpus_.push_back(std::make_unique<Vcpu>(std::move(*vcpu), i, pio_, mmio_, *this));
  }

  // Kernel, initrd, command line, MP table; the BSP's registers.
  auto kernel = read_file("kernel", config_.kernel, kMaxKernelFile);
  if (!kernel) return build_fail(kExitBadKernel, kernel.error());
  std::vector<uint8_t> initrd;
  if (!config_.initrd.empty()) {
    auto data = read_file("initrd", config_.initrd, config_.memory_bytes);
    if (!data) return build_fail(kExitBadKernel, data.error());
    initrd = std::move(*data);
  }
  auto boot = x86::load_kernel(ram_, *kernel, initrd, config_.cmdline, config_.vcpus);
  if (!boot) return build_fail(kExitBadKernel, boot.error().wrap("kernel " + config_.kernel));
  auto& bsp = vcpus_[0]->kvm_for_setup();
  auto sregs = bsp.get_sregs();
  if (!sregs) return vmm_fail(sregs.error());
  x86::apply_to_sregs(boot->bsp, *sregs);
  if (auto r = bsp.set_sregs(*sregs); !r) return vmm_fail(r.error());
  if (auto r = bsp.set_regs(boot->bsp.regs); !r) return vmm_fail(r.error());
  boot_info_ = {{"format", std::string(x86::kernel_format_name(boot->format))},
                {"entry", boot->entry},
                {"boot_info_addr", boot->boot_info_addr},
                {"kernel_end", boot->kernel_end},
                {"initrd_bytes", initrd.size()}};
  spdlog::info("vm built: {} vCPU(s), {} RAM, kernel {} ({}), entry {:#x}", config_.vcpus,
               format_size(config_.memory_bytes), config_.kernel, x86::kernel_format_name(boot->format), boot->entry);
  return {};
}

std::expected<void, VmBuildError> Vm::add_disks() {
  auto vmm_fail = [](const Error& e) { return build_fail(kExitVmmFailure, e); };
  if (config_.disks.empty()) return {};
  // librbd's cache is a setting of the (one) rados client: "none" if any rbd disk asks for it.
  blockdev::SessionsConfig sessions;
  for (const auto& d : config_.disks) {
    if (d.uri.starts_with("rbd:") && d.cache == "none") sessions.rbd_cache = blockdev::CachePolicy::kNone;
  }
  storage_ = std::make_shared<blockdev::StorageSessions>(sessions);
  for (size_t i = 0; i < config_.disks.size(); ++i) {
    const DiskConfig& d = config_.disks[i];
    const std::string name = "blk" + std::to_string(i);
    auto uri = blockdev::parse_disk_uri(d.uri);
    if (!uri) return build_fail(kExitBadConfig, uri.error());
    auto cache = blockdev::parse_cache_policy(d.cache);
    if (!cache) return build_fail(kExitBadConfig, cache.error());
    auto format = blockdev::parse_image_format(d.format);
    if (!format) return build_fail(kExitBadConfig, format.error());
    blockdev::BackendOptions options;
    options.read_only = d.read_only;
    options.cache = *cache;
    options.format = *format;
    auto backend = blockdev::open_backend(*uri, options, *storage_);
    if (!backend) return build_fail(kExitDiskUnavailable, backend.error().wrap(name));
    auto queues = static_cast<uint16_t>(
        d.queues != 0 ? d.queues : std::min<uint32_t>(config_.vcpus, virtio::VirtioBlk::kMaxQueues));
    if (const uint32_t most = (*backend)->info().max_queues; most != 0 && queues > most) {
      // qcow2: one queue owns the image's metadata (blockdev/qcow2/qcow2_backend.hpp).
      spdlog::info("{}: {} serves {} queue(s) at most: using {}", name, d.uri, most, most);
      queues = static_cast<uint16_t>(most);
    }
    virtio::BlkDeviceConfig blk_config{name, d.serial.empty() ? name : d.serial, queues, d.queue_size};
    auto blk = std::make_shared<virtio::VirtioBlk>(blk_config, *backend);
    auto transport = virtio::VirtioPciTransport::create(blk, ram_, *interrupts_, interrupts_.get());
    if (!transport) return vmm_fail(transport.error());
    auto slot = pci_->add_device(*transport);
    if (!slot) return vmm_fail(slot.error());
    pci_devices_.push_back(PciDeviceInfo{"virtio-blk", *slot, *transport});
    disks_.push_back(DiskInfo{name, d, blk, *slot});
    const blockdev::BackendInfo& info = (*backend)->info();
    spdlog::info("{}: {} ({}, {}{}), {} queue(s), PCI slot {}", name, d.uri, info.kind,
                 format_size(info.size), info.read_only ? ", read-only" : "", queues, *slot);
  }
  return {};
}

void Vm::pause_devices() {
  for (auto& d : pci_devices_) {
    if (auto r = d.transport->device().pause(); !r) {
      spdlog::warn("{}: pause failed: {}", d.name, r.error().message());
    }
  }
}

void Vm::resume_devices() {
  for (auto& d : pci_devices_) {
    if (auto r = d.transport->device().resume(); !r) {
      spdlog::warn("{}: resume failed: {}", d.name, r.error().message());
    }
  }
}

Status Vm::start() {
  if (state_ != VmState::kCreated) {
    return fail(EINVAL, std::string("start: VM is ") + vm_state_name(state_));
  }
  HCN_TRY_STATUS(console_->start([this](std::span<const uint8_t> in) { serial_->enqueue_input(in); }));
  started_ = std::chrono::steady_clock::now();
  state_ = VmState::kRunning;
  for (auto& v : vcpus_) {
    HCN_TRY_STATUS(v->start());
  }
  return {};
}

Status Vm::pause() {
  if (state_ == VmState::kPaused) {
    return {};
  }
  if (state_ != VmState::kRunning) {
    return fail(EINVAL, std::string("pause: VM is ") + vm_state_name(state_));
  }
  for (auto& v : vcpus_) {
    v->pause();
  }
  // With the vCPUs stopped no new requests arrive; drain what the devices have in flight.
  pause_devices();
  state_ = VmState::kPaused;
  return {};
}

Status Vm::resume() {
  if (state_ == VmState::kRunning) {
    return {};
  }
  if (state_ != VmState::kPaused) {
    return fail(EINVAL, std::string("resume: VM is ") + vm_state_name(state_));
  }
  resume_devices();
  for (auto& v : vcpus_) {
    v->resume();
  }
  state_ = VmState::kRunning;
  return {};
}

void Vm::stop() {
  if (state_ == VmState::kStopped) {
    return;
  }
  for (auto& v : vcpus_) {
    v->stop();
  }
  // Let every request the storage already has complete before the process goes away.
  pause_devices();
  if (console_) {
    console_->stop();
  }
  state_ = VmState::kStopped;
}

void Vm::prepare_process_exit() {
  if (storage_) storage_->prepare_process_exit();
}

void Vm::request_exit(int status, const std::string& reason) {
  int expected = -1;
  if (exit_status_.compare_exchange_strong(expected, status)) {
    {
      std::lock_guard lock(exit_mu_);
      exit_reason_ = reason;
    }
    spdlog::info("vm exit requested: {} (status {})", reason, status);
    // No vCPU runs guest code after the event that ended the VM.
    for (auto& v : vcpus_) {
      v->request_stop();
    }
    (void)exit_event_.signal();
  }
}

std::string Vm::exit_reason() const {
  std::lock_guard lock(exit_mu_);
  return exit_reason_;
}

nlohmann::json Vm::describe() const {
  nlohmann::json vcpus = nlohmann::json::array();
  for (const auto& v : vcpus_) {
    vcpus.push_back({{"index", v->index()}, {"tid", v->tid()}, {"paused", v->paused()}});
  }
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& d : devices_) {
    devices.push_back({{"name", d.name}, {"bus", d.bus}, {"base", d.base}, {"length", d.length}});
  }
  for (const auto& d : pci_devices_) {
    devices.push_back({{"name", d.name}, {"bus", "pci"}, {"slot", d.slot}});
  }
  nlohmann::json disks = nlohmann::json::array();
  for (const auto& d : disks_) {
    const blockdev::BackendInfo& info = d.device->backend().info();
    disks.push_back({{"name", d.name},
                     {"uri", d.config.uri},
                     {"backend", info.kind},
                     {"size", info.size},
                     {"read_only", info.read_only},
                     {"serial", d.device->config().serial},
                     {"queues", d.device->config().num_queues},
                     {"queue_size", d.device->config().queue_size},
                     {"cache", d.config.cache},
                     {"pci_slot", d.slot}});
  }
  nlohmann::json storage = nlohmann::json::object();
  if (storage_) {
    if (auto addr = storage_->rados_client_address()) storage["rados_client_address"] = *addr;
  }
  nlohmann::json memory = nlohmann::json::array();
  for (const auto& r : ram_.regions()) {
    memory.push_back({{"gpa", r.gpa}, {"size", r.host.size()}});
  }
  return {{"state", vm_state_name(state_)},
           {"pid", ::getpid()},
           {"config", config_.to_json()},
           {"boot", boot_info_},
           {"pv_hypercalls", pv_hypercalls_},
           {"vcpus", vcpus},
           {"devices", devices},
           {"memory", memory},
           {"disks", disks},
           {"storage", storage},
           {"console", {{"target", console_->target()}, {"clients", console_->clients()}}}};
}

Result<nlohmann::json> Vm::vcpu_states() {
  if (state_ != VmState::kPaused) {
    return fail(EBUSY, std::string("vcpu_state: the VM is ") + vm_state_name(state_) + "; pause it first");
  }
  nlohmann::json out = nlohmann::json::array();
  for (auto& v : vcpus_) {
    VcpuState s = HCN_TRY(v->save_state());
    out.push_back(s.to_json());
  }
  return out;
}

nlohmann::json Vm::stats() const {
  nlohmann::json vcpus = nlohmann::json::array();
  for (const auto& v : vcpus_) {
    const VcpuStats s = v->stats();
    vcpus.push_back({{"index", v->index()},
                     {"exits", {{"io", s.io}, {"mmio", s.mmio}, {"hlt", s.hlt}, {"intr", s.intr},
                                {"shutdown", s.shutdown}, {"system_event", s.system_event},
                                {"internal_error", s.internal_error}, {"other", s.other}}},
                     {"unhandled_io", s.unhandled_io},
                     {"kicks", s.kicks}});
  }
  nlohmann::json disks = nlohmann::json::array();
  for (const auto& d : disks_) {
    const virtio::BlkStats s = d.device->stats();
    auto us = [&](double q) { return static_cast<double>(s.latency_ns.percentile(q)) / 1000.0; };
    disks.push_back({{"name", d.name},
                     {"ops", {{"read", s.read_ops}, {"write", s.write_ops}, {"flush", s.flush_ops},
                              {"discard", s.discard_ops}, {"write_zeroes", s.write_zeroes_ops},
                              {"get_id", s.get_id_ops}}},
                     {"bytes", {{"read", s.read_bytes}, {"write", s.write_bytes}}},
                     {"errors", s.errors},
                     {"bad_chains", s.bad_chains},
                     {"queues_broken", s.queues_broken},
                     {"in_flight", s.in_flight},
                     {"latency_us", {{"count", s.latency_ns.count}, {"p50", us(0.5)}, {"p90", us(0.9)},
                                     {"p99", us(0.99)}, {"p999", us(0.999)},
                                     {"max", static_cast<double>(s.latency_ns.max) / 1000.0}}}});
  }
  double uptime = 0;
  if (state_ != VmState::kCreated) {
    uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }
  return {{"state", vm_state_name(state_)},
          {"uptime_s", uptime},
          {"rss_bytes", rss_bytes()},
          {"guest_memory_bytes", config_.memory_bytes},
          {"serial_bytes_out", serial_->bytes_out()},
          {"vcpus", vcpus},
          {"disks", disks}};
}

}  // namespace hcnode::compute

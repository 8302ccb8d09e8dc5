// hcnode-blk-device-bench: the virtio-blk device + a real backend, no guest (bench/blk part 1).
//
// Opens a disk by URI (open_backend + StorageSessions, exactly as hcnode-vmm does), builds a
// VirtioBlk over it with anonymous guest memory (FakeGuestMemory), and plays the driver on one
// queue from the main thread (MockSplitQueue lays out the rings): QD requests are kept in flight;
// the driver adds chains, kicks the notifier (honouring VIRTQ_USED_F_NO_NOTIFY) and polls the
// used ring — it spins with a pause for --spin-us, then sleeps on the "irqfd" (an eventfd the
// device's VirtioInterrupt signals, as KVM's irqfd would be). Every request is timed from
// publishing its chain to seeing it in the used ring.
//
// CPU: getrusage(RUSAGE_SELF) over the measured window minus the driver thread's own
// CLOCK_THREAD_CPUTIME_ID = what the device worker + backend (librbd/gfapi/io_uring and their
// threads) cost, per I/O.
//
//   hcnode-blk-device-bench --uri URI [--cache none|writeback] --rw randread|randwrite|read|write
//                           [--bs 4096] [--qd 1] [--seconds 5] [--spin-us 10] [--seed 1]
//
// Prints one JSON line: {"rw":..,"bs":..,"qd":..,"ops":..,"errors":..,"seconds":..,"iops":..,
// "mib_s":..,"lat_p50_us":..,"lat_p99_us":..,"cpu_us_per_io":..,"total_cpu_us_per_io":..,
// "driver_cpu_us_per_io":..,"kicks":..,"irqs":..}
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "blockdev/open_backend.hpp"
#include "compute/devices/virtio_blk/blk_spec.hpp"
#include "compute/devices/virtio_blk/virtio_blk.hpp"
#include "compute/virtio/constants.hpp"
#include "tests/fakes/fake_guest_memory.hpp"
#include "tests/fakes/mock_split_queue.hpp"

using namespace hcnode;
using namespace hcnode::compute;
using namespace hcnode::compute::virtio;
using hcnode::testing::FakeGuestMemory;
using hcnode::testing::MockSplitQueue;

namespace {

// The device's interrupt: an eventfd write per notification, like KVM's irqfd.
struct IrqFdInterrupt final : VirtioInterrupt {
  explicit IrqFdInterrupt(EventFd fd) : irq(std::move(fd)) {}
  void notify_queue(uint16_t) override {
    irqs.fetch_add(1, std::memory_order_relaxed);
    (void)irq.signal();
  }
  void notify_config() override {}
  void set_needs_reset() override { needs_reset = true; }
  EventFd irq;
  std::atomic<uint64_t> irqs{0};
  std::atomic<bool> needs_reset{false};
};

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}
uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}
uint64_t process_cpu_ns() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) {
    return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(t.tv_usec) * 1000ull;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int usage(const char* why) {
  std::fprintf(stderr,
               "hcnode-blk-device-bench: %s\nusage: hcnode-blk-device-bench --uri URI [--cache none|writeback] "
               "--rw randread|randwrite|read|write [--bs N] [--qd N] [--seconds S] [--spin-us N] [--seed N]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string uri_text, cache_text = "none", rw = "randread";
  uint64_t bs = 4096, qd = 1, spin_us = 10, seed = 1;
  double seconds = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string(); };
    if (a == "--uri") uri_text = next();
    else if (a == "--cache") cache_text = next();
    else if (a == "--rw") rw = next();
    else if (a == "--bs") bs = std::stoull(next());
    else if (a == "--qd") qd = std::stoull(next());
    else if (a == "--seconds") seconds = std::stod(next());
    else if (a == "--spin-us") spin_us = std::stoull(next());
    else if (a == "--seed") seed = std::stoull(next());
    else return usage(("unknown argument " + a).c_str());
  }
  if (uri_text.empty()) return usage("--uri is required");
  const bool is_write = rw == "randwrite" || rw == "write";
  const bool is_random = rw == "randread" || rw == "randwrite";
  if (!is_write && rw != "randread" && rw != "read") return usage("bad --rw");
  if (qd < 1 || qd > 64 || bs % 512 != 0 || bs == 0 || bs > (1u << 20)) return usage("bad --qd/--bs");
  spdlog::set_level(spdlog::level::warn);

  auto uri = blockdev::parse_disk_uri(uri_text);
  if (!uri) return usage(uri.error().message().c_str());
  auto cache = blockdev::parse_cache_policy(cache_text);
  if (!cache) return usage(cache.error().message().c_str());
  blockdev::SessionsConfig sc;
  sc.rbd_cache = *cache;  // the VMM does the same for rbd disks with cache=none (compute/vm.cpp)
  blockdev::StorageSessions sessions(sc);
  auto backend = blockdev::open_backend(*uri, blockdev::BackendOptions{false, *cache}, sessions);
  if (!backend) {
    std::fprintf(stderr, "hcnode-blk-device-bench: %s\n", backend.error().message().c_str());
    return 1;
  }
  const uint64_t disk = (*backend)->info().size;
  const uint64_t blocks = disk / bs;
  if (blocks == 0) return usage("disk smaller than --bs");

  // Guest memory: rings at 0x1000, then per slot a 16-byte header + 1-byte status (one page per
  // slot), then the data buffers. FakeGuestMemory is a std::vector: its host address is only
  // 16-aligned, so data buffers are placed at guest addresses whose HOST address is 4 KiB-aligned
  // (O_DIRECT needs that in the file backend; a real VM's RAM is page-aligned).
  constexpr uint16_t kQueueSize = 256;
  const uint64_t meta_base = 0x100000;
  const uint64_t data_base_nominal = meta_base + qd * 4096 + 0x10000;
  const uint64_t mem_size = data_base_nominal + qd * bs + 3 * 4096;
  FakeGuestMemory mem(mem_size);
  const auto host0 = reinterpret_cast<uintptr_t>(mem.host(data_base_nominal));
  const uint64_t data_base = data_base_nominal + ((4096 - host0 % 4096) % 4096);
  for (uint64_t i = 0; i < qd * bs; i += 4096) *mem.host(data_base + i) = static_cast<uint8_t>(i >> 12);

  MockSplitQueue driver(mem, kQueueSize, 0x1000);
  auto irq_fd = EventFd::create(0);  // blocking: the driver sleeps on it
  auto kick = EventFd::create(EFD_NONBLOCK);
  if (!irq_fd || !kick) return 1;
  auto interrupt = std::make_shared<IrqFdInterrupt>(std::move(*irq_fd));
  auto notifier = std::make_shared<EventFd>(std::move(*kick));

  BlkDeviceConfig config{"blk0", "bench", 1, kQueueSize};
  VirtioBlk blk(config, *backend);
  ActivationContext ctx;
  ctx.memory = &mem;
  // What the probe guest negotiates (no EVENT_IDX): FLUSH, VERSION_1.
  ctx.features = kFeatureVersion1 | blk::kFeatureFlush;
  ctx.interrupt = interrupt;
  auto q = SplitQueue::create(mem, driver.config(), ctx.features);
  if (!q) return 1;
  ctx.queues.push_back(ActiveQueue{0, std::move(*q), notifier});
  if (Status s = blk.activate(std::move(ctx)); !s) {
    std::fprintf(stderr, "hcnode-blk-device-bench: activate: %s\n", s.error().message().c_str());
    return 1;
  }

  // Slot i owns descriptors 3i, 3i+1, 3i+2 (header, data, status): completions in any order
  // never make the driver reuse a descriptor still in flight.
  std::vector<uint64_t> start(qd, 0);
  std::vector<uint32_t> lat_ns;
  lat_ns.reserve(1 << 20);
  uint64_t seq = 0, n = 0, errors = 0, kicks = 0;
  uint16_t avail = 0, used_seen = 0;
  auto prepare = [&](uint64_t slot) {
    const uint64_t hdr = meta_base + slot * 4096;
    const uint64_t block = is_random ? mix(seed ^ (n++ * 0x9e3779b97f4a7c15ull)) % blocks
                                     : (seq++ % blocks);
    const uint32_t type = is_write ? blk::kTypeOut : blk::kTypeIn;
    const uint64_t sector = block * bs / 512;
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    (void)mem.write(hdr, h);
    *mem.host(hdr + 64) = 0xEE;
    const auto first = static_cast<uint16_t>(3 * slot);
    driver.build_chain(first, {{hdr, 16, false},
                               {data_base + slot * bs, static_cast<uint32_t>(bs), !is_write},
                               {hdr + 64, 1, true}});
    driver.set_avail_ring_entry(avail, first);
    ++avail;
  };
  auto publish_and_kick = [&] {
    std::atomic_thread_fence(std::memory_order_release);
    driver.set_avail_idx(avail);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if ((driver.used_flags() & kUsedFlagNoNotify) == 0) {
      (void)notifier->signal();
      ++kicks;
    }
  };

  const uint64_t cpu0 = process_cpu_ns(), drv0 = thread_cpu_ns(), t0 = now_ns();
  const uint64_t deadline = t0 + static_cast<uint64_t>(seconds * 1e9);
  uint64_t in_flight = 0, ops = 0;
  for (uint64_t s = 0; s < qd; ++s) {
    prepare(s);
    start[s] = now_ns();
    ++in_flight;
  }
  publish_and_kick();
  bool stopping = false;
  uint64_t spin_start = now_ns();
  while (in_flight > 0) {
    const uint16_t used = driver.used_idx();
    std::atomic_thread_fence(std::memory_order_acquire);
    if (used == used_seen) {
      const uint64_t t = now_ns();
      if (interrupt->needs_reset) {
        std::fprintf(stderr, "hcnode-blk-device-bench: device needs reset\n");
        return 1;
      }
      if (t - spin_start < spin_us * 1000) {
        _mm_pause();
        continue;
      }
      uint64_t v = 0;
      // Sleep until the device's next interrupt (a stale count just makes us look again).
      if (::read(interrupt->irq.fd(), &v, sizeof v) < 0 && errno != EINTR) return 1;
      spin_start = now_ns();
      continue;
    }
    const uint64_t t = now_ns();
    bool added = false;
    for (; used_seen != used; ++used_seen) {
      const auto e = driver.used_elem(used_seen);
      const uint64_t slot = e.id / 3;
      lat_ns.push_back(static_cast<uint32_t>(std::min<uint64_t>(t - start[slot], UINT32_MAX)));
      if (*mem.host(meta_base + slot * 4096 + 64) != blk::kStatusOk) ++errors;
      ++ops;
      --in_flight;
      if (!stopping && t >= deadline) stopping = true;
      if (!stopping) {
        prepare(slot);
        start[slot] = now_ns();
        ++in_flight;
        added = true;
      }
    }
    if (added) publish_and_kick();
    spin_start = now_ns();
  }
  const uint64_t t1 = now_ns(), drv1 = thread_cpu_ns(), cpu1 = process_cpu_ns();
  blk.reset();

  std::sort(lat_ns.begin(), lat_ns.end());
  auto pct = [&](double p) -> double {
    if (lat_ns.empty()) return 0;
    const size_t i = std::min(lat_ns.size() - 1, static_cast<size_t>(p * static_cast<double>(lat_ns.size())));
    return lat_ns[i] / 1000.0;
  };
  const double el = static_cast<double>(t1 - t0) / 1e9;
  const double dops = ops ? static_cast<double>(ops) : 1.0;
  const double total_cpu = static_cast<double>(cpu1 - cpu0) / 1000.0;  // µs
  const double drv_cpu = static_cast<double>(drv1 - drv0) / 1000.0;
  std::printf(
      "{\"uri\":\"%s\",\"rw\":\"%s\",\"bs\":%llu,\"qd\":%llu,\"ops\":%llu,\"errors\":%llu,"
      "\"seconds\":%.3f,\"iops\":%.1f,\"mib_s\":%.1f,\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,"
      "\"lat_max_us\":%.1f,\"cpu_us_per_io\":%.2f,\"total_cpu_us_per_io\":%.2f,"
      "\"driver_cpu_us_per_io\":%.2f,\"kicks\":%llu,\"irqs\":%llu}\n",
      uri_text.c_str(), rw.c_str(), (unsigned long long)bs, (unsigned long long)qd,
      (unsigned long long)ops, (unsigned long long)errors, el, ops / el,
      ops * static_cast<double>(bs) / el / 1048576.0, pct(0.50), pct(0.99), pct(1.0),
      std::max(0.0, total_cpu - drv_cpu) / dops, total_cpu / dops, drv_cpu / dops,
      (unsigned long long)kicks, (unsigned long long)interrupt->irqs.load());
  return errors == 0 ? 0 : 3;
}

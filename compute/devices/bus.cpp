#include "compute/devices/bus.hpp"

#include <algorithm>
#include <mutex>

namespace hcnode::compute {

Status Bus::insert(uint64_t base, uint64_t len, std::shared_ptr<BusDevice> device) {
  if (len == 0 || base + len < base) {
    return fail(EINVAL, name_ + " bus: invalid range");
  }
  std::unique_lock lock(mu_);
  // The first range starting at or after base must start at or after base + len, and the range
  // before it must end at or before base.
  auto next = by_base_.lower_bound(base);
  if (next != by_base_.end() && next->first < base + len) {
    return fail(EEXIST, name_ + " bus: range overlaps an existing device");
  }
  if (next != by_base_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.len > base) {
      return fail(EEXIST, name_ + " bus: range overlaps an existing device");
    }
  }
  by_base_.emplace(base, Entry{len, std::move(device)});
  return {};
}

Status Bus::remove(uint64_t base) {
  std::unique_lock lock(mu_);
  if (by_base_.erase(base) == 0) {
    return fail(ENOENT, name_ + " bus: no device at base");
  }
  return {};
}

const Bus::Entry* Bus::find(uint64_t addr, uint64_t* base) const {
  auto it = by_base_.upper_bound(addr);
  if (it == by_base_.begin()) {
    return nullptr;
  }
  --it;
  if (addr - it->first >= it->second.len) {
    return nullptr;
  }
  *base = it->first;
  return &it->second;
}

std::shared_ptr<BusDevice> Bus::lookup(uint64_t addr, uint64_t* base) const {
  std::shared_lock lock(mu_);
  const Entry* e = find(addr, base);
  // A copy of the pointer: the device is called without the lock held, so a concurrent
  // remove() never waits for a device access (and the device lives until the access ends).
  return e != nullptr ? e->device : nullptr;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
  uint64_t base = 0;
  std::shared_ptr<BusDevice> device = lookup(addr, &base);
  if (!device) {
    std::fill(data.begin(), data.end(), 0xFF);
    return false;
  }
  device->read(addr - base, data);
  return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
  uint64_t base = 0;
  std::shared_ptr<BusDevice> device = lookup(addr, &base);
  if (!device) {
    return false;
  }
  device->write(addr - base, data);
  return true;
}

std::vector<Bus::RangeInfo> Bus::ranges() const {
  std::shared_lock lock(mu_);
  std::vector<RangeInfo> out;
  for (const auto& [base, e] : by_base_) {
    out.push_back({base, e.len});
  }
  return out;
}

}  // namespace hcnode::compute

// MmapRegion: the one owner of an mmap(2) mapping. Move-only; munmaps in its destructor.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "base/result.hpp"

namespace hcnode {

class MmapRegion {
 public:
  MmapRegion() = default;
  ~MmapRegion() { reset(); }
  MmapRegion(MmapRegion&& o) noexcept
      : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MmapRegion& operator=(MmapRegion&& o) noexcept {
    if (this != &o) {
      reset();
      addr_ = std::exchange(o.addr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  MmapRegion(const MmapRegion&) = delete;
  MmapRegion& operator=(const MmapRegion&) = delete;

  // Private anonymous memory (guest RAM): MAP_NORESERVE so untouched pages cost nothing.
  static Result<MmapRegion> anonymous(size_t size, int extra_flags = MAP_NORESERVE) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
    if (p == MAP_FAILED) {
      return fail(from_errno("mmap anonymous " + std::to_string(size) + " bytes"));
    }
    return MmapRegion(p, size);
  }

  // A shared mapping of fd (e.g. a vCPU's struct kvm_run).
  static Result<MmapRegion> shared_fd(int fd, size_t size, off_t offset = 0) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
    if (p == MAP_FAILED) {
      return fail(from_errno("mmap fd " + std::to_string(fd)));
    }
    return MmapRegion(p, size);
  }

  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }

  void reset() {
    if (addr_ != nullptr) {
      ::munmap(addr_, size_);
      addr_ = nullptr;
      size_ = 0;
    }
  }

 private:
  MmapRegion(void* addr, size_t size) : addr_(addr), size_(size) {}
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hcnode

// Slicing and copying scatter-gather lists (the guest's iovecs of one request), and an
// aligned heap buffer for metadata and copy-on-write clusters (O_DIRECT files need 512-byte
// aligned memory; 4096 keeps every backend happy).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace hcnode::blockdev::qcow2 {

// out = the iovecs covering bytes [pos, pos + len) of `in` (which must hold them).
inline void slice_iov(std::span<const iovec> in, uint64_t pos, uint64_t len,
                      std::vector<iovec>& out) {
  out.clear();
  for (const iovec& v : in) {
    if (len == 0) break;
    if (pos >= v.iov_len) {
      pos -= v.iov_len;
      continue;
    }
    const uint64_t n = std::min<uint64_t>(v.iov_len - pos, len);
    out.push_back(iovec{static_cast<char*>(v.iov_base) + pos, n});
    len -= n;
    pos = 0;
  }
}

// Calls fn(pointer, length) for each piece of bytes [pos, pos + len) of `in`.
template <typename Fn>
void for_each_piece(std::span<const iovec> in, uint64_t pos, uint64_t len, Fn fn) {
  for (const iovec& v : in) {
    if (len == 0) break;
    if (pos >= v.iov_len) {
      pos -= v.iov_len;
      continue;
    }
    const uint64_t n = std::min<uint64_t>(v.iov_len - pos, len);
    fn(static_cast<uint8_t*>(v.iov_base) + pos, n);
    len -= n;
    pos = 0;
  }
}

inline void zero_iov(std::span<const iovec> in, uint64_t pos, uint64_t len) {
  for_each_piece(in, pos, len, [](uint8_t* p, uint64_t n) { std::memset(p, 0, n); });
}

inline void copy_from_iov(std::span<const iovec> in, uint64_t pos, uint8_t* dst, uint64_t len) {
  for_each_piece(in, pos, len, [&dst](uint8_t* p, uint64_t n) {
    std::memcpy(dst, p, n);
    dst += n;
  });
}

inline void copy_to_iov(std::span<const iovec> out, uint64_t pos, const uint8_t* src, uint64_t len) {
  for_each_piece(out, pos, len, [&src](uint8_t* p, uint64_t n) {
    std::memcpy(p, src, n);
    src += n;
  });
}

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size)
      : data_(static_cast<uint8_t*>(std::aligned_alloc(4096, (size + 4095) / 4096 * 4096))),
        size_(size) {
    if (!data_) std::abort();  // out of memory in the data path: nothing sane to do
  }
  uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

}  // namespace hcnode::blockdev::qcow2

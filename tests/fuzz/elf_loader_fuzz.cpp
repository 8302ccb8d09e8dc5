// libFuzzer target: the PVH ELF kernel loader on arbitrary files.
//
// The whole input is the kernel file. inspect_elf_kernel and load_elf_kernel must return an
// error or a result for any bytes, never read outside the input (ASan) or write outside guest
// RAM. Guest RAM is a 32 MiB fake at 0, shared between runs (the loader must not depend on its
// contents). When the file is accepted, the loaded image is checked against the file.
//
// Build and run: tests/fuzz/run-fuzzers.sh (tests/fuzz/README.md); seeds in
// tests/fuzz/corpus/elf_loader_fuzz (tests/fuzz/make_seeds.py).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "compute/arch/x86/elf_loader.hpp"
#include "tests/fakes/fake_guest_memory.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hcnode::testing::FakeGuestMemory mem(32u << 20);
  const std::span<const uint8_t> file(data, size);

  auto inspected = hcnode::compute::x86::inspect_elf_kernel(file);
  auto loaded = hcnode::compute::x86::load_elf_kernel(mem, file);
  if (inspected.has_value() != loaded.has_value() && loaded.has_value()) {
    std::abort();  // load accepted what inspection refused
  }
  if (!loaded.has_value()) {
    if (loaded.error().code() == 0 || loaded.error().context().empty()) {
      std::abort();  // every refusal must say why
    }
    return 0;
  }
  // Loading is inspection plus copying: the same kernel description.
  if (inspected->pvh_entry != loaded->pvh_entry || inspected->entry != loaded->entry ||
      inspected->segments.size() != loaded->segments.size() ||
      inspected->lowest_addr != loaded->lowest_addr || inspected->end_addr != loaded->end_addr) {
    std::abort();
  }
  for (const auto& s : loaded->segments) {
    if (s.paddr < loaded->lowest_addr || s.paddr + s.mem_size > loaded->end_addr) {
      std::abort();
    }
    if (s.file_size > s.mem_size || s.offset + s.file_size > size ||
        std::memcmp(mem.host(s.paddr), data + s.offset, s.file_size) != 0) {
      std::abort();
    }
    // .bss zeroed (compared in blocks: a fuzzed memsz can cover all 31 MiB above 1 MiB).
    static const uint8_t zeros[4096] = {};
    for (uint64_t i = s.file_size; i < s.mem_size; i += sizeof zeros) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof zeros, s.mem_size - i));
      if (std::memcmp(mem.host(s.paddr + i), zeros, n) != 0) {
        std::abort();
      }
    }
  }
  return 0;
}

// libFuzzer target: the PVH ELF kernel loader on arbitrary files.
//
// The whole input is the kernel file. inspect_elf_kernel and load_elf_kernel must return an
// error or a result for any bytes, never read outside the input (ASan) or write outside guest
// RAM. Guest RAM is a 32 MiB fake at 0, shared between runs (the loader must not depend on its
// contents). When the file is accepted, the loaded image is checked against the file.
//
// Build by hand (not wired into CMake yet); libstdc++ 12's <expected> needs a compiler that
// reports C++20 concepts (clang >= 16 with __cpp_concepts raised, see the report):
//   clang++-16 -std=c++2b -D__cpp_concepts=202002L -Wno-macro-redefined -g -O1 \
//     -fsanitize=fuzzer,address,undefined -I. tests/fuzz/elf_loader_fuzz.cpp \
//     compute/arch/x86/elf_loader.cpp base/result.cpp -o elf_loader_fuzz
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
  for (const auto& s : loaded->segments) {
    if (s.file_size > s.mem_size || s.offset + s.file_size > size ||
        std::memcmp(mem.host(s.paddr), data + s.offset, s.file_size) != 0) {
      std::abort();
    }
    for (uint64_t i = s.file_size; i < s.mem_size; ++i) {
      if (*mem.host(s.paddr + i) != 0) {
        std::abort();  // .bss not zeroed
      }
    }
  }
  return 0;
}

// hcnode-vmm's process image carries no storage library it has not been asked for (issue 10
// §4): the ELF's dynamic section, and that of every library it NEEDs in turn, names none of
// librados, librbd, gfapi or what they drag in (libceph-common, the glusterfs libraries, boost,
// rdma). blockdev loads them with dlopen for the first disk that needs them.
//
// The oracle is the built binary: its PT_DYNAMIC segment is read here with <elf.h> alone (no
// code of the project's own ELF loader), and the dependencies are resolved through the
// binary's RUNPATH and the multiarch library directories. The same reader run on this test
// executable, which links librados and gfapi directly, must find them: the check can see what
// it looks for.
#include <elf.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/integration/vmm_process.hpp"

using namespace hcnode::testing;

namespace {

struct DynamicInfo {
  std::vector<std::string> needed;
  std::vector<std::string> runpath;  // DT_RUNPATH, else DT_RPATH, split at ':'
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <typename T>
T read_at(const std::string& image, uint64_t offset) {
  REQUIRE(offset <= image.size());
  REQUIRE(sizeof(T) <= image.size() - offset);
  T value;
  std::memcpy(&value, image.data() + offset, sizeof(T));
  return value;
}

// The DT_NEEDED and RUNPATH entries of a 64-bit little-endian ELF file (ELF-64 Object File
// Format 1.5: the dynamic array's d_val for DT_NEEDED/DT_RUNPATH are offsets into the table at
// DT_STRTAB, a virtual address that a PT_LOAD segment maps from the file).
DynamicInfo read_dynamic(const std::string& path) {
  INFO("ELF " << path);
  const std::string image = read_file(path);
  const auto eh = read_at<Elf64_Ehdr>(image, 0);
  REQUIRE(std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0);
  REQUIRE(eh.e_ident[EI_CLASS] == ELFCLASS64);
  REQUIRE(eh.e_ident[EI_DATA] == ELFDATA2LSB);
  REQUIRE(eh.e_phentsize == sizeof(Elf64_Phdr));
  std::vector<Elf64_Phdr> loads;
  const Elf64_Phdr* dynamic = nullptr;
  std::vector<Elf64_Phdr> phdrs;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    phdrs.push_back(read_at<Elf64_Phdr>(image, eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr)));
  }
  for (const auto& ph : phdrs) {
    if (ph.p_type == PT_LOAD) loads.push_back(ph);
    if (ph.p_type == PT_DYNAMIC) dynamic = &ph;
  }
  REQUIRE(dynamic != nullptr);  // a dynamically linked executable or library
  auto file_offset = [&](uint64_t vaddr) {
    for (const auto& ph : loads) {
      if (vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz) {
        return vaddr - ph.p_vaddr + ph.p_offset;
      }
    }
    FAIL("address " << vaddr << " is in no PT_LOAD segment");
    return uint64_t{0};
  };
  std::vector<uint64_t> needed_offsets;
  uint64_t strtab = 0, strsz = 0, runpath = UINT64_MAX, rpath = UINT64_MAX;
  for (uint64_t off = dynamic->p_offset; off + sizeof(Elf64_Dyn) <= dynamic->p_offset + dynamic->p_filesz;
       off += sizeof(Elf64_Dyn)) {
    const auto dyn = read_at<Elf64_Dyn>(image, off);
    if (dyn.d_tag == DT_NULL) break;
    if (dyn.d_tag == DT_NEEDED) needed_offsets.push_back(dyn.d_un.d_val);
    if (dyn.d_tag == DT_STRTAB) strtab = dyn.d_un.d_ptr;
    if (dyn.d_tag == DT_STRSZ) strsz = dyn.d_un.d_val;
    if (dyn.d_tag == DT_RUNPATH) runpath = dyn.d_un.d_val;
    if (dyn.d_tag == DT_RPATH) rpath = dyn.d_un.d_val;
  }
  REQUIRE(strtab != 0);
  const uint64_t table = file_offset(strtab);
  REQUIRE(table <= image.size());
  REQUIRE(strsz <= image.size() - table);
  auto string_at = [&](uint64_t index) {
    REQUIRE(index < strsz);
    const char* begin = image.data() + table + index;
    const void* end = std::memchr(begin, '\0', strsz - index);
    REQUIRE(end != nullptr);
    return std::string(begin, static_cast<const char*>(end));
  };
  DynamicInfo info;
  for (uint64_t index : needed_offsets) info.needed.push_back(string_at(index));
  const uint64_t path_index = runpath != UINT64_MAX ? runpath : rpath;
  if (path_index != UINT64_MAX) {
    std::stringstream list(string_at(path_index));
    for (std::string dir; std::getline(list, dir, ':');) {
      if (!dir.empty()) info.runpath.push_back(dir);
    }
  }
  return info;
}

// Where the dynamic loader would find a NEEDED name for this (x86-64 Debian) system: the
// object's RUNPATH, then the default and multiarch directories (ld.so(8)).
std::string resolve(const std::string& name, const std::vector<std::string>& runpath) {
  std::vector<std::string> dirs = runpath;
  for (const char* dir : {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
                          "/usr/lib64", "/lib", "/usr/lib"}) {
    dirs.emplace_back(dir);
  }
  for (const auto& dir : dirs) {
    const auto candidate = std::filesystem::path(dir) / name;
    if (std::filesystem::exists(candidate)) return candidate.string();
  }
  FAIL("cannot resolve NEEDED " << name << ": the closure would be incomplete");
  return {};
}

// Every soname in the dependency closure of the ELF at path (the ones it NEEDs, theirs, ...).
std::set<std::string> needed_closure(const std::string& path) {
  std::set<std::string> seen;
  std::vector<std::pair<std::string, DynamicInfo>> todo;
  todo.emplace_back(path, read_dynamic(path));
  while (!todo.empty()) {
    auto [from, info] = std::move(todo.back());
    todo.pop_back();
    for (const auto& name : info.needed) {
      if (!seen.insert(name).second) continue;
      todo.emplace_back(name, read_dynamic(resolve(name, info.runpath)));
    }
  }
  return seen;
}

// Storage libraries and what only they bring (librados/librbd: libceph-common, boost, rdma;
// gfapi: the glusterfs core libraries). A name matches if it starts with one of these.
constexpr std::array kStorageLibraries = {
    "librados.", "librbd.", "libceph-common.", "libgfapi.", "libglusterfs.", "libgfrpc.",
    "libgfxdr.", "libboost_", "libibverbs.", "librdmacm.",
};

// gfapi's RPC library. Sanitizer builds of hcnode load it at start on purpose (ASan's xdr_*
// interceptors bind the real functions once, at start-up: blockdev/CMakeLists.txt).
constexpr const char* kTirpc = "libtirpc.";

std::vector<std::string> storage_libraries_in(const std::set<std::string>& names,
                                              bool allow_tirpc = false) {
  std::vector<std::string> found;
  for (const auto& name : names) {
    for (const char* prefix : kStorageLibraries) {
      if (name.starts_with(prefix)) found.push_back(name);
    }
    if (!allow_tirpc && name.starts_with(kTirpc)) found.push_back(name);
  }
  return found;
}

}  // namespace

TEST_CASE("hcnode-vmm's ELF needs none of librados, librbd, gfapi or their dependencies",
          "[vmm][elf]") {
  const std::string vmm = vmm_binary();
  const DynamicInfo direct = read_dynamic(vmm);
  INFO("hcnode-vmm DT_NEEDED: " << Catch::Detail::stringify(direct.needed));
  // The reader sees the binary's real dependencies: every Linux program needs libc.
  CHECK(std::find(direct.needed.begin(), direct.needed.end(), "libc.so.6") != direct.needed.end());
  const std::set<std::string> direct_set(direct.needed.begin(), direct.needed.end());
  const bool asan = std::any_of(direct_set.begin(), direct_set.end(),
                                [](const std::string& n) { return n.starts_with("libasan."); });
  CHECK(storage_libraries_in(direct_set, asan).empty());

  const std::set<std::string> closure = needed_closure(vmm);
  INFO("closure: " << Catch::Detail::stringify(std::vector<std::string>(closure.begin(), closure.end())));
  CHECK(storage_libraries_in(closure, asan).empty());
}

TEST_CASE("the ELF dependency reader finds librados and gfapi where they are linked",
          "[vmm][elf]") {
  // This test executable links librados, librbd and gfapi (tests/integration/CMakeLists.txt):
  // the same check that passes for hcnode-vmm must see them here.
  const std::set<std::string> closure = needed_closure("/proc/self/exe");
  const auto found = storage_libraries_in(closure);
  INFO("found: " << Catch::Detail::stringify(found));
  CHECK(closure.contains("librados.so.2"));
  CHECK(closure.contains("librbd.so.1"));
  CHECK(closure.contains("libgfapi.so.0"));
  CHECK(closure.contains("libceph-common.so.2"));
  CHECK(std::find(found.begin(), found.end(), "libceph-common.so.2") != found.end());
}

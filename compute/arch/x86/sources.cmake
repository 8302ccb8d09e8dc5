# compute/arch/x86: boot protocols (PVH, Linux 64-bit), e820, MP table, initial CPU state.
# Pure code over GuestMemory; included from compute/CMakeLists.txt.
target_sources(hcnode_compute PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/memory_map.cpp
  ${CMAKE_CURRENT_LIST_DIR}/elf_loader.cpp
  ${CMAKE_CURRENT_LIST_DIR}/bzimage.cpp
  ${CMAKE_CURRENT_LIST_DIR}/initrd.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cmdline.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pvh.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mptable.cpp
  ${CMAKE_CURRENT_LIST_DIR}/gdt.cpp
  ${CMAKE_CURRENT_LIST_DIR}/page_tables.cpp
  ${CMAKE_CURRENT_LIST_DIR}/boot_cpu_state.cpp
  ${CMAKE_CURRENT_LIST_DIR}/kernel_loader.cpp
)

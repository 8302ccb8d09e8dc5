# Unit tests of compute/arch/x86 (boot protocols, e820, MP table, boot CPU state).
target_sources(hcnode_unit_tests PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/memory_map_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/elf_loader_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pvh_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/bzimage_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mptable_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/boot_cpu_state_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/kernel_loader_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/real_kernels_test.cpp
)
# The probe guest is built by this project: the real-kernel test always has it.
add_dependencies(hcnode_unit_tests probe-guest)
set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/real_kernels_test.cpp APPEND PROPERTY
  COMPILE_DEFINITIONS HCNODE_PROBE_ELF_PATH="${HCNODE_PROBE_ELF}")

# PCI unit tests: configuration space, the root bus and BAR placement, MSI-X.
target_sources(hcnode_unit_tests PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/config_space_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pci_root_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/msix_test.cpp
)

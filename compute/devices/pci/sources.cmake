# PCI: configuration space, the root bus with configuration mechanism #1, BAR placement, MSI-X.
target_sources(hcnode_compute PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/config_space.cpp
  ${CMAKE_CURRENT_LIST_DIR}/bar_allocator.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pci_root.cpp
  ${CMAKE_CURRENT_LIST_DIR}/msix.cpp
)

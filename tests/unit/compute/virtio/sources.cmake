# virtio unit tests: split queues and descriptor chains, the virtio-pci transport, virtio-rng.
target_sources(hcnode_unit_tests PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/split_queue_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pci_transport_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/virtio_rng_test.cpp
)
# virtio-blk: request parsing and the device against a fake backend.
target_sources(hcnode_unit_tests PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/blk_request_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/virtio_blk_test.cpp
)

# virtio: split queues and descriptor chains (pure code over GuestMemory), the virtio-pci
# transport, and the virtio devices built on them (compute/devices/virtio_*/).
target_sources(hcnode_compute PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/descriptor_chain.cpp
  ${CMAKE_CURRENT_LIST_DIR}/split_queue.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pci_transport.cpp
  ${CMAKE_CURRENT_LIST_DIR}/device_thread.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../devices/virtio_rng/virtio_rng.cpp
)
target_sources(hcnode_compute PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/../devices/virtio_blk/blk_request.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../devices/virtio_blk/virtio_blk.cpp
)

# arm64 (aarch64) cross build against a Debian arm64 sysroot; see linux-cross.cmake.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(AF_CROSS_TRIPLET aarch64-linux-gnu)
set(AF_QEMU qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)

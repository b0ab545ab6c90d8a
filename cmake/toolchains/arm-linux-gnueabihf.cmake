# armhf (32-bit ARMv7, hard float) cross build against a Debian armhf sysroot;
# see linux-cross.cmake.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(AF_CROSS_TRIPLET arm-linux-gnueabihf)
set(AF_QEMU qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)

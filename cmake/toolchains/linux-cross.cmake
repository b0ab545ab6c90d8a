# Shared part of the cross toolchain files: a Debian cross compiler
# (crossbuild-essential-<arch>) building against a sysroot made of Debian's
# own foreign-architecture -dev packages (scripts/cross-build makes it).
#
# The including file sets AF_CROSS_TRIPLET and CMAKE_SYSTEM_PROCESSOR.
# The sysroot comes from -DAF_SYSROOT=DIR or $AF_SYSROOT.
set(CMAKE_SYSTEM_NAME Linux)

if(NOT AF_SYSROOT AND DEFINED ENV{AF_SYSROOT})
  set(AF_SYSROOT "$ENV{AF_SYSROOT}")
endif()
if(NOT AF_SYSROOT OR NOT EXISTS "${AF_SYSROOT}/usr/include")
  message(FATAL_ERROR "cross toolchain ${AF_CROSS_TRIPLET}: set AF_SYSROOT (-DAF_SYSROOT=DIR or the "
                      "environment) to a sysroot made by scripts/cross-build; got '${AF_SYSROOT}'")
endif()
# try_compile() projects run this file again: hand them the sysroot
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES AF_SYSROOT)

set(CMAKE_C_COMPILER ${AF_CROSS_TRIPLET}-gcc)
set(CMAKE_SYSROOT "${AF_SYSROOT}")
set(CMAKE_LIBRARY_ARCHITECTURE ${AF_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH "${AF_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config reads only the sysroot's .pc files and prefixes their paths
set(ENV{PKG_CONFIG_DIR} "")
set(ENV{PKG_CONFIG_LIBDIR}
    "${AF_SYSROOT}/usr/lib/${AF_CROSS_TRIPLET}/pkgconfig:${AF_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${AF_SYSROOT}")

# tests built for the target run under qemu-user with the sysroot's loader
set(CMAKE_CROSSCOMPILING_EMULATOR ${AF_QEMU};-L;${AF_SYSROOT})

# The Debian packages, made by CPack's DEB generator from the install components of one build
# (packaging/README.md says why): `kbuild` (component runtime) and `libkbuild-sdk-dev`
# (component sdk). packaging/deb/build-debs runs it.

# Files install under /usr whatever CMAKE_INSTALL_PREFIX was: kbuild finds its plugins and
# builder definitions relative to its own binary, so the build needs no second compile.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kbuild)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_COMPONENTS_ALL runtime sdk)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <package>_<version>_<arch>.deb
# Binaries and plugins without their debug info (a RelWithDebInfo build's kbuild: 59 MB, 2 MB
# stripped).
set(CPACK_STRIP_FILES ON)
set(CPACK_KBUILD_STRIP "${CMAKE_STRIP}")
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/strip-debug.cmake)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_THREADS 0)  # xz on every core

set(KBUILD_DEB_MAINTAINER "kbuild maintainers" CACHE STRING
  "The Maintainer field of the Debian packages ('Name <email>')")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${KBUILD_DEB_MAINTAINER}")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME kbuild)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION devel)
# Depends: the shared libraries of the binary and plugins, found by dpkg-shlibdeps.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
# postinst makes the build service's system user (adduser); gpgv checks mirrors' signatures
# against debian-archive-keyring (and other configured keyrings); bubblewrap sandboxes local
# builds; /etc/kbuild/config.toml is a
# conffile.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "adduser, gpgv, debian-archive-keyring, bubblewrap")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_LIST_DIR}/postinst ${CMAKE_CURRENT_LIST_DIR}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Container builds need the Docker daemon; `kbuild images build` needs debootstrap; rpmkeys
# (rpm) checks rpm packages' signatures once a key is configured for an rpm distro; the local
# builder runs make and the kernel's gcc.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "docker.io, debootstrap, rpm")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SUGGESTS "make, gcc")
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
"build kernel modules for every kernel of every distribution
kbuild compiles a kernel module (or eBPF probe) against each kernel a
distribution ships: distro plugins find the kernels on the mirrors or in local
packages, kbuild downloads and unpacks their headers, builds the module with the
kernel's own compiler in a container (or locally) and checks its vermagic.
.
This package holds the kbuild program, the plugins (/usr/lib/kbuild) for Debian,
Ubuntu, Garden Linux, the CentOS family, Amazon Linux, SUSE, Photon OS, Alibaba
Cloud Linux, Arch Linux, Flatcar/CoreOS and kernels shipped as source (kernel.org,
COS, Minikube, LinuxKit), the builder image definitions, and the systemd unit of
its build service (kbuild serve).")

set(CPACK_DEBIAN_SDK_PACKAGE_NAME libkbuild-sdk-dev)
set(CPACK_DEBIAN_SDK_PACKAGE_SECTION libdevel)
# What building a plugin needs: the compiler and CMake, and the development packages behind
# the find_dependency() calls of sdk/cmake/kbuild_sdkConfig.cmake.in.
set(CPACK_DEBIAN_SDK_PACKAGE_DEPENDS
  "cmake (>= 3.22), g++, make, nlohmann-json3-dev (>= 3.9), libssl-dev, liblzma-dev, zlib1g-dev, libexpat1-dev, libzstd-dev, libarchive-dev")
set(CPACK_DEBIAN_SDK_PACKAGE_RECOMMENDS "kbuild")
set(CPACK_DEBIAN_SDK_DESCRIPTION
"SDK for kbuild distro plugins
The headers of kbuild's plugin contract (kbuild/plugin_api.h) and its C++
layer, the helpers every distro family needs (deb and rpm repositories,
version order, digests) as a static library, and the CMake package kbuild_sdk
with kbuild_add_plugin(). An example plugin is in
/usr/share/doc/libkbuild-sdk-dev/examples/plugin.")

include(CPack)

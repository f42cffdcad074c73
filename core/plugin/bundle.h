// Kernel bundles in StackRox kernel-packer's format: bundle-<uname>.tgz holds the header tree
// a module build needs and, at its root, one-value files saying how to use it:
//
//   BUNDLE_BUILD_DIR  ./usr/src/linux-headers-6.1.0-56-amd64   where to run make (relative)
//   BUNDLE_CHECKSUM   <sha256>        of the packages the tree came from (a build cache key)
//   BUNDLE_DISTRO     debian
//   BUNDLE_UNAME      6.1.0-56-amd64
//   BUNDLE_VERSION / BUNDLE_MAJOR / BUNDLE_MINOR   6 / 1 / 0   (the uname's first three numbers)
//
// kbuild adds BUNDLE_ARCH, and BUNDLE_KERNELVERSION, BUNDLE_TARGET, BUNDLE_VARIANT where the
// release has them, so a build from the bundle names its artifacts as a build from the
// packages does; other readers ignore them, and kbuild reads bundles without them.
//
// A bundle is self-contained: symlinks and Makefile includes that named absolute paths inside
// the tree are made relative, so it builds wherever it is extracted. Other architectures'
// arch/ trees are left out.
#pragma once

#include <kbuild/types.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace kbuild {

class Plugin;

struct BundleMeta {
    std::string build_dir, checksum, distro, uname, version, major, minor;
    std::string arch, kernelversion, target, variant;  // kbuild's additions; may be empty
};

// The file a release's bundle is written to: bundle-<uname>.tgz, or bundle-<uname>~<variant>.tgz
// when the release has a variant; an architecture other than x86 is named first
// (bundle-aarch64_<uname>.tgz): Ubuntu's arm64 kernels have its amd64 kernels' names.
std::string bundle_file_name(const Release& release);

// Reads a bundle's meta files (streaming; the tree is not extracted). Throws naming the file
// and what is missing or wrong: no BUNDLE_UNAME, a BUNDLE_BUILD_DIR leading out of the bundle.
BundleMeta read_bundle_meta(const std::filesystem::path& bundle);

// The reader of bundles the host hands to its pipeline in place of a distro plugin (through
// the same hooks, so --from-bundle builds are indexed, named and skipped as any other). It is
// built in: no plugin is loaded, nothing is fetched.
const Plugin& bundle_plugin();

}  // namespace kbuild

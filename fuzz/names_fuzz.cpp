// File names as the batch readers take them (Debian, rpm, pacman, kernel.org tarballs), and
// the three version orders over the input's two halves.
#include "fuzz_input.h"

#include <kbuild/deb.hpp>
#include <kbuild/deb_archive.hpp>
#include <kbuild/pacman.hpp>
#include <kbuild/rpm.hpp>
#include <kbuild/source_kernel.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string name(kbuild::fuzz::text(data, size));
    if (const auto binary = kbuild::deb::binary_from_file_name(name)) {
        kbuild::deb::debian_kernel_package(binary->name);
        if (binary->name.rfind("linux-headers-", 0) == 0) kbuild::deb::debian_headers_release(*binary);
    }
    kbuild::rpm::parse_file_name(name);
    kbuild::pacman::parse_file_name(name);
    kbuild::source::tarball_version(name);
    kbuild::source::leading_version(name);
    const std::string_view a = std::string_view(name).substr(0, size / 2), b = std::string_view(name).substr(size / 2);
    kbuild::rpm::compare_evr(a, b);
    kbuild::pacman::compare_versions(a, b);
    kbuild::deb::compare_versions(a, b);
    return 0;
}

// An rpm repository's primary.xml (plain, or gzip / xz / zstd by its magic), every package
// wanted, each compared with a kernel's version as the crawlers order them.
#include "fuzz_input.h"

#include <kbuild/error.hpp>
#include <kbuild/rpm.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static kbuild::fuzz::InputFile file;
    try {
        kbuild::rpm::read_primary(
            file.with(data, size), [](std::string_view) { return true; },
            [](const kbuild::rpm::Package& p) { kbuild::rpm::compare_evr(p.version + "-" + p.release, "5.14.0-1"); });
    } catch (const kbuild::Error&) {}
    return 0;
}

// An rpm repository's repomd.xml.
#include "fuzz_input.h"

#include <kbuild/error.hpp>
#include <kbuild/rpm.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto entries = kbuild::rpm::parse_repomd(kbuild::fuzz::text(data, size));
        kbuild::rpm::find(entries, "primary");
    } catch (const kbuild::Error&) {}
    return 0;
}

// A Release file (or an InRelease's verified text) and its dates.
#include "fuzz_input.h"

#include <kbuild/deb.hpp>
#include <kbuild/error.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace kbuild::deb;
    try {
        const ReleaseFile release = parse_release(kbuild::fuzz::text(data, size));
        release_time(release.date);
        release_time(release.valid_until);
    } catch (const kbuild::Error&) {}
    return 0;
}

// One desc file of a pacman repository database.
#include "fuzz_input.h"

#include <kbuild/error.hpp>
#include <kbuild/pacman.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        kbuild::pacman::parse_desc(kbuild::fuzz::text(data, size), "core.db: linux-headers-6.9.7.arch1-1/desc");
    } catch (const kbuild::Error&) {}
    return 0;
}

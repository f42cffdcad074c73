// An HTTP server's directory index page.
#include "fuzz_input.h"

#include <kbuild/listing.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    for (const auto& entry : kbuild::directory_entries(kbuild::fuzz::text(data, size)))
        if (entry.empty()) __builtin_trap();  // an entry always names something
    return 0;
}

// A Depends field, and versions compared as dpkg compares them (the input's two halves).
#include "fuzz_input.h"

#include <kbuild/deb.hpp>
#include <kbuild/deb_archive.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace kbuild::deb;
    const std::string_view input = kbuild::fuzz::text(data, size);
    Binary binary;
    binary.name = "linux-headers-6.1.0-50-common";
    binary.version = std::string(input.substr(0, size / 2));
    for (const auto& group : parse_relations(input))
        for (const auto& relation : group) {
            describe(relation);
            satisfies(binary, relation);
        }
    const int ab = compare_versions(input.substr(0, size / 2), input.substr(size / 2));
    const int ba = compare_versions(input.substr(size / 2), input.substr(0, size / 2));
    if ((ab < 0) != (ba > 0) || (ab == 0) != (ba == 0)) __builtin_trap();  // an order, both ways
    return 0;
}

// A Packages index (deb822) as the debian-family crawlers read it: paragraphs, then each
// package's Depends, Version and Filename as deb_archive reads them.
#include "fuzz_input.h"

#include <kbuild/deb.hpp>
#include <kbuild/deb_archive.hpp>
#include <kbuild/error.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace kbuild::deb;
    static kbuild::fuzz::InputFile file;
    const auto each = [](const Paragraph& p) {
        for (const auto& group : parse_relations(p.get("Depends")))
            for (const auto& relation : group) describe(relation);
        compare_versions(p.get("Version"), "6.1.0-50");
        if (const auto binary = binary_from_file_name(std::string(p.get("Filename"))))
            for (const auto& group : parse_relations(p.get("Pre-Depends")))
                for (const auto& relation : group) satisfies(*binary, relation);
        pool_source(std::string(p.get("Filename")));
    };
    read_paragraphs_text(kbuild::fuzz::text(data, size), each);
    try {
        // The same bytes as a file: plain, or xz / gzip when the magic says so.
        read_paragraphs(file.with(data, size), each);
    } catch (const kbuild::Error&) {}
    return 0;
}

// A local .rpm's lead and header, read in process.
#include "fuzz_input.h"

#include <kbuild/error.hpp>
#include <kbuild/rpm.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static kbuild::fuzz::InputFile file;
    try {
        kbuild::rpm::read_header(file.with(data, size));
    } catch (const kbuild::Error&) {}
    return 0;
}

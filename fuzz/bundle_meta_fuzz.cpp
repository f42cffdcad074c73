// A kernel-packer bundle's meta files (BUNDLE_UNAME, BUNDLE_BUILD_DIR, ...) read out of a
// hostile .tgz without extracting it.
#include "fuzz_input.h"

#include "plugin/bundle.h"

#include <kbuild/error.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static kbuild::fuzz::InputFile file;
    try {
        const kbuild::BundleMeta meta = kbuild::read_bundle_meta(file.with(data, size));
        if (meta.uname.empty()) __builtin_trap();  // a bundle without one is refused
    } catch (const kbuild::Error&) {}
    return 0;
}

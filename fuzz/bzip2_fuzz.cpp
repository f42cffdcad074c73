// The bzip2 block scanner and the parallel reader over a damaged or hostile .bz2: every byte
// read front to back, then a few reads out of order (which decode the blocks before them).
#include "fuzz_input.h"

#include "unpack/bzip2_reader.h"

#include <kbuild/error.hpp>

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static kbuild::fuzz::InputFile file;
    kbuild::find_bzip2_magics(data, size);
    if (!kbuild::is_bzip2(data, size)) return 0;
    try {
        kbuild::Bzip2Reader::Options options;
        options.threads = 2;
        options.cache_bytes = std::size_t{8} << 20;
        kbuild::Bzip2Reader reader(file.with(data, size), options);
        std::vector<char> buffer(1 << 16);
        std::uint64_t offset = 0;
        while (const std::size_t n = reader.read(offset, buffer.data(), buffer.size())) offset += n;
        if (offset != reader.size()) __builtin_trap();  // read to the end, it is the size
        for (const std::uint64_t at : {offset / 2, std::uint64_t{0}, offset > 0 ? offset - 1 : 0})
            reader.read(at, buffer.data(), 7);
    } catch (const kbuild::Error&) {}
    return 0;
}

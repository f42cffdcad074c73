// A damaged disk image: its GPT or MBR read, then the kernel tree copied out of its ext2/3/4
// file system through libext2fs and kbuild's io_manager, into a directory removed afterwards.
#include "fuzz_input.h"

#include "unpack/byte_source.h"
#include "unpack/disk_image.h"

#include <kbuild/error.hpp>

#include <filesystem>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static kbuild::fuzz::InputFile file;
    static const std::filesystem::path dest =
        std::filesystem::current_path() / ("disk-image-fuzz-" + std::to_string(::getpid()));
    const std::string& path = file.with(data, size);
    try {
        auto image = kbuild::open_byte_source(path);
        kbuild::find_filesystem(*image);
        kbuild::extract_from_image(path, dest, {"usr/lib/modules/*/build", "usr/lib/modules/*/source"});
    } catch (const kbuild::Error&) {}
    std::filesystem::remove_all(dest);
    return 0;
}

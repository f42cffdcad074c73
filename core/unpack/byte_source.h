// Random-access bytes of a disk image, whether it is stored raw or compressed: what a file
// system reader (libext2fs) reads through, so that a compressed image is never decompressed
// to disk or held whole in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace kbuild {

// Random-access bytes of a disk image, however it is stored.
class ByteSource {
public:
    virtual ~ByteSource() = default;
    // Copies up to `len` bytes at `offset` into `buf`; fewer only at the end of the data.
    // Throws kbuild::Error (from <kbuild/types.hpp>) with one line naming the file and the cause.
    virtual std::size_t read(std::uint64_t offset, void* buf, std::size_t len) = 0;
    // The size of the data (for a compressed file: decompressed), decoding to the end if needed.
    virtual std::uint64_t size() = 0;
    virtual const std::string& name() const = 0;  // the file, for messages
};

// Opens `path`: a bzip2 file (told by its magic "BZh1".."BZh9" followed by a block or end
// magic) is read through Bzip2Reader, anything else as raw bytes (pread). Throws kbuild::Error
// naming the file when it cannot be opened.
std::unique_ptr<ByteSource> open_byte_source(const std::string& path);

}  // namespace kbuild

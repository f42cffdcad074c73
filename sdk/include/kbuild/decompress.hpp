// One streaming decompressor for every place kbuild reads compressed bytes: apt's Packages
// files (deb.hpp), yum's primary.xml (rpm.hpp) and the host's package payloads (a .deb's
// data.tar.*, an rpm's cpio). gzip (zlib), xz (liblzma, optionally multithreaded) and zstd
// (libzstd); concatenated streams read as one, as `gzip -dc`, `xz -dc` and `zstd -dc` do.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace kbuild {

enum class Compression { none, gzip, xz, zstd, bzip2 };

// The compression the data's first bytes announce (6 are enough); none for any other bytes
// (plain data, or a compression this layer does not know).
Compression detect_compression(std::string_view lead);

// "gzip", "xz", ...; "none".
const char* compression_name(Compression kind);

// Whether make_decompressor reads this kind (none, gzip, xz and zstd).
bool can_decompress(Compression kind);

// Compressed bytes, a block at a time.
class CompressedInput {
public:
    virtual ~CompressedInput() = default;
    // The next block, valid until the next call; empty only at the end. Throws kbuild::Error.
    virtual std::string_view next() = 0;
};

// The decompressed bytes.
class Decompressor {
public:
    virtual ~Decompressor() = default;
    // Fills `out` completely unless the data ends first; 0 only at the end. Throws
    // kbuild::Error "<name>: <cause>" ("xz data is truncated", "gzip data is corrupt (...)",
    // "zstd data is corrupt (...)"), or "<cause>" alone when the name is empty.
    virtual std::size_t read(char* out, std::size_t size) = 0;
};

struct DecompressOptions {
    // xz: decoder threads (liblzma decodes the blocks of a multi-block file in parallel);
    // 1 decodes on the calling thread.
    unsigned xz_threads = 1;
};

// Decompresses `input`, compressed as `kind` (none copies it through). Throws kbuild::Error
// "<name>: <kind> data is not supported" for a kind can_decompress refuses.
std::unique_ptr<Decompressor> make_decompressor(Compression kind, std::unique_ptr<CompressedInput> input,
                                                std::string name, const DecompressOptions& options = {});

// The file at `path`, decompressed as its first bytes say. Errors name the file:
// "<path>: cannot open: <why>", "<path>: bzip2 data is not supported", ...
std::unique_ptr<Decompressor> open_decompressed(const std::string& path, const DecompressOptions& options = {});

}  // namespace kbuild

// Random access into a bzip2 file without decompressing all of it. bzip2 blocks are
// independent: each starts with a 48-bit magic at some bit offset, so a scan for that magic at
// every bit offset indexes the file, and any block can be decoded alone by libbz2 once its bits
// are wrapped in a one-block stream. Uncompressed offsets are learnt by decoding, in order, on
// a thread pool; decoded blocks are kept in an LRU cache bounded in bytes.
#pragma once

#include "unpack/byte_source.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kbuild {

// A bzip2 file as random-access bytes. One thread at a time may call read() and size(); the
// decoding threads are internal. The destructor stops them, dropping queued work.
//
// A read at offset X decodes every block before X once (their sizes place X), 2 x threads
// blocks at a time; sequential reads have the next blocks decoded ahead. Memory: the cache,
// plus one block being decoded per thread (up to ~45 MB each).
class Bzip2Reader : public ByteSource {
public:
    struct Options {
        unsigned threads = 0;  // decoding threads; 0: std::thread::hardware_concurrency()
        // Decoded blocks kept, least recently used dropped first (the newest block always
        // stays). A block decodes to ~900 KB, or up to ~45 MB when it holds long runs. Under
        // 4 MiB, sequential reads get no read-ahead (the cache could not keep it).
        std::size_t cache_bytes = std::size_t{256} << 20;
        // Tests only: pretend the scan also found a false magic in the middle of every block
        // (block magics and end magics in turn), as compressed data may hold by chance.
        bool test_false_magics = false;
    };

    // Maps `path` and indexes its blocks. Throws kbuild::Error: "<path>: not a bzip2 file",
    // "<path>: cannot open: <why>".
    explicit Bzip2Reader(const std::string& path);
    Bzip2Reader(const std::string& path, const Options& options);
    ~Bzip2Reader() override;
    Bzip2Reader(const Bzip2Reader&) = delete;
    Bzip2Reader& operator=(const Bzip2Reader&) = delete;

    // Errors: "<file>: truncated: the bzip2 data ends inside block N (compressed byte B)" when
    // the read reaches a block the file cuts short; "<file>: bzip2 block N at compressed byte
    // B: data error (CRC mismatch)" (or libbz2's other causes) for a damaged block. Blocks are
    // numbered from 1 across all the file's streams. A read at or past the end returns 0.
    std::size_t read(std::uint64_t offset, void* buf, std::size_t len) override;
    std::uint64_t size() override;
    const std::string& name() const override;

    std::size_t block_count() const;  // blocks in the index (a false magic merged away)

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

// A block or end-of-stream magic the scan found.
struct Bzip2Magic {
    std::uint64_t bit = 0;  // offset in bits from the start of the data
    bool end = false;       // 0x177245385090 (end of stream), else 0x314159265359 (block)
    bool operator==(const Bzip2Magic& o) const { return bit == o.bit && end == o.end; }
};

// Whether data starting with these bytes (10 are enough) is bzip2: "BZh1".."BZh9", then a block
// or end-of-stream magic.
bool is_bzip2(const unsigned char* head, std::size_t size);

// Every block and end-of-stream magic in `data`, at any bit offset, in order.
std::vector<Bzip2Magic> find_bzip2_magics(const unsigned char* data, std::size_t size);

}  // namespace kbuild

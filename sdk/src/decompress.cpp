#include <kbuild/decompress.hpp>

#include <kbuild/types.hpp>

#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <vector>

namespace kbuild {
namespace {

constexpr std::size_t kFileBlock = std::size_t(256) << 10;

// A file's bytes, a block at a time; the first block is read at once, to tell the format.
class FileInput : public CompressedInput {
public:
    explicit FileInput(const std::string& path) : path_(path), buffer_(kFileBlock) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) throw Error(path + ": cannot open: " + std::generic_category().message(errno));
        ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
        // A short first read (a pipe, a slow disk) must not hide the magic: fill what fits.
        while (size_ < buffer_.size()) {
            const std::size_t got = read_some(buffer_.data() + size_, buffer_.size() - size_);
            if (got == 0) break;
            size_ += got;
        }
        pending_ = true;
    }
    ~FileInput() override { ::close(fd_); }
    FileInput(const FileInput&) = delete;
    FileInput& operator=(const FileInput&) = delete;

    std::string_view lead() const { return {buffer_.data(), size_}; }

    std::string_view next() override {
        if (!pending_) size_ = read_some(buffer_.data(), buffer_.size());
        pending_ = false;
        return {buffer_.data(), size_};
    }

private:
    std::size_t read_some(char* out, std::size_t size) {
        for (;;) {
            const ssize_t got = ::read(fd_, out, size);
            if (got >= 0) return static_cast<std::size_t>(got);
            if (errno != EINTR) throw Error(path_ + ": cannot read: " + std::generic_category().message(errno));
        }
    }

    std::string path_;
    int fd_ = -1;
    std::vector<char> buffer_;
    std::size_t size_ = 0;
    bool pending_ = false;
};

class Base : public Decompressor {
protected:
    Base(std::unique_ptr<CompressedInput> input, std::string name) : input_(std::move(input)), name_(std::move(name)) {}

    [[noreturn]] void fail(const std::string& cause) const {
        throw Error(name_.empty() ? cause : name_ + ": " + cause);
    }

    std::unique_ptr<CompressedInput> input_;
    std::string name_;
};

class PlainDecompressor : public Base {
public:
    PlainDecompressor(std::unique_ptr<CompressedInput> input, std::string name)
        : Base(std::move(input), std::move(name)) {}

    std::size_t read(char* out, std::size_t size) override {
        std::size_t total = 0;
        while (total < size && !ended_) {
            if (block_.empty()) {
                block_ = input_->next();
                ended_ = block_.empty();
                continue;
            }
            const std::size_t n = std::min(size - total, block_.size());
            std::memcpy(out + total, block_.data(), n);
            block_.remove_prefix(n);
            total += n;
        }
        return total;
    }

private:
    std::string_view block_;
    bool ended_ = false;
};

class XzDecompressor : public Base {
public:
    XzDecompressor(std::unique_ptr<CompressedInput> input, std::string name, unsigned threads)
        : Base(std::move(input), std::move(name)) {
        lzma_ret ret;
        if (threads <= 1) {
            ret = lzma_stream_decoder(&stream_, UINT64_MAX, LZMA_CONCATENATED);
        } else {
            lzma_mt options{};
            options.flags = LZMA_CONCATENATED;
            options.threads = std::clamp(std::min(lzma_cputhreads(), threads), 1u, threads);
            options.memlimit_threading = kThreadingMemory;
            options.memlimit_stop = UINT64_MAX;  // whatever the file needs
            ret = lzma_stream_decoder_mt(&stream_, &options);
        }
        if (ret != LZMA_OK) fail(describe(ret));
    }
    ~XzDecompressor() override { lzma_end(&stream_); }
    XzDecompressor(const XzDecompressor&) = delete;
    XzDecompressor& operator=(const XzDecompressor&) = delete;

    std::size_t read(char* out, std::size_t size) override {
        if (finished_) return 0;
        stream_.next_out = reinterpret_cast<std::uint8_t*>(out);
        stream_.avail_out = size;
        while (stream_.avail_out > 0) {
            if (stream_.avail_in == 0 && !input_ended_) {
                const std::string_view block = input_->next();
                input_ended_ = block.empty();
                stream_.next_in = reinterpret_cast<const std::uint8_t*>(block.data());
                stream_.avail_in = block.size();
            }
            // LZMA_CONCATENATED waits for another stream until told the input has ended.
            const lzma_ret ret = lzma_code(&stream_, input_ended_ ? LZMA_FINISH : LZMA_RUN);
            if (ret == LZMA_STREAM_END) {
                finished_ = true;
                break;
            }
            if (ret != LZMA_OK) fail(describe(ret));
        }
        return size - stream_.avail_out;
    }

private:
    // Per thread, a 24 MiB block and an 8 MiB dictionary (Debian's data.tar.xz); above this,
    // liblzma decodes on one thread.
    static constexpr std::uint64_t kThreadingMemory = 256ull << 20;

    static std::string describe(lzma_ret ret) {
        switch (ret) {
            case LZMA_BUF_ERROR: return "xz data is truncated";
            case LZMA_DATA_ERROR: return "xz data is corrupt";
            case LZMA_FORMAT_ERROR: return "not xz data";
            case LZMA_OPTIONS_ERROR: return "xz data uses unsupported options";
            case LZMA_MEM_ERROR: return "out of memory decompressing xz data";
            case LZMA_MEMLIMIT_ERROR: return "xz data needs too much memory";
            default: return "xz decoder failed (" + std::to_string(static_cast<int>(ret)) + ")";
        }
    }

    lzma_stream stream_ = LZMA_STREAM_INIT;
    bool input_ended_ = false;
    bool finished_ = false;
};

class GzipDecompressor : public Base {
public:
    GzipDecompressor(std::unique_ptr<CompressedInput> input, std::string name)
        : Base(std::move(input), std::move(name)) {
        // 16 + MAX_WBITS: a gzip header and trailer around the deflate data.
        if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK) fail("cannot start the gzip decoder");
    }
    ~GzipDecompressor() override { inflateEnd(&stream_); }
    GzipDecompressor(const GzipDecompressor&) = delete;
    GzipDecompressor& operator=(const GzipDecompressor&) = delete;

    std::size_t read(char* out, std::size_t size) override {
        if (finished_) return 0;
        stream_.next_out = reinterpret_cast<Bytef*>(out);
        stream_.avail_out = static_cast<uInt>(std::min<std::size_t>(size, UINT_MAX));
        const uInt asked = stream_.avail_out;
        while (stream_.avail_out > 0) {
            if (stream_.avail_in == 0) {
                const std::string_view block = input_->next();
                stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
                stream_.avail_in = static_cast<uInt>(block.size());
            }
            if (stream_.avail_in == 0) {
                if (!member_ended_) fail("gzip data is truncated");
                finished_ = true;
                break;
            }
            // Another member follows (gzip -dc reads concatenated members as one text).
            if (member_ended_) {
                inflateReset(&stream_);
                member_ended_ = false;
            }
            const int ret = inflate(&stream_, Z_NO_FLUSH);
            if (ret == Z_STREAM_END) {
                member_ended_ = true;
            } else if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT) {
                fail(std::string("gzip data is corrupt") +
                     (stream_.msg != nullptr ? std::string(" (") + stream_.msg + ")" : ""));
            } else if (ret == Z_MEM_ERROR) {
                fail("out of memory decompressing gzip data");
            }
            // Z_OK and Z_BUF_ERROR (input used up): the loop refills or ends.
        }
        return asked - stream_.avail_out;
    }

private:
    z_stream stream_{};
    bool member_ended_ = false;
    bool finished_ = false;
};

class ZstdDecompressor : public Base {
public:
    ZstdDecompressor(std::unique_ptr<CompressedInput> input, std::string name)
        : Base(std::move(input), std::move(name)), context_(ZSTD_createDCtx()) {
        if (context_ == nullptr) fail("cannot start the zstd decoder");
    }
    ~ZstdDecompressor() override { ZSTD_freeDCtx(context_); }
    ZstdDecompressor(const ZstdDecompressor&) = delete;
    ZstdDecompressor& operator=(const ZstdDecompressor&) = delete;

    std::size_t read(char* out, std::size_t size) override {
        if (finished_) return 0;
        ZSTD_outBuffer output{out, size, 0};
        while (output.pos < output.size) {
            if (in_.pos == in_.size && !input_ended_) {
                const std::string_view block = input_->next();
                input_ended_ = block.empty();
                in_ = {block.data(), block.size(), 0};
            }
            if (in_.pos == in_.size && input_ended_) {
                if (!frame_complete_) fail("zstd data is truncated");
                finished_ = true;
                break;
            }
            const std::size_t ret = ZSTD_decompressStream(context_, &output, &in_);
            if (ZSTD_isError(ret)) fail(std::string("zstd data is corrupt (") + ZSTD_getErrorName(ret) + ")");
            // 0: a frame is complete and flushed (another may follow, as zstd -dc reads
            // concatenated frames as one stream).
            frame_complete_ = ret == 0;
        }
        return output.pos;
    }

private:
    ZSTD_DCtx* context_;
    ZSTD_inBuffer in_{};
    bool input_ended_ = false;
    bool frame_complete_ = false;
    bool finished_ = false;
};

}  // namespace

Compression detect_compression(std::string_view lead) {
    const auto starts_with = [&](std::string_view prefix) { return lead.substr(0, prefix.size()) == prefix; };
    if (starts_with("\x1F\x8B")) return Compression::gzip;
    if (starts_with(std::string_view("\xFD"
                                     "7zXZ\0",
                                     6)))
        return Compression::xz;
    if (starts_with("\x28\xB5\x2F\xFD")) return Compression::zstd;
    if (starts_with("BZh")) return Compression::bzip2;
    return Compression::none;
}

const char* compression_name(Compression kind) {
    switch (kind) {
        case Compression::none: return "none";
        case Compression::gzip: return "gzip";
        case Compression::xz: return "xz";
        case Compression::zstd: return "zstd";
        case Compression::bzip2: return "bzip2";
    }
    return "?";
}

bool can_decompress(Compression kind) {
    return kind == Compression::none || kind == Compression::gzip || kind == Compression::xz ||
           kind == Compression::zstd;
}

std::unique_ptr<Decompressor> make_decompressor(Compression kind, std::unique_ptr<CompressedInput> input,
                                                std::string name, const DecompressOptions& options) {
    switch (kind) {
        case Compression::none: return std::make_unique<PlainDecompressor>(std::move(input), std::move(name));
        case Compression::gzip: return std::make_unique<GzipDecompressor>(std::move(input), std::move(name));
        case Compression::xz:
            return std::make_unique<XzDecompressor>(std::move(input), std::move(name), options.xz_threads);
        case Compression::zstd: return std::make_unique<ZstdDecompressor>(std::move(input), std::move(name));
        default: break;
    }
    const std::string cause = std::string(compression_name(kind)) + " data is not supported";
    throw Error(name.empty() ? cause : name + ": " + cause);
}

std::unique_ptr<Decompressor> open_decompressed(const std::string& path, const DecompressOptions& options) {
    auto file = std::make_unique<FileInput>(path);
    const Compression kind = detect_compression(file->lead());
    return make_decompressor(kind, std::move(file), path, options);
}

}  // namespace kbuild

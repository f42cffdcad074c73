#include "unpack/byte_source.h"

#include "unpack/bzip2_reader.h"

#include <kbuild/error.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kbuild {
namespace {

// A file read as it is, with pread.
class RawFile : public ByteSource {
public:
    RawFile(std::string path, int fd, std::uint64_t size) : name_(std::move(path)), fd_(fd), size_(size) {}
    ~RawFile() override { ::close(fd_); }
    RawFile(const RawFile&) = delete;
    RawFile& operator=(const RawFile&) = delete;

    std::size_t read(std::uint64_t offset, void* buf, std::size_t len) override {
        std::size_t done = 0;
        while (done < len && offset + done < size_) {
            const ssize_t n = ::pread(fd_, static_cast<char*>(buf) + done, len - done,
                                      static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0)
                throw Error(name_ + ": read at byte " + std::to_string(offset + done) + ": " +
                            std::strerror(errno));
            if (n == 0) break;
            done += static_cast<std::size_t>(n);
        }
        return done;
    }
    std::uint64_t size() override { return size_; }
    const std::string& name() const override { return name_; }

private:
    std::string name_;
    int fd_;
    std::uint64_t size_;
};

}  // namespace

std::unique_ptr<ByteSource> open_byte_source(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    unsigned char head[10] = {};
    ssize_t got = 0;
    if (::fstat(fd, &st) != 0 || (got = ::pread(fd, head, sizeof head, 0)) < 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        throw Error(path + ": cannot read: " + why);
    }
    if (is_bzip2(head, static_cast<std::size_t>(got))) {
        ::close(fd);
        return std::make_unique<Bzip2Reader>(path);
    }
    return std::make_unique<RawFile>(path, fd, static_cast<std::uint64_t>(st.st_size));
}

}  // namespace kbuild

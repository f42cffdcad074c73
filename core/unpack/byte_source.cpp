#include "unpack/byte_source.h"

#include "unpack/bzip2_reader.h"
#include "util/fd.h"
#include "util/strings.h"

#include <kbuild/error.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace kbuild {
namespace {

// A file read as it is, with pread.
class RawFile : public ByteSource {
public:
    RawFile(std::string path, UniqueFd fd, std::uint64_t size)
        : name_(std::move(path)), fd_(std::move(fd)), size_(size) {}

    std::size_t read(std::uint64_t offset, void* buf, std::size_t len) override {
        std::size_t done = 0;
        while (done < len && offset + done < size_) {
            const ssize_t n =
                ::pread(fd_.get(), static_cast<char*>(buf) + done, len - done, static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0)
                throw Error(name_ + ": read at byte " + std::to_string(offset + done) + ": " + errno_text(errno));
            if (n == 0) break;
            done += static_cast<std::size_t>(n);
        }
        return done;
    }
    std::uint64_t size() override { return size_; }
    const std::string& name() const override { return name_; }

private:
    std::string name_;
    UniqueFd fd_;
    std::uint64_t size_;
};

}  // namespace

std::unique_ptr<ByteSource> open_byte_source(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw Error(path + ": cannot open: " + errno_text(errno));
    struct stat st {};
    unsigned char head[10] = {};
    ssize_t got = 0;
    if (::fstat(fd.get(), &st) != 0 || (got = ::pread(fd.get(), head, sizeof head, 0)) < 0)
        throw Error(path + ": cannot read: " + errno_text(errno));
    if (is_bzip2(head, static_cast<std::size_t>(got))) return std::make_unique<Bzip2Reader>(path);
    return std::make_unique<RawFile>(path, std::move(fd), static_cast<std::uint64_t>(st.st_size));
}

}  // namespace kbuild

// What every fuzz target shares: the input as a file, for the parsers that read a path.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kbuild::fuzz {

// One memfd for the whole run, rewritten with each input: no disk, nothing left behind.
class InputFile {
public:
    InputFile() : fd_(::memfd_create("kbuild-fuzz-input", 0)), path_("/proc/self/fd/" + std::to_string(fd_)) {}
    ~InputFile() { ::close(fd_); }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    // The input's path, holding exactly these bytes.
    const std::string& with(const std::uint8_t* data, std::size_t size) {
        if (::ftruncate(fd_, 0) != 0) __builtin_trap();
        for (std::size_t done = 0; done < size;) {
            const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
            if (n <= 0) __builtin_trap();
            done += static_cast<std::size_t>(n);
        }
        return path_;
    }

private:
    int fd_;
    std::string path_;
};

inline std::string_view text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

}  // namespace kbuild::fuzz
